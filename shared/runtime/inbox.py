"""The inbox: the record of which event each consumer has applied, kept in the consumer's own database.

``persistence`` writes the claim in the handler's transaction (``UnitOfWork.claim_event``, ``claim_events``),
``messaging`` and ``batches`` read it to tell a redelivered event from a handler's own duplicate key. They share its
name, shape and reads here, so that ``messaging`` does not import ``persistence`` back.

One document per transaction that applies events, whatever their number: ``claims`` holds a ``claim_id`` per event
(consumer and event id), and a unique multikey index on it refuses a claim any document holds already, so an event is
applied once per consumer, by whichever transaction commits first. A batch of fifty is one insert, one index entry of
its time (the retention's TTL index) and one change every change stream of the database reads, not fifty: on the
embedded server each of those was a tenth of a millisecond per event (issue 16). The index is sparse: a record of
the shape before (one per event, no ``claims``, its ``_id`` the claim) is given its ``claims`` once, when the index
is made (``ensure_claims_index``); a sparse index leaves a record without them out instead of keying it ``null``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database

APPLIED_EVENTS = "applied_events"
CLAIMS_INDEX = "claims_unique"


def claim_id(consumer: str, event_id: str) -> str:
    """The claim of ``consumer`` having applied ``event_id``."""
    return f"{consumer}:{event_id}"


def claim_record(consumer: str, event_ids: list[str], applied_at: datetime) -> dict:
    """The ``applied_events`` document of one transaction applying ``event_ids`` (at least one, each once): named
    after its first claim."""
    claims = [claim_id(consumer, event_id) for event_id in event_ids]
    return {"_id": claims[0], "consumer": consumer, "claims": claims, "applied_at": applied_at}


def applied_claims(records: Collection, claims: Iterable[str], session: ClientSession | None = None) -> set[str]:
    """Which of ``claims`` some committed record holds (in ``session``: as that transaction sees them)."""
    wanted = set(claims)
    if not wanted:
        return set()
    held: set[str] = set()
    for record in records.find({"claims": {"$in": sorted(wanted)}}, {"claims": 1}, session=session):
        held.update(record["claims"])
    return held & wanted


def ensure_claims_index(db: Database) -> None:
    """The unique index on ``claims``; made once, after giving each record of the shape before its ``claims``."""
    records = db[APPLIED_EVENTS]
    if CLAIMS_INDEX in records.index_information():
        return
    records.update_many({"claims": {"$exists": False}}, [{"$set": {"claims": ["$_id"]}}])
    records.create_index([("claims", ASCENDING)], name=CLAIMS_INDEX, unique=True, sparse=True)
