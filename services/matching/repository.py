"""Matching's own database, built only from events: providers, tenants, postings with their shortlists.

- ``providers``: the latest profile per provider (``_id`` = provider id), its ``track_record`` (recomputed from
  the two collections below whenever one of its facts changes; absent, hence neutral, until there is one). Every
  matching process follows it through a change stream (``Changes``) to keep its in-memory ranking index current,
  whichever process wrote the change.
- ``contracts``: one fact per contract from contracting's events (``_id`` = contract id): provider, centre,
  version, status, hours a week, completion rating — merged by ``domain.merge_contract``.
- ``sla_results``: one evaluated SLA window per (contract, SLA, window), the latest evaluation of it.
- ``early_provider_facts``: a verification or availability change that arrived before the provider's registration
  (they travel on different queues), held until the registration comes and then applied; after it, the document
  stays as ``{"registered": true}`` (see ``take_early_facts``).
- ``tenants``: client organisations (the lane of their events is their segment).
- ``postings``: the posting snapshot, its ``status`` (open, awarded, cancelled, closed), its ``lane`` and its
  current ``shortlist`` (in ``shortlists.stored``'s form: its candidates as two JSON texts, ``listed``, what deciding
  reads, and ``details``, their breakdowns and reasons; one written before in another form reads the same,
  ``shortlists.readable``). The snapshot's own fields are one JSON text too, ``snapshot``, beside the fields matching
  queries, projects, splits by or sets itself (``OWN_POSTING_FIELDS``); ``posting_fields`` reads any stored form.
  Every matching process follows it through a change stream (``Changes``) to keep its in-memory view of the open
  postings (``open_postings``) current, whichever process wrote them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from pymongo import ASCENDING, UpdateOne
from pymongo.database import Database

from services.matching import domain, shortlists
from services.matching.domain import OPEN
from shared.runtime.outbox import pending_count
from shared.runtime.persistence import SessionRepository
from shared.vocabulary import jsontext
from shared.vocabulary.times import utc_now

PROVIDERS = "providers"
TENANTS = "tenants"
POSTINGS = "postings"
CONTRACTS = "contracts"
SLA_RESULTS = "sla_results"
EARLY_FACTS = "early_provider_facts"

# What ``provider.availability_changed.v1`` carries of a profile: it comes on its own queue, so it may overtake
# the profile snapshot it belongs after, or be overtaken by one taken before it.
AVAILABILITY_FIELDS = ("availability", "capacity_hours_per_week")

# What re-ranking needs of a posting: not the reasons and breakdowns of its current candidates, nor the prose of a
# posting stored with its fields apart (before 2026-12-07; since then it is in the ``snapshot`` text).
_RE_RANKING_VIEW = {"description": 0, "shortlist.details": 0, "shortlist.candidates.reasons": 0,
                    "shortlist.candidates.breakdown": 0}  # the stored form's details, the nested form's

# A stored posting's fields kept as fields: what matching queries (status), projects (version, shortlist), splits
# its cells by (lane), checks a reader against (tenant_id) and sets on its own (status, cancelled_at, shortlist).
# The rest of the snapshot is one JSON text, ``SNAPSHOT``: the embedded database handles each value of a document in
# Python, in the write, its oplog entry and every change stream reading it, and a posting has about 50 (issue 16).
OWN_POSTING_FIELDS = ("tenant_id", "lane", "status", "version", "cancelled_at", "shortlist")
SNAPSHOT = "snapshot"


def ensure_indexes(db: Database) -> None:
    if "change_order" in db[PROVIDERS].index_information():  # the provider change counter's index, no longer read
        db[PROVIDERS].drop_index("change_order")
    db[CONTRACTS].create_index([("provider_id", ASCENDING)], name="by_provider")
    db[CONTRACTS].create_index([("status", ASCENDING), ("releases_on", ASCENDING)], name="notice_ends")
    db[SLA_RESULTS].create_index([("provider_id", ASCENDING)], name="by_provider")
    db[POSTINGS].create_index([("status", ASCENDING)], name="status")


def today() -> str:
    """Today's date in UTC (ISO), the day a track record's load is computed for."""
    return utc_now().date().isoformat()


def _resource(document: dict | None) -> dict | None:
    if document is not None:
        document["id"] = document.pop("_id")
    return document


class Changes:
    """The committed changes of one of matching's collections, in commit order, through a change stream: each is the
    document's id and its current document (``None`` once deleted). Opened at the current end of the stream, so a
    reader that opens it and then reads the collection misses nothing committed after that read.

    ``next_change`` returns None when nothing more is committed: its getMore is issued after the call began, so every
    change committed before the call has been returned by then (the embedded server shows a commit to a change
    stream at once; MongoDB shows it once majority-committed, which a transaction's commit waits for).
    Any database error surfaces as ``PyMongoError``: the caller reopens and rebuilds from the collection.
    """

    # An idle getMore otherwise waits 1 s on the server for a change to arrive.
    AWAIT_MS = 1

    def __init__(self, db: Database, collection: str, pipeline: list[dict] | None = None) -> None:
        self._stream = db[collection].watch(pipeline or [], full_document="updateLookup",
                                            max_await_time_ms=self.AWAIT_MS)

    def next_change(self) -> tuple[str, dict | None] | None:
        change = self._stream.try_next()
        if change is None:
            return None
        return change["documentKey"]["_id"], change.get("fullDocument")

    def close(self) -> None:
        self._stream.close()


def _without_id(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "id"}


def _stored_posting(posting: dict) -> dict:
    """A posting as ``postings`` keeps it: ``OWN_POSTING_FIELDS`` as fields (its shortlist in the stored form,
    ``shortlists.stored``), the rest of the snapshot as the JSON text ``SNAPSHOT``, no ``id``."""
    document = {k: posting[k] for k in OWN_POSTING_FIELDS if k in posting}
    if document.get("shortlist"):
        document["shortlist"] = shortlists.stored(document["shortlist"])
    document[SNAPSHOT] = jsontext.compact({k: v for k, v in posting.items()
                                           if k != "id" and k not in OWN_POSTING_FIELDS})
    return document


def posting_fields(document: dict | None) -> dict | None:
    """A stored posting's fields, of any stored form, its shortlist as stored: the ``SNAPSHOT`` text's, then
    ``OWN_POSTING_FIELDS`` over them. A posting stored with every field apart (before 2026-12-07) and written since
    keeps its old fields beside the text, which wins over them."""
    if document is None or SNAPSHOT not in document:
        return document
    fields = {k: v for k, v in document.items() if k != SNAPSHOT and k not in OWN_POSTING_FIELDS}
    fields.update(json.loads(document[SNAPSHOT]))
    fields.update((k, document[k]) for k in OWN_POSTING_FIELDS if k in document)
    return fields


def _readable_posting(document: dict | None) -> dict | None:
    """A stored posting, of any stored form, with its fields and its shortlist as the wire carries them."""
    document = posting_fields(document)
    if document is not None and document.get("shortlist"):
        document["shortlist"] = shortlists.readable(document["shortlist"])
    return document


class Repository(SessionRepository):
    """Matching's collections; inside a unit of work (``Repository.of(uow)``) every call runs in its transaction,
    outside one (``Repository(db)``) it reads what is committed."""

    # -- snapshots ------------------------------------------------------------------------------------------------

    def _upsert_snapshot(self, collection: str, snapshot: dict, extra: dict | None = None,
                         stored: Callable[[dict], dict] = _without_id) -> bool:
        """Store a full snapshot unless a newer version is already there (events may arrive out of order), with
        ``extra``, in the form ``stored`` gives it.

        Returns whether the read model changed.
        """
        version = snapshot.get("version", 0)
        existing = self.db[collection].find_one({"_id": snapshot["id"]}, {"version": 1}, session=self.session)
        if existing is not None and existing.get("version", 0) >= version:
            return False
        document = stored({**snapshot, **(extra or {})})
        self.db[collection].update_one({"_id": snapshot["id"]}, {"$set": document}, upsert=True,
                                       session=self.session)
        return True

    def _get(self, collection: str, key: str) -> dict | None:
        return _resource(self.db[collection].find_one({"_id": key}, session=self.session))

    # -- providers ------------------------------------------------------------------------------------------------

    def provider(self, provider_id: str) -> dict | None:
        return self._get(PROVIDERS, provider_id)

    def _set_provider_fields(self, provider_id: str, fields: dict) -> bool:
        return self.db[PROVIDERS].update_one({"_id": provider_id}, {"$set": fields},
                                             session=self.session).matched_count == 1

    def mark_verified(self, provider_id: str, verified_at: str, verified_by: str) -> bool:
        """Mark the provider verified; False when matching does not know it yet.

        ``verification`` is kept apart from the snapshot fields: verifying is final, and a profile snapshot taken
        before it (an update arriving late) must not make the provider unverified again here."""
        verification = {"verified_at": verified_at, "verified_by": verified_by}
        return self._set_provider_fields(provider_id, {"verified": True, "verified_at": verified_at,
                                                       "verification": verification})

    def set_availability(self, data: dict) -> bool | None:
        """Apply ``provider.availability_changed.v1`` to the stored profile: whether it changed it (False: the
        stored profile or availability is newer), None when the provider is unknown."""
        profile = self.provider(data["provider_id"])
        if profile is None:
            return None
        version = data.get("version")
        if version is not None and version <= max(profile.get("version", 0), profile.get("availability_version", 0)):
            return False
        changes: dict = {"availability": data["availability"], "availability_version": version}
        if data.get("capacity_hours_per_week") is not None:
            changes["capacity_hours_per_week"] = data["capacity_hours_per_week"]
        seats = {c["id"]: c["seats"] for c in data.get("delivery_centres") or []}
        if seats:
            changes["delivery_centres"] = [
                dict(centre, seats=seats.get(centre["id"], centre["seats"])) for centre in profile["delivery_centres"]
            ]
        self._set_provider_fields(data["provider_id"], changes)
        return True

    def upsert_profile(self, profile: dict) -> bool:
        """Keep the newest snapshot of a provider's profile, keeping an availability change newer than the snapshot
        (its availability, capacity and centres' seats) when the snapshot arrives after it."""
        stored = self.db[PROVIDERS].find_one({"_id": profile["id"]},
                                             {"availability_version": 1, "delivery_centres": 1,
                                              **dict.fromkeys(AVAILABILITY_FIELDS, 1)}, session=self.session)
        if stored is not None and (stored.get("availability_version") or 0) > profile.get("version", 0):
            seats = {centre["id"]: centre["seats"] for centre in stored.get("delivery_centres") or []}
            profile = {**profile, **{name: stored[name] for name in AVAILABILITY_FIELDS if name in stored},
                       "delivery_centres": [dict(centre, seats=seats.get(centre["id"], centre["seats"]))
                                            for centre in profile.get("delivery_centres") or []]}
        return self._upsert_snapshot(PROVIDERS, profile)

    def hold_early_fact(self, provider_id: str, kind: str, data: dict) -> None:
        """Keep a fact about a provider whose registration has not arrived yet (``verification`` or
        ``availability``, the newest availability by version), to apply when it does (``take_early_facts``)."""
        held = self.db[EARLY_FACTS].find_one({"_id": provider_id}, {kind: 1}, session=self.session) or {}
        if kind in held and (held[kind].get("version") or 0) > (data.get("version") or 0):
            return
        self.db[EARLY_FACTS].update_one({"_id": provider_id}, {"$set": {kind: data}}, upsert=True,
                                        session=self.session)

    def take_early_facts(self, provider_id: str) -> dict:
        """The facts held for a provider until its registration (kind -> data), taken in the registration's
        transaction.

        The document is always written (left as ``{"registered": true}``): a fact held by a transaction running at
        the same time writes it too, so the two conflict and one is retried, seeing the other. Without that write, a
        fact whose transaction began before the registration committed would be held after the registration read
        nothing, and never applied.
        """
        held = self.db[EARLY_FACTS].find_one({"_id": provider_id}, session=self.session) or {}
        self.db[EARLY_FACTS].replace_one({"_id": provider_id}, {"registered": True}, upsert=True,
                                         session=self.session)
        return {kind: data for kind, data in held.items() if kind not in ("_id", "registered")}

    def all_providers(self) -> Iterator[dict]:
        for document in self.db[PROVIDERS].find({}, batch_size=2000, session=self.session):
            yield _resource(document)

    def follow_providers(self) -> Changes:
        """The committed changes of ``providers`` from now on, in commit order (a change stream)."""
        return Changes(self.db, PROVIDERS)

    # -- track records --------------------------------------------------------------------------------------------

    def _merge(self, collection: str, fact: dict, merge: Callable[[dict | None, dict], dict | None]) -> set[str]:
        """Apply ``fact`` with ``merge``; the providers whose track record that changes (none for a duplicate or a
        stale fact, both when the fact moved from one provider to another)."""
        before = self._get(collection, fact["id"])
        after = merge(before, fact)
        if after is None:
            return set()
        self.db[collection].replace_one({"_id": fact["id"]}, _without_id(after), upsert=True, session=self.session)
        return {after["provider_id"]} | ({before["provider_id"]} if before else set())

    def apply_contract(self, fact: dict) -> set[str]:
        """Merge a contract fact; the providers whose track record it changes."""
        return self._merge(CONTRACTS, fact, domain.merge_contract)

    def apply_sla_result(self, result: dict) -> set[str]:
        """Merge an evaluated SLA window; the providers whose track record it changes."""
        return self._merge(SLA_RESULTS, result, domain.merge_sla_result)

    def _facts(self, collection: str, provider_id: str) -> list[dict]:
        return [_resource(d) for d in self.db[collection].find({"provider_id": provider_id}, session=self.session)]

    def track_record(self, provider_id: str) -> dict | None:
        """The provider's track record recomputed from its facts, as of today (None when matching has none)."""
        contracts = self._facts(CONTRACTS, provider_id)
        windows = self._facts(SLA_RESULTS, provider_id)
        if not contracts and not windows:
            return None
        return domain.track_record_document(contracts, windows, today())

    def notices_served(self, on: str, limit: int) -> list[dict]:
        """Terminated contracts whose notice ended by ``on`` (ISO date) and whose load was not released yet."""
        return list(self.db[CONTRACTS].find(
            {"status": "terminated", "releases_on": {"$lte": on}, "released": {"$ne": True}}, {"provider_id": 1},
            session=self.session,
        ).limit(limit))

    def mark_released(self, contract_id: str) -> None:
        self.db[CONTRACTS].update_one({"_id": contract_id}, {"$set": {"released": True}}, session=self.session)

    def stored_track_record(self, provider_id: str) -> dict | None:
        document = self.db[PROVIDERS].find_one({"_id": provider_id}, {"track_record": 1}, session=self.session)
        return None if document is None else document.get("track_record")

    def set_track_record(self, provider_id: str, record: dict) -> bool:
        """Store the provider's recomputed track record; whether it changed (False too when the provider is
        unknown: the facts wait, and its registration picks them up)."""
        current = self.db[PROVIDERS].find_one({"_id": provider_id}, {"track_record": 1}, session=self.session)
        if current is None or current.get("track_record") == record:
            return False
        self.db[PROVIDERS].update_one({"_id": provider_id}, {"$set": {"track_record": record}}, session=self.session)
        return True

    # -- tenants --------------------------------------------------------------------------------------------------

    def upsert_tenant(self, tenant: dict) -> bool:
        return self._upsert_snapshot(TENANTS, tenant)

    # -- postings and shortlists ----------------------------------------------------------------------------------

    def posting(self, posting_id: str) -> dict | None:
        return _readable_posting(self._get(POSTINGS, posting_id))

    def posting_state(self, posting_id: str) -> dict | None:
        """What deciding about a new snapshot of the posting needs: its status, version and shortlist."""
        return _readable_posting(self.db[POSTINGS].find_one({"_id": posting_id},
                                                            {"status": 1, "version": 1, "shortlist": 1},
                                                            session=self.session))

    def posting_states(self, posting_ids: list[str]) -> dict[str, dict]:
        """``posting_state`` of several postings at once, by id (those matching has no document of are absent)."""
        found = self.db[POSTINGS].find({"_id": {"$in": sorted(set(posting_ids))}},
                                       {"status": 1, "version": 1, "shortlist": 1}, session=self.session)
        return {document["_id"]: _readable_posting(document) for document in found}

    def store_postings(self, new: list[dict], changed: list[dict]) -> None:
        """``store_posting`` for several: the ``new`` ones (no document yet) with one insert, the others with one
        bulk write."""
        if new:
            self.db[POSTINGS].insert_many([{**_stored_posting(posting), "_id": posting["id"]} for posting in new],
                                          ordered=True, session=self.session)
        if changed:
            self.db[POSTINGS].bulk_write([UpdateOne({"_id": posting["id"]}, {"$set": _stored_posting(posting)},
                                                    upsert=True) for posting in changed], session=self.session)

    def posting_status(self, posting_id: str) -> dict | None:
        return self.db[POSTINGS].find_one({"_id": posting_id}, {"status": 1}, session=self.session)

    def store_posting(self, posting: dict) -> None:
        """Write the posting (with its shortlist, when it has one) whatever version is stored."""
        self.db[POSTINGS].update_one({"_id": posting["id"]}, {"$set": _stored_posting(posting)}, upsert=True,
                                     session=self.session)

    def upsert_posting(self, posting: dict, extra: dict) -> bool:
        """Keep the newest snapshot of the posting, with ``extra`` (lane, status); whether it changed."""
        return self._upsert_snapshot(POSTINGS, posting, extra, _stored_posting)

    def set_posting_status(self, posting_id: str, status: str, **fields) -> None:
        """Record that the posting ended (awarded, cancelled) even when its publication has not arrived yet."""
        self.db[POSTINGS].update_one({"_id": posting_id}, {"$set": {"status": status, **fields}}, upsert=True,
                                     session=self.session)

    def open_postings(self) -> Iterator[dict]:
        """Every open posting, as re-ranking reads it (the view of ``open_postings.OpenPostings`` is built from it):
        its fields (``posting_fields``), without its candidates' details (either stored form)."""
        for document in self.db[POSTINGS].find({"status": OPEN}, _RE_RANKING_VIEW, batch_size=2000,
                                               session=self.session):
            yield posting_fields(document)

    def follow_postings(self) -> Changes:
        """The committed changes of ``postings`` from now on, in commit order (a change stream).

        Whole documents, with no pipeline: the embedded server runs each pipeline stage in Python on every event, and
        a ``$project`` dropping the prose cost it more than the smaller events saved (measured: two processes
        following, its CPU per posting written rose by 1.0-1.9 ms with the stage, 0.6-0.9 ms without; issue 16)."""
        return Changes(self.db, POSTINGS)

    def save_shortlist(self, posting_id: str, shortlist: dict) -> None:
        self.db[POSTINGS].update_one({"_id": posting_id}, {"$set": {"shortlist": shortlists.stored(shortlist)}},
                                     session=self.session)

    def save_shortlists(self, saved: list[tuple[str, dict]]) -> None:
        """``save_shortlist`` of several postings (posting id, shortlist), with one bulk write."""
        if saved:
            self.db[POSTINGS].bulk_write([UpdateOne({"_id": posting_id},
                                                    {"$set": {"shortlist": shortlists.stored(shortlist)}})
                                          for posting_id, shortlist in saved], ordered=True, session=self.session)

    # -- operations -----------------------------------------------------------------------------------------------

    def ping(self) -> None:
        self.db.command("ping")

    def outbox_backlog(self) -> int:
        return pending_count(self.db)

    def counts(self) -> dict:
        return {
            "providers": self.db[PROVIDERS].estimated_document_count(),
            "tenants": self.db[TENANTS].estimated_document_count(),
            "open_postings": self.db[POSTINGS].count_documents({"status": OPEN}),
        }
