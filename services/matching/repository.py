"""Matching's own database, built only from events: providers, tenants, postings with their shortlists.

- ``providers``: the latest profile per provider (``_id`` = provider id), a ``track_record`` sub-document that
  contracting and billing events will fill (neutral until then), and ``seq``: the position of the provider's
  last change in this database's change order (``counters.providers``). Every matching process keeps its
  in-memory index current by reading the providers whose ``seq`` is above the last one it applied.
- ``tenants``: client organisations (the lane of their events is their segment).
- ``postings``: the posting snapshot, its ``status`` (open, awarded, cancelled, closed), its ``lane`` and its
  current ``shortlist``.
"""

from __future__ import annotations

from collections.abc import Iterator

from pymongo import ASCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database

PROVIDERS = "providers"
TENANTS = "tenants"
POSTINGS = "postings"
COUNTERS = "counters"
OPEN = "open"
RE_RANKED_STATUSES = (OPEN,)


def ensure_indexes(db: Database) -> None:
    db[PROVIDERS].create_index([("seq", ASCENDING)], name="change_order")
    db[POSTINGS].create_index([("status", ASCENDING)], name="status")
    db[POSTINGS].create_index([("status", ASCENDING), ("model", ASCENDING), ("category", ASCENDING)],
                              name="open_by_market")
    db[POSTINGS].create_index([("shortlist.candidates.provider_id", ASCENDING)], name="shortlisted_provider")


def upsert_snapshot(db: Database, collection: str, snapshot: dict, session: ClientSession,
                    extra: dict | None = None) -> bool:
    """Store a full snapshot unless a newer version is already there (events may arrive out of order).

    Returns whether the read model changed.
    """
    version = snapshot.get("version", 0)
    existing = db[collection].find_one({"_id": snapshot["id"]}, {"version": 1}, session=session)
    if existing is not None and existing.get("version", 0) >= version:
        return False
    document = {k: v for k, v in snapshot.items() if k != "id"}
    document.update(extra or {})
    db[collection].update_one({"_id": snapshot["id"]}, {"$set": document}, upsert=True, session=session)
    return True


def set_fields(db: Database, collection: str, key: str, fields: dict, session: ClientSession) -> bool:
    return db[collection].update_one({"_id": key}, {"$set": fields}, session=session).matched_count == 1


def get(db: Database, collection: str, key: str, session: ClientSession | None = None) -> dict | None:
    document = db[collection].find_one({"_id": key}, session=session)
    if document is None:
        return None
    document["id"] = document.pop("_id")
    return document


# --- providers ---------------------------------------------------------------------------------------------------


def mark_provider_changed(db: Database, provider_id: str, session: ClientSession) -> int:
    """Give the provider's change the next number in the change order, in this transaction.

    The counter document is written by every provider change, so concurrent changes conflict on it and commit
    one after the other: the numbers follow the commit order and a reader that has applied up to N never misses
    a change numbered below N that commits later.
    """
    counter = db[COUNTERS].find_one_and_update(
        {"_id": PROVIDERS}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER, session=session
    )
    db[PROVIDERS].update_one({"_id": provider_id}, {"$set": {"seq": counter["seq"]}}, session=session)
    return counter["seq"]


def set_availability(db: Database, data: dict, session: ClientSession) -> dict | None:
    """Apply ``provider.availability_changed.v1`` to the stored profile; the profile after, or None if unknown."""
    profile = get(db, PROVIDERS, data["provider_id"], session)
    if profile is None:
        return None
    changes: dict = {"availability": data["availability"]}
    if data.get("capacity_hours_per_week") is not None:
        changes["capacity_hours_per_week"] = data["capacity_hours_per_week"]
    seats = {c["id"]: c["seats"] for c in data.get("delivery_centres") or []}
    if seats:
        changes["delivery_centres"] = [
            dict(centre, seats=seats.get(centre["id"], centre["seats"])) for centre in profile["delivery_centres"]
        ]
    set_fields(db, PROVIDERS, data["provider_id"], changes, session)
    return {**profile, **changes}


def providers_changed_since(db: Database, seq: int) -> Iterator[dict]:
    for document in db[PROVIDERS].find({"seq": {"$gt": seq}}).sort("seq", ASCENDING):
        document["id"] = document.pop("_id")
        yield document


def all_providers(db: Database) -> Iterator[dict]:
    for document in db[PROVIDERS].find({}, batch_size=2000):
        document["id"] = document.pop("_id")
        yield document


# --- postings and shortlists ---------------------------------------------------------------------------------------


# What re-ranking needs of a posting: not its prose, nor the reasons and breakdowns of its current candidates.
_RE_RANKING_VIEW = {"description": 0, "shortlist.candidates.reasons": 0, "shortlist.candidates.breakdown": 0}


def open_postings_touched_by(db: Database, provider_id: str, models: set[str], categories: set[str],
                             session: ClientSession | None = None) -> Iterator[dict]:
    """Open postings a provider can affect: those in its market (model and category), and those it is listed on
    (it may have left that market)."""
    query = {"status": {"$in": list(RE_RANKED_STATUSES)}, "$or": [
        {"model": {"$in": sorted(models)}, "category": {"$in": sorted(categories)}},
        {"shortlist.candidates.provider_id": provider_id},
    ]}
    for document in db[POSTINGS].find(query, _RE_RANKING_VIEW, session=session):
        document["id"] = document.pop("_id")
        yield document


def save_shortlist(db: Database, posting_id: str, shortlist: dict, session: ClientSession) -> None:
    db[POSTINGS].update_one({"_id": posting_id}, {"$set": {"shortlist": shortlist}}, session=session)


def counts(db: Database) -> dict:
    return {
        "providers": db[PROVIDERS].estimated_document_count(),
        "tenants": db[TENANTS].estimated_document_count(),
        "open_postings": db[POSTINGS].count_documents({"status": OPEN}),
    }
