"""Matching's own database, built only from events: providers, tenants, postings with their shortlists.

- ``providers``: the latest profile per provider (``_id`` = provider id), its ``track_record`` (recomputed from
  the two collections below whenever one of its facts changes; absent, hence neutral, until there is one), and
  ``seq``: the position of the provider's
  last change in this database's change order (``counters.providers``). Every matching process keeps its
  in-memory index current by reading the providers whose ``seq`` is above the last one it applied.
- ``contracts``: one fact per contract from contracting's events (``_id`` = contract id): provider, centre,
  version, status, hours a week, completion rating — merged by ``domain.merge_contract``.
- ``sla_results``: one evaluated SLA window per (contract, SLA, window), the latest evaluation of it.
- ``early_provider_facts``: a verification or availability change that arrived before the provider's registration
  (they travel on different queues), held until the registration comes and then applied; after it, the document
  stays as ``{"registered": true}`` (see ``take_early_facts``).
- ``tenants``: client organisations (the lane of their events is their segment).
- ``postings``: the posting snapshot, its ``status`` (open, awarded, cancelled, closed), its ``lane`` and its
  current ``shortlist``.
"""

from __future__ import annotations

from collections.abc import Iterator

from pymongo import ASCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database

from services.matching import domain
from shared.vocabulary.terms import category_aliases
from shared.vocabulary.times import utc_now

PROVIDERS = "providers"
TENANTS = "tenants"
POSTINGS = "postings"
CONTRACTS = "contracts"
SLA_RESULTS = "sla_results"
EARLY_FACTS = "early_provider_facts"
COUNTERS = "counters"
OPEN = "open"
RE_RANKED_STATUSES = (OPEN,)


def ensure_indexes(db: Database) -> None:
    db[PROVIDERS].create_index([("seq", ASCENDING)], name="change_order")
    db[CONTRACTS].create_index([("provider_id", ASCENDING)], name="by_provider")
    db[CONTRACTS].create_index([("status", ASCENDING), ("releases_on", ASCENDING)], name="notice_ends")
    db[SLA_RESULTS].create_index([("provider_id", ASCENDING)], name="by_provider")
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


# What ``provider.availability_changed.v1`` carries of a profile: it comes on its own queue, so it may overtake
# the profile snapshot it belongs after, or be overtaken by one taken before it.
AVAILABILITY_FIELDS = ("availability", "capacity_hours_per_week")


def set_availability(db: Database, data: dict, session: ClientSession) -> bool | None:
    """Apply ``provider.availability_changed.v1`` to the stored profile: whether it changed it (False: the stored
    profile or availability is newer), None when the provider is unknown."""
    profile = get(db, PROVIDERS, data["provider_id"], session)
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
    set_fields(db, PROVIDERS, data["provider_id"], changes, session)
    return True


def upsert_profile(db: Database, profile: dict, session: ClientSession) -> bool:
    """``upsert_snapshot`` for a provider's profile, keeping an availability change newer than the snapshot (its
    availability, capacity and centres' seats) when the snapshot arrives after it."""
    stored = db[PROVIDERS].find_one({"_id": profile["id"]}, {"availability_version": 1, "delivery_centres": 1,
                                                             **dict.fromkeys(AVAILABILITY_FIELDS, 1)},
                                    session=session)
    if stored is not None and (stored.get("availability_version") or 0) > profile.get("version", 0):
        seats = {centre["id"]: centre["seats"] for centre in stored.get("delivery_centres") or []}
        profile = {**profile, **{name: stored[name] for name in AVAILABILITY_FIELDS if name in stored},
                   "delivery_centres": [dict(centre, seats=seats.get(centre["id"], centre["seats"]))
                                        for centre in profile.get("delivery_centres") or []]}
    return upsert_snapshot(db, PROVIDERS, profile, session)


def hold_early_fact(db: Database, provider_id: str, kind: str, data: dict, session: ClientSession) -> None:
    """Keep a fact about a provider whose registration has not arrived yet (``verification`` or ``availability``,
    the newest availability by version), to apply when it does (``take_early_facts``)."""
    held = db[EARLY_FACTS].find_one({"_id": provider_id}, {kind: 1}, session=session) or {}
    if kind in held and (held[kind].get("version") or 0) > (data.get("version") or 0):
        return
    db[EARLY_FACTS].update_one({"_id": provider_id}, {"$set": {kind: data}}, upsert=True, session=session)


def take_early_facts(db: Database, provider_id: str, session: ClientSession) -> dict:
    """The facts held for a provider until its registration (kind -> data), taken in the registration's
    transaction.

    The document is always written (left as ``{"registered": true}``): a fact held by a transaction running at the
    same time writes it too, so the two conflict and one is retried, seeing the other. Without that write, a fact
    whose transaction began before the registration committed would be held after the registration read nothing,
    and never applied.
    """
    held = db[EARLY_FACTS].find_one({"_id": provider_id}, session=session) or {}
    db[EARLY_FACTS].replace_one({"_id": provider_id}, {"registered": True}, upsert=True, session=session)
    return {kind: data for kind, data in held.items() if kind not in ("_id", "registered")}


