"""Billing's MongoDB collections.

- ``accounts``: one per contract (``_id`` = contract id): terms, dates, ``invoiced_through`` and
  ``next_period_end`` (what the invoice run looks for).
- ``items``: billable items (time, usage, milestones) with their idempotency key, unique per contract; an approved
  item carries ``bill_key`` (contract:period start), the invoice that bills it.
- ``credits``: SLA credits owed (from contracting's SLA breaches, ``events.SLA_BREACHED``), one per breached
  window, with what is left to apply.
- ``invoices``: issued invoices, unique per (contract, period start) and per (tenant, sequence); the issued
  content never changes, only ``paid``, ``credited``, ``open`` and ``overdue_at``.
- ``counters``: the next invoice (and credit note) number of each issuer's series (``invoices:provider:<id>``);
  before numbering per issuer, per tenant (``invoice:<tenant>``, kept for the invoices it numbered).
- ``refunds``: money of an account's credit balance paid back, unique per (contract, reference).
- ``payments``, ``credit_notes``, ``in_house_costs``; ``tenants`` and ``providers``: the client's country and the
  provider's country and time zone (tax and shoring), from their events.

Stored form = Python form, except money amounts, which are ``Decimal128`` (``shared.vocabulary.stored``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.database import Database as MongoDatabase

from shared.runtime.outbox import pending_count
from shared.runtime.persistence import SessionRepository
from shared.vocabulary.errors import Conflict
from shared.vocabulary.stored import StoredForm
from shared.vocabulary.stored import current_time as current_time  # re-exported: the service reads its clock here
from shared.vocabulary.stored import new_id as new_id
from shared.vocabulary.terms import DEFAULT_LANE, Lane

ACCOUNTS = "accounts"
ITEMS = "items"
CREDITS = "credits"
INVOICES = "invoices"
COUNTERS = "counters"
PAYMENTS = "payments"
CREDIT_NOTES = "credit_notes"
IN_HOUSE_COSTS = "in_house_costs"
REFUNDS = "refunds"
TENANTS = "tenants"
PROVIDERS = "providers"


def ensure_indexes(db: MongoDatabase) -> None:
    db[ACCOUNTS].create_index([("next_period_end", ASCENDING), ("tenant_id", ASCENDING)], name="due")
    db[ACCOUNTS].create_index([("tenant_id", ASCENDING)], name="tenant_id")
    db[ITEMS].create_index([("contract_id", ASCENDING), ("key", ASCENDING)], name="contract_key", unique=True)
    db[ITEMS].create_index([("contract_id", ASCENDING), ("week", ASCENDING)], name="contract_week")
    db[ITEMS].create_index([("bill_key", ASCENDING)], name="bill_key")
    db[CREDITS].create_index([("bill_key", ASCENDING)], name="bill_key")
    db[INVOICES].create_index([("contract_id", ASCENDING), ("period.start", ASCENDING)], name="contract_period",
                              unique=True)
    db[INVOICES].create_index([("provider_id", ASCENDING), ("_id", ASCENDING)], name="provider_id")
    db[INVOICES].create_index([("open", ASCENDING), ("overdue_at", ASCENDING), ("due_at", ASCENDING)],
                              name="overdue")
    db[PAYMENTS].create_index([("invoice_id", ASCENDING), ("reference", ASCENDING)], name="invoice_reference",
                              unique=True)
    db[CREDIT_NOTES].create_index([("invoice_id", ASCENDING)], name="invoice_id")
    db[REFUNDS].create_index([("contract_id", ASCENDING), ("reference", ASCENDING)], name="contract_reference",
                             unique=True)
    # Numbers are per issuer (the provider): each series unique; the old per-tenant index is dropped, since one
    # tenant's invoices now come from several series. Invoices numbered per tenant before carry no series.
    for collection in (INVOICES, CREDIT_NOTES):
        db[collection].create_index([("series", ASCENDING), ("sequence", ASCENDING)], name="series_sequence",
                                    unique=True, partialFilterExpression={"series": {"$type": "string"}})
    if "tenant_sequence" in db[INVOICES].index_information():
        db[INVOICES].drop_index("tenant_sequence")
    db[CREDIT_NOTES].create_index([("invoice_id", ASCENDING), ("idempotency_key", ASCENDING)],
                                  name="invoice_idempotency_key", unique=True,
                                  partialFilterExpression={"idempotency_key": {"$type": "string"}})


SERIES_PREFIX = "provider:"
ADVANCED = ("invoiced_through", "next_period_end", "revision", "credit_balance")


# Each lane numbers what an issuer issues in a series of its own, in a block of numbers of its own: billing runs in
# cells (a database per lane, docs/operations.md, Cells), and a provider with contracts in both lanes would
# otherwise get the same number from each. The default lane's series is the issuer's series from before lanes (it
# goes on where it was); the large lane's starts at 500,000,001 (INV-500000001), which keeps the numbers' form
# (``^INV-[0-9]{6,}$``) and says which series a number is of. A series never runs into the next block.
SERIES_BLOCKS: dict[str, tuple[int, int]] = {Lane.SMB: (1, 500_000_000),
                                             Lane.ENTERPRISE: (500_000_001, 999_999_999)}


def series_of(provider_id: str, lane: str) -> str:
    """The numbering series of what a provider issues in ``lane`` (the provider is the supplier; the platform its
    billing agent)."""
    lane = Lane(lane)
    return SERIES_PREFIX + provider_id + ("" if lane == DEFAULT_LANE else f":{lane}")


def _series_lane(series: str) -> tuple[str, Lane]:
    """(provider id, lane) of a series."""
    provider_id, _, lane = series.removeprefix(SERIES_PREFIX).partition(":")
    return provider_id, Lane(lane) if lane else DEFAULT_LANE


_FORM = StoredForm(frozenset({"amount"}))
to_stored = _FORM.to_stored
document = _FORM.document
resource = _FORM.resource


class Repository(SessionRepository):
    def _find(self, collection: str, query: dict, sort: str = "_id", limit: int = 0) -> list[dict]:
        cursor = self.db[collection].find(query, session=self.session).sort(sort, ASCENDING).limit(limit)
        return [resource(d) for d in cursor]

    def _one(self, collection: str, key: Any) -> dict | None:
        if not isinstance(key, str):
            return None
        return resource(self.db[collection].find_one({"_id": key}, session=self.session))

    # parties (projections)

    def save_parties(self, collection: str, parties: list[dict]) -> None:
        """Replace (or create) each party's document, in order (a later copy of one party wins), in one write."""
        if parties:
            self.db[collection].bulk_write([ReplaceOne({"_id": party["id"]}, document(party), upsert=True)
                                            for party in parties], session=self.session)

    def tenant(self, tenant_id: str) -> dict | None:
        return self._one(TENANTS, tenant_id)

    def providers(self, provider_ids: list[str]) -> dict[str, dict]:
        return {p["id"]: p for p in self._find(PROVIDERS, {"_id": {"$in": sorted(set(provider_ids))}})}

    # accounts

    def account(self, contract_id: Any) -> dict | None:
        return self._one(ACCOUNTS, contract_id)

    def accounts(self, contract_ids: list[str]) -> list[dict]:
        return self._find(ACCOUNTS, {"_id": {"$in": contract_ids}})

    def insert_account(self, account: dict) -> None:
        self.db[ACCOUNTS].insert_one(document(account), session=self.session)

    def replace_account(self, before: dict, after: dict) -> None:
        result = self.db[ACCOUNTS].replace_one({"_id": after["id"], "revision": before["revision"]},
                                               document(after), session=self.session)
        if result.matched_count != 1:
            raise Conflict("The billing account changed meanwhile; try again.")

    def touch_account(self, account: dict) -> None:
        """A write every transaction that assigns something to a period makes, so it conflicts with an invoice run
        closing that period (one of them retries) instead of missing it."""
        self.replace_account(account, {**account, "revision": account["revision"] + 1})

    def advance_accounts(self, changes: list[tuple[dict, dict]]) -> None:
        if not changes:
            return
        result = self.db[ACCOUNTS].bulk_write(
            [UpdateOne({"_id": before["id"], "revision": before["revision"]},
                       {"$set": to_stored({key: after[key] for key in ADVANCED if key in after})})
             for before, after in changes], ordered=False, session=self.session)
        if result.matched_count != len(changes):
            raise Conflict("Billing accounts changed during the invoice run; it is retried.")

    def due_accounts(self, as_of: str, tenant_id: str | None, limit: int) -> list[tuple[str, str]]:
        """(tenant, contract) of accounts with a period that ended before ``as_of``, by tenant."""
        query: dict[str, Any] = {"next_period_end": {"$lt": as_of}}
        if tenant_id:
            query["tenant_id"] = tenant_id
        cursor = self.db[ACCOUNTS].find(query, {"tenant_id": 1}, session=self.session).limit(limit)
        return sorted((d["tenant_id"], d["_id"]) for d in cursor)

    # items

    def item(self, item_id: Any) -> dict | None:
        return self._one(ITEMS, item_id)

    def items_by_key(self, contract_id: str, keys: list[str]) -> dict[str, dict]:
        """The items of the contract already recorded under any of ``keys``, by key."""
        return {i["key"]: i for i in self._find(ITEMS, {"contract_id": contract_id, "key": {"$in": keys}})}

    def hours_by_day(self, contract_id: str, week: str) -> dict[str, Decimal]:
        """The hours submitted and not rejected on each day of an ISO week."""
        cursor = self.db[ITEMS].find({"contract_id": contract_id, "week": week, "kind": "time",
                                      "status": {"$ne": "rejected"}}, {"hours": 1, "date": 1}, session=self.session)
        days: dict[str, Decimal] = {}
        for document in cursor:
            days[document["date"]] = days.get(document["date"], Decimal(0)) + Decimal(document["hours"])
        return days

    def milestones_taken(self, contract_id: str, indexes: list[int]) -> set[int]:
        """Which of the milestones ``indexes`` already have an item submitted and not rejected."""
        if not indexes:
            return set()
        cursor = self.db[ITEMS].find({"contract_id": contract_id, "kind": "milestone", "milestone": {"$in": indexes},
                                      "status": {"$ne": "rejected"}}, {"milestone": 1}, session=self.session)
        return {d["milestone"] for d in cursor}

    def insert_items(self, items: list[dict]) -> None:
        if items:
            self.db[ITEMS].insert_many([document(i) for i in items], session=self.session)

    def replace_item(self, before: dict, after: dict) -> None:
        result = self.db[ITEMS].replace_one({"_id": after["id"], "status": before["status"]}, document(after),
                                            session=self.session)
        if result.matched_count != 1:
            raise Conflict("The item changed meanwhile; reload it.")

    def items_of(self, contract_id: str, status: str | None, after: str | None, limit: int) -> list[dict]:
        query: dict[str, Any] = {"contract_id": contract_id}
        if status:
            query["status"] = status
        if after:
            query["_id"] = {"$gt": after}
        return self._find(ITEMS, query, limit=limit)

    def approved_items(self, keys: list[str]) -> list[dict]:
        return self._find(ITEMS, {"bill_key": {"$in": keys}, "status": "approved"})

    # credits

    def insert_credit(self, credit: dict) -> bool:
        """False when this window's credit is already recorded (the same breach delivered as a new event)."""
        if self.db[CREDITS].find_one({"_id": credit["id"]}, {"_id": 1}, session=self.session) is not None:
            return False
        self.db[CREDITS].insert_one(document(credit), session=self.session)
        return True

    def credits_owed(self, contract_id: str) -> list[dict]:
        """Credits no invoice will carry (the contract's periods are all invoiced) with something left of them."""
        return [c for c in self._find(CREDITS, {"contract_id": contract_id, "bill_key": None})
                if Decimal(c["remaining"]["amount"]) > 0]

    def invoice_of_period(self, contract_id: str, period_start: str) -> dict | None:
        found = self._find(INVOICES, {"contract_id": contract_id, "period.start": period_start}, limit=1)
        return found[0] if found else None

    def open_credits(self, keys: list[str]) -> list[dict]:
        return self._find(CREDITS, {"bill_key": {"$in": keys}})

    def carry_credits(self, updates: list[tuple[str, dict]]) -> None:
        if updates:
            self.db[CREDITS].bulk_write([UpdateOne({"_id": credit_id}, {"$set": to_stored(fields)})
                                         for credit_id, fields in updates], ordered=False, session=self.session)

    # numbering

    def allocate_in_series(self, collection: str, series: str, count: int = 1) -> int:
        """The first of ``count`` numbers of an issuer's ``series`` of invoices or credit notes. A series is new
        when its counter is: it starts after the highest number its issuer was given in the per-tenant numbering
        that came before, so no number of one issuer is used twice."""
        counter = f"{collection}:{series}"
        provider_id, lane = _series_lane(series)
        start, last = SERIES_BLOCKS[lane]
        if self.db[COUNTERS].find_one({"_id": counter}, {"_id": 1}, session=self.session) is None:
            highest = None
            if lane == DEFAULT_LANE:
                highest = self.db[collection].find_one({"provider_id": provider_id, "series": {"$exists": False}},
                                                       {"sequence": 1}, sort=[("sequence", -1)],
                                                       session=self.session)
            self.db[COUNTERS].insert_one({"_id": counter, "next": (highest["sequence"] + 1) if highest else start},
                                         session=self.session)
        first = self.allocate(counter, count)
        if first + count - 1 > last:
            raise Conflict(f"the {lane} series of {provider_id} has no numbers left in its block (up to {last:,})")
        return first

    def allocate(self, counter: str, count: int) -> int:
        """The first of ``count`` consecutive numbers of ``counter``, in this transaction: two transactions
        allocating at once conflict on the counter document and one retries, so numbers are gapless and unique."""
        found = self.db[COUNTERS].find_one({"_id": counter}, session=self.session)
        first = found["next"] if found else 1
        if found:
            self.db[COUNTERS].update_one({"_id": counter, "next": first}, {"$set": {"next": first + count}},
                                         session=self.session)
        else:
            self.db[COUNTERS].insert_one({"_id": counter, "next": first + count}, session=self.session)
        return first

    # invoices

    def insert_invoices(self, invoices: list[dict]) -> None:
        if invoices:
            self.db[INVOICES].insert_many([document(i) for i in invoices], ordered=True, session=self.session)

    def invoice(self, invoice_id: Any) -> dict | None:
        return self._one(INVOICES, invoice_id)

    def replace_invoice(self, before: dict, after: dict) -> None:
        result = self.db[INVOICES].replace_one({"_id": after["id"], "revision": before["revision"]},
                                               document(after), session=self.session)
        if result.matched_count != 1:
            raise Conflict("The invoice changed meanwhile; try again.")

    def invoices_of(self, query: dict, after: str | None, limit: int) -> list[dict]:
        if after:
            query = {**query, "_id": {"$gt": after}}
        return self._find(INVOICES, query, limit=limit)

    def invoices_visible_to(self, kind: str, party_id: str | None, contract_id: str | None, after: str | None,
                            limit: int) -> list[dict]:
        """The invoices a party may see (the operator: all), of one contract or all, by id after ``after``."""
        query: dict[str, Any] = {}
        if kind != "operator":
            query["tenant_id" if kind == "client" else "provider_id"] = party_id
        if contract_id:
            query["contract_id"] = contract_id
        return self.invoices_of(query, after, limit)

    def invoices_in(self, tenant_id: str, start: str, end: str) -> list[dict]:
        return self._find(INVOICES, {"tenant_id": tenant_id, "period.start": {"$gte": start, "$lte": end}})

    def overdue_candidates(self, now: datetime, limit: int) -> list[str]:
        cursor = self.db[INVOICES].find({"open": True, "overdue_at": None, "due_at": {"$lt": now}}, {"_id": 1},
                                        session=self.session).limit(limit)
        return [d["_id"] for d in cursor]

    def mark_overdue(self, invoice_id: str, now: datetime) -> bool:
        """True for the one transaction that marks it (another replica's finds it marked)."""
        result = self.db[INVOICES].update_one({"_id": invoice_id, "overdue_at": None, "open": True},
                                              {"$set": {"overdue_at": now}}, session=self.session)
        return result.modified_count == 1

    # payments and credit notes

    def payment_by_reference(self, invoice_id: str, reference: str) -> dict | None:
        return resource(self.db[PAYMENTS].find_one({"invoice_id": invoice_id, "reference": reference},
                                                   session=self.session))

    def credit_note_by_key(self, invoice_id: str, idempotency_key: str) -> dict | None:
        return resource(self.db[CREDIT_NOTES].find_one({"invoice_id": invoice_id, "idempotency_key": idempotency_key},
                                                       session=self.session))

    def refund_by_reference(self, contract_id: str, reference: str) -> dict | None:
        return resource(self.db[REFUNDS].find_one({"contract_id": contract_id, "reference": reference},
                                                  session=self.session))

    def credit_notes_of(self, invoice_ids: list[str]) -> list[dict]:
        return self._find(CREDIT_NOTES, {"invoice_id": {"$in": invoice_ids}}) if invoice_ids else []

    def credits_of(self, contract_id: str) -> list[dict]:
        return self._find(CREDITS, {"contract_id": contract_id})

    def insert(self, collection: str, record: dict) -> None:
        self.db[collection].insert_one(document(record), session=self.session)

    def records_of(self, collection: str, invoice_id: str) -> list[dict]:
        return self._find(collection, {"invoice_id": invoice_id})

    # in-house cost estimates

    def in_house_costs(self, tenant_id: str) -> dict:
        found = self._one(IN_HOUSE_COSTS, tenant_id)
        return found["costs"] if found else {}

    def set_in_house_costs(self, tenant_id: str, costs: dict, now: datetime) -> None:
        self.db[IN_HOUSE_COSTS].replace_one({"_id": tenant_id}, document({"id": tenant_id, "costs": costs,
                                                                          "updated_at": now}),
                                            upsert=True, session=self.session)

    def health(self) -> dict:
        self.db.command("ping")
        return {"database": "ok", "outbox_backlog": pending_count(self.db)}
