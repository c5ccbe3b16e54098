"""Contracting's MongoDB collections: contracts, SLA measurements and windows, reviews and issues.

Stored form = Python form, except that decimal strings (money ``amount``, SLA ``target`` and credit ``percent``,
measured ``value``) are ``Decimal128`` (exact, sortable) and the document's ``_id`` is the resource id. Reading a
``Decimal128`` back gives the same decimal string, so a contract's terms hash is stable across a round trip.
Every read and write in a transaction passes the unit of work's session.

``sla_windows`` holds one document per (SLA, window): measurements increment it and the evaluation closes it,
both in their transactions, so a measurement racing the evaluation conflicts with it (one retries) instead of
being silently left out; the evaluation's filter on ``evaluated_at: null`` makes it happen exactly once even with
two replicas evaluating at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database as MongoDatabase

from shared.runtime.outbox import pending_count
from shared.runtime.persistence import SessionRepository
from shared.vocabulary.stored import StoredForm
from shared.vocabulary.stored import current_time as current_time  # re-exported: the service reads its clock here
from shared.vocabulary.stored import new_id as new_id

CONTRACTS = "contracts"
MEASUREMENTS = "sla_measurements"
WINDOWS = "sla_windows"
REVIEWS = "reviews"
ISSUES = "issues"

_DECIMAL_KEYS = frozenset({"amount", "target", "percent", "value"})


def ensure_indexes(db: MongoDatabase) -> None:
    # One contract per awarded posting: a redelivered award finds the draft it made.
    db[CONTRACTS].create_index([("posting_id", ASCENDING)], name="posting_id", unique=True)
    db[CONTRACTS].create_index([("tenant_id", ASCENDING), ("_id", ASCENDING)], name="tenant_id")
    db[CONTRACTS].create_index([("provider_id", ASCENDING), ("_id", ASCENDING)], name="provider_id")
    # The SLA timer's question: which contracts have a window due? (Ended ones finish the windows that ended
    # before them; then their next_evaluation_at is null.)
    db[CONTRACTS].create_index([("next_evaluation_at", ASCENDING)], name="next_evaluation_at")
    # A measurement's idempotency key is unique per contract.
    # Keys are each party's own: the client's and the provider's measurements never answer for each other.
    if "contract_key" in db[MEASUREMENTS].index_information():  # the earlier index, one namespace for both
        db[MEASUREMENTS].drop_index("contract_key")
    db[MEASUREMENTS].create_index([("contract_id", ASCENDING), ("submitted_by", ASCENDING), ("key", ASCENDING)],
                                  name="contract_party_key", unique=True)
    db[MEASUREMENTS].create_index([("window_id", ASCENDING)], name="window_id")
    db[MEASUREMENTS].create_index([("contract_id", ASCENDING), ("sla_id", ASCENDING), ("measured_at", ASCENDING)],
                                  name="contract_sla_time")
    db[WINDOWS].create_index([("contract_id", ASCENDING), ("start", ASCENDING)], name="contract_start")
    db[REVIEWS].create_index([("contract_id", ASCENDING), ("recorded_at", ASCENDING)], name="contract_recorded")
    db[ISSUES].create_index([("contract_id", ASCENDING), ("raised_at", ASCENDING)], name="contract_raised")
    # The escalation timer's question: which open issues are past due?
    db[ISSUES].create_index([("status", ASCENDING), ("escalation_due_at", ASCENDING)], name="escalation_due")


def window_id(sla_id: str, start: datetime) -> str:
    return f"{sla_id}:{start.astimezone(UTC).isoformat()}"


_FORM = StoredForm(_DECIMAL_KEYS)
to_stored = _FORM.to_stored
from_stored = _FORM.from_stored
_document = _FORM.document
_resource = _FORM.resource


class Repository(SessionRepository):
    # contracts

    def insert_contract(self, contract: dict) -> None:
        self.db[CONTRACTS].insert_one(_document(contract), session=self.session)

    def contract(self, contract_id: Any) -> dict | None:
        if not isinstance(contract_id, str):
            return None
        return _resource(self.db[CONTRACTS].find_one({"_id": contract_id}, session=self.session))

    def contract_of_posting(self, posting_id: str) -> dict | None:
        return _resource(self.db[CONTRACTS].find_one({"posting_id": posting_id}, session=self.session))

    def replace_contract(self, after: dict, *, expected_revision: int) -> bool:
        result = self.db[CONTRACTS].replace_one({"_id": after["id"], "revision": expected_revision},
                                                _document(after), session=self.session)
        return result.matched_count == 1

    def contracts_of(self, field: str, party_id: str, *, status: str | None, after: str | None,
                     limit: int) -> list[dict]:
        query: dict[str, Any] = {field: party_id}
        if status:
            query["status"] = status
        if after:
            query["_id"] = {"$gt": after}
        cursor = self.db[CONTRACTS].find(query, session=self.session).sort("_id", ASCENDING).limit(limit)
        return [_resource(d) for d in cursor]

    def fixed_price_past_end(self, today: str, limit: int) -> list[str]:
        """Active fixed-price contracts whose end date is before ``today``."""
        cursor = self.db[CONTRACTS].find({"status": "active", "terms.engagement_type": "fixed",
                                          "end_date": {"$lt": today}}, {"_id": 1}, session=self.session).limit(limit)
        return [d["_id"] for d in cursor]

    def contracts_due_for_evaluation(self, now: datetime, limit: int) -> list[str]:
        cursor = self.db[CONTRACTS].find({"next_evaluation_at": {"$lte": now}}, {"_id": 1},
                                         session=self.session).sort("next_evaluation_at", ASCENDING).limit(limit)
        return [d["_id"] for d in cursor]

    # measurements and windows

    def measurement_by_key(self, contract_id: str, party: str, key: str) -> dict | None:
        return _resource(self.db[MEASUREMENTS].find_one({"contract_id": contract_id, "submitted_by": party,
                                                         "key": key}, session=self.session))

    def window(self, window: str) -> dict | None:
        return _resource(self.db[WINDOWS].find_one({"_id": window}, session=self.session))

    def record_measurement(self, measurement: dict, window: dict) -> None:
        """Store a measurement and count it in its window (a write the evaluation conflicts with)."""
        self.db[MEASUREMENTS].insert_one(_document(measurement), session=self.session)
        if measurement["late"]:
            self.db[WINDOWS].update_one({"_id": window["id"]}, {"$inc": {"late_measurements": 1}},
                                        session=self.session)
            return
        self.db[WINDOWS].update_one(
            {"_id": window["id"]},
            {"$inc": {"measurements": 1},
             "$setOnInsert": {k: v for k, v in window.items() if k not in ("id", "measurements")}},
            upsert=True, session=self.session,
        )

    def counted_measurements(self, contract_id: str, sla_id: str, start: datetime, end: datetime) -> list[dict]:
        """The measurements a window counts: by their time, not by the window they were recorded against (an
        amendment may have moved the boundaries since); late ones never count."""
        cursor = self.db[MEASUREMENTS].find({"contract_id": contract_id, "sla_id": sla_id,
                                             "measured_at": {"$gte": start, "$lt": end}, "late": False},
                                            session=self.session)
        return [_resource(d) for d in cursor]

    def close_window(self, window: dict, outcome: dict) -> None:
        """Mark a window evaluated with its outcome. When another replica closed it first, the filter misses and
        the upsert raises ``DuplicateKeyError``: the caller's transaction aborts and nothing is emitted twice."""
        fields = {k: v for k, v in window.items() if k != "id"}
        self.db[WINDOWS].update_one(
            {"_id": window["id"], "evaluated_at": None},
            {"$set": {**to_stored(fields), "evaluated_at": outcome["evaluated_at"], "outcome": to_stored(outcome)},
             "$setOnInsert": {"measurements": 0, "late_measurements": 0}},
            upsert=True, session=self.session,
        )

    def evaluated_windows(self, contract_id: str) -> list[dict]:
        cursor = self.db[WINDOWS].find({"contract_id": contract_id, "evaluated_at": {"$ne": None}},
                                       session=self.session).sort("start", ASCENDING)
        return [_resource(d) for d in cursor]

    def late_measurements(self, contract_id: str) -> int:
        return self.db[MEASUREMENTS].count_documents({"contract_id": contract_id, "late": True},
                                                     session=self.session)

    # reviews

    def insert_review(self, review: dict) -> None:
        self.db[REVIEWS].insert_one(_document(review), session=self.session)

    def reviews_of(self, contract_id: str) -> list[dict]:
        cursor = self.db[REVIEWS].find({"contract_id": contract_id}, session=self.session).sort(
            "recorded_at", ASCENDING)
        return [_resource(d) for d in cursor]

    # issues

    def insert_issue(self, issue: dict) -> None:
        self.db[ISSUES].insert_one(_document(issue), session=self.session)

    def issue(self, issue_id: Any) -> dict | None:
        if not isinstance(issue_id, str):
            return None
        return _resource(self.db[ISSUES].find_one({"_id": issue_id}, session=self.session))

    def replace_issue(self, before: dict, after: dict) -> bool:
        # The escalation record is append-only, so its length is the issue's revision.
        result = self.db[ISSUES].replace_one(
            {"_id": after["id"], "status": before["status"], "escalations": {"$size": len(before["escalations"])}},
            _document(after), session=self.session)
        return result.matched_count == 1

    def issues_of(self, contract_id: str) -> list[dict]:
        cursor = self.db[ISSUES].find({"contract_id": contract_id}, session=self.session).sort(
            "raised_at", DESCENDING)
        return [_resource(d) for d in cursor]

    def issues_to_escalate(self, now: datetime, limit: int) -> list[str]:
        cursor = self.db[ISSUES].find({"status": "open", "escalation_due_at": {"$lte": now}}, {"_id": 1},
                                      session=self.session).limit(limit)
        return [d["_id"] for d in cursor]

    def health(self) -> dict:
        self.db.command("ping")
        return {"database": "ok", "outbox_backlog": pending_count(self.db)}