def providers_changed_since(db: Database, seq: int) -> Iterator[dict]:
    for document in db[PROVIDERS].find({"seq": {"$gt": seq}}).sort("seq", ASCENDING):
        document["id"] = document.pop("_id")
        yield document


def all_providers(db: Database) -> Iterator[dict]:
    for document in db[PROVIDERS].find({}, batch_size=2000):
        document["id"] = document.pop("_id")
        yield document


# --- track records ------------------------------------------------------------------------------------------------


def _merge(db: Database, collection: str, fact: dict, merge, session: ClientSession) -> set[str]:
    """Apply ``fact`` with ``merge``; the providers whose track record that changes (none for a duplicate or a
    stale fact, both when the fact moved from one provider to another)."""
    before = get(db, collection, fact["id"], session)
    after = merge(before, fact)
    if after is None:
        return set()
    db[collection].replace_one({"_id": fact["id"]}, {k: v for k, v in after.items() if k != "id"}, upsert=True,
                               session=session)
    return {after["provider_id"]} | ({before["provider_id"]} if before else set())


def apply_contract(db: Database, fact: dict, session: ClientSession) -> set[str]:
    """Merge a contract fact; the providers whose track record it changes."""
    return _merge(db, CONTRACTS, fact, domain.merge_contract, session)


def apply_sla_result(db: Database, result: dict, session: ClientSession) -> set[str]:
    """Merge an evaluated SLA window; the providers whose track record it changes."""
    return _merge(db, SLA_RESULTS, result, domain.merge_sla_result, session)


def _facts(db: Database, collection: str, provider_id: str, session: ClientSession | None) -> list[dict]:
    facts = []
    for document in db[collection].find({"provider_id": provider_id}, session=session):
        document["id"] = document.pop("_id")
        facts.append(document)
    return facts


def today() -> str:
    """Today's date in UTC (ISO), the day a track record's load is computed for."""
    return utc_now().date().isoformat()


def track_record(db: Database, provider_id: str, session: ClientSession | None = None) -> dict | None:
    """The provider's track record recomputed from its facts, as of today (None when matching has none)."""
    contracts = _facts(db, CONTRACTS, provider_id, session)
    windows = _facts(db, SLA_RESULTS, provider_id, session)
    if not contracts and not windows:
        return None
    return domain.track_record_document(contracts, windows, today())


def notices_served(db: Database, on: str, limit: int) -> list[dict]:
    """Terminated contracts whose notice ended by ``on`` (ISO date) and whose load was not released yet."""
    return list(db[CONTRACTS].find({"status": "terminated", "releases_on": {"$lte": on}, "released": {"$ne": True}},
                                   {"provider_id": 1}).limit(limit))


def mark_released(db: Database, contract_id: str, session: ClientSession) -> None:
    db[CONTRACTS].update_one({"_id": contract_id}, {"$set": {"released": True}}, session=session)


def get_track_record(db: Database, provider_id: str, session: ClientSession | None = None) -> dict | None:
    document = db[PROVIDERS].find_one({"_id": provider_id}, {"track_record": 1}, session=session)
    return None if document is None else document.get("track_record")


def set_track_record(db: Database, provider_id: str, record: dict, session: ClientSession) -> bool:
    """Store the provider's recomputed track record; whether it changed (False too when the provider is unknown:
    the facts wait, and its registration picks them up)."""
    current = db[PROVIDERS].find_one({"_id": provider_id}, {"track_record": 1}, session=session)
    if current is None or current.get("track_record") == record:
        return False
    db[PROVIDERS].update_one({"_id": provider_id}, {"$set": {"track_record": record}}, session=session)
    return True


# --- postings and shortlists ---------------------------------------------------------------------------------------


# What re-ranking needs of a posting: not its prose, nor the reasons and breakdowns of its current candidates.
_RE_RANKING_VIEW = {"description": 0, "shortlist.candidates.reasons": 0, "shortlist.candidates.breakdown": 0}


def open_postings_touched_by(db: Database, provider_id: str, models: set[str], categories: set[str],
                             session: ClientSession | None = None) -> Iterator[dict]:
    """Open postings a provider can affect: those in its market (model and category), and those it is listed on
    (it may have left that market), each once.

    Equality queries only, each led by its index's first key: the embedded server picks the index by the filter's
    first field, and with an ``$in`` or ``$or`` in the filter, or ``status`` leading the shortlisted-provider
    query, it scanned every open posting (0.5-1.7 s at 4,000 open postings).
    """
    stored_categories = sorted({alias for category in categories for alias in category_aliases(category)})
    queries = [{"status": status, "model": model, "category": category}
               for status in RE_RANKED_STATUSES for model in sorted(models) for category in stored_categories]
    queries += [{"shortlist.candidates.provider_id": provider_id, "status": status} for status in RE_RANKED_STATUSES]
    seen: set[str] = set()
    for query in queries:
        for document in db[POSTINGS].find(query, _RE_RANKING_VIEW, session=session):
            if document["_id"] not in seen:
                seen.add(document["_id"])
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
