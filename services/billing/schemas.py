"""Billing's edges: what callers may send (validated, unknown fields refused) and the wire form of what they get.

A marshmallow ``ValidationError`` leaves as ``ValidationFailed`` with marshmallow's messages as details.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.vocabulary import fields as shared_fields
from shared.vocabulary import paging
from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.fields import (
    BoundedDate,
    BoundedDateTime,
    MoneyField,
    StrictSchema,
    jsonable,
    load_validated,
    parse_decimal,
)
from shared.vocabulary.idempotency import key_batch
from shared.vocabulary.terms import CATEGORY_IDS

from . import domain

DEFAULT_PAGE = 20
MAX_BATCH = 500
DEFAULT_REPORT_MONTHS, MAX_REPORT_MONTHS = 12, 36
PARTIES = ("client", "provider", "operator")
INVOICE_STATUSES = ("issued", "partially_paid", "paid", "overpaid", "overdue", "credited")


class Quantity(fields.Field):
    """A positive decimal sent as a string (``"2.5"``), at most two decimals; JSON numbers are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        number = parse_decimal(value)
        if number <= 0 or number.as_tuple().exponent < -2 or number > 100_000:
            raise ValidationError("A positive number with at most two decimals.")
        return format(number, "f")


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class ItemSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(domain.ITEM_KINDS))
    key = _text(100, load_default=None)
    date = BoundedDate(required=True)
    hours = Quantity()
    units = Quantity()
    milestone = fields.Integer(strict=True, validate=validate.Range(min=0, max=49))
    description = _text(500, load_default=None)

    @validates_schema
    def _fits_its_kind(self, data, **kwargs):
        needs = {"time": "hours", "usage": "units", "milestone": "milestone"}[data["kind"]]
        if data.get(needs) is None:
            raise ValidationError({needs: [f"Required for {data['kind']}."]})
        for other in {"hours", "units", "milestone"} - {needs}:
            if data.get(other) is not None:
                raise ValidationError({other: [f"Not part of {data['kind']}."]})
        if data["kind"] != "milestone" and not data.get("description"):
            raise ValidationError({"description": ["Say what was done."]})


class ItemBatchSchema(StrictSchema):
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1, max=MAX_BATCH))


class ReviewSchema(StrictSchema):
    reason = _text(1000, load_default=None)


class PaymentSchema(StrictSchema):
    amount = MoneyField(required=True)
    reference = _text(200, required=True)
    received_at = BoundedDateTime(load_default=None)


class RefundSchema(StrictSchema):
    amount = MoneyField(required=True)
    reference = _text(200, required=True)


class CreditNoteSchema(StrictSchema):
    amount = MoneyField(required=True)
    reason = _text(1000, required=True)


class InHouseCostsSchema(StrictSchema):
    monthly = fields.Dict(keys=fields.String(validate=validate.OneOf(CATEGORY_IDS)), values=MoneyField(),
                          required=True)


class RunSchema(StrictSchema):
    as_of = BoundedDate(load_default=None)
    tenant_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))


class PeriodSchema(StrictSchema):
    """A report period: ``months`` calendar months from ``from`` (``domain.report_period``)."""

    start = BoundedDate(required=True, data_key="from")
    months = fields.Integer(load_default=DEFAULT_REPORT_MONTHS, validate=validate.Range(min=1, max=MAX_REPORT_MONTHS))


def load_party(party: Any) -> tuple[str, str | None]:
    """Who acts: a client organisation or a provider with its id, or the operator (none)."""
    return shared_fields.load_party(party, PARTIES, "Not a party.")


def load_items(payload: Any, idempotency_key: Any) -> list[dict]:
    """One item or ``{"items": [...]}``. Each needs a ``key``; without one, the request's ``Idempotency-Key``
    plus the item's position makes it."""
    batch = payload if isinstance(payload, dict) and "items" in payload else {"items": [payload]}
    items = load_validated(ItemBatchSchema(), batch, "The billable items are not valid.")["items"]
    for item in items:
        item["date"] = item["date"].isoformat()
    return key_batch(items, idempotency_key, "item")


def load_review(decision: Any, payload: Any) -> tuple[str, str | None]:
    if decision not in ("approve", "reject"):
        raise ValidationFailed("Approve or reject.", details={"decision": ["approve or reject"]})
    reason = load_validated(ReviewSchema(), payload or {}, "The review is not valid.")["reason"]
    if decision == "reject" and not reason:
        raise ValidationFailed("Say why the item is rejected.", details={"reason": ["Required to reject."]})
    return decision, reason


def load_payment(payload: Any) -> dict:
    return load_validated(PaymentSchema(), payload, "The payment is not valid.")


def load_refund(payload: Any) -> dict:
    return load_validated(RefundSchema(), payload, "The refund is not valid.")


def load_credit_note(payload: Any) -> dict:
    return load_validated(CreditNoteSchema(), payload, "The credit note is not valid.")


def load_in_house_costs(payload: Any) -> dict:
    loaded = load_validated(InHouseCostsSchema(), payload, "The in-house cost estimates are not valid.")
    return {category: money.to_wire() for category, money in loaded["monthly"].items()}


def load_run(payload: Any) -> tuple[str | None, str | None]:
    loaded = load_validated(RunSchema(), payload or {}, "The invoice run is not valid.")
    return (loaded["as_of"].isoformat() if loaded["as_of"] else None), loaded["tenant_id"]


def load_period(start: Any, months: Any) -> tuple[date, int]:
    """The first day and the number of months of a cost report; ``months`` None: the default (a year)."""
    period = {"from": start} if months is None else {"from": start, "months": months}
    loaded = load_validated(PeriodSchema(), period, "The report period is not valid.")
    return loaded["start"], loaded["months"]


def load_page(status: Any, limit: Any, cursor: Any, statuses: tuple[str, ...],
              prefix: str) -> tuple[str | None, int, str | None]:
    """The status filter, the page size and the id to continue after (a cursor is the last ``<prefix>_…`` id of the
    page before)."""
    return paging.load_page(status, limit, cursor, statuses=statuses, prefix=prefix)


# -- wire form -----------------------------------------------------------------------------------------------------

# The invoice object of the event contract (contracts-schema/events/billing/billing.schema.json).
INVOICE_FIELDS = ("id", "number", "tenant_id", "provider_id", "contract_id", "title", "category", "model", "shoring",
                  "currency", "period", "issued_at", "due_date", "lines", "charges", "credits", "net", "tax", "total",
                  "fixed", "variable", "supplier", "client")
ITEM_FIELDS = ("id", "contract_id", "kind", "key", "date", "hours", "units", "milestone", "description", "status",
               "reason", "submitted_at", "reviewed_at", "billing_period")


def _issued(invoice: dict) -> dict:
    """The invoice as issued (an invoice issued before parties were kept on it has none)."""
    return {key: invoice[key] for key in INVOICE_FIELDS if key in invoice}


def invoice_to_event(invoice: dict) -> dict:
    return jsonable(_issued(invoice))


def invoice_to_wire(invoice: dict, now: datetime, payments: list[dict], notes: list[dict]) -> dict:
    summary = domain.balance_summary(invoice, now)
    return jsonable({**_issued(invoice), "due_at": invoice["due_at"],
                     "status": summary["status"], "paid": invoice["paid"], "credited": invoice["credited"],
                     "balance": summary["balance"], "overdue_at": invoice["overdue_at"],
                     "payments": [payment_to_wire(p) for p in payments],
                     "credit_notes": [credit_note_to_wire(n) for n in notes]})


def invoice_summary(invoice: dict, now: datetime) -> dict:
    summary = domain.balance_summary(invoice, now)
    return jsonable({key: invoice[key] for key in ("id", "number", "contract_id", "tenant_id", "provider_id",
                                                   "title", "currency", "period", "issued_at", "due_date",
                                                   "total")} | {k: summary[k] for k in ("status", "balance")}
                    | {"paid": invoice["paid"], "credited": invoice["credited"]})


def payment_to_wire(payment: dict) -> dict:
    wire = {k: payment[k] for k in ("id", "invoice_id", "tenant_id", "provider_id", "contract_id", "amount",
                                    "reference", "received_at", "recorded_at")}
    return jsonable(wire | {k: payment[k] for k in ("to_credit_balance",) if payment.get(k) is not None})


def credit_to_wire(credit: dict) -> dict:
    """An SLA credit as the account shows it from the moment its window is evaluated: what is owed, what is left
    and where it stands (waiting for the next invoice, applied, settled by a credit note, or owed for a refund)."""
    remaining = Decimal(credit["remaining"]["amount"])
    if remaining <= 0:
        state = "settled_by_credit_note" if credit.get("credit_note_id") else "applied"
    else:
        state = "awaiting_invoice" if credit["bill_key"] else "owed"
    return jsonable({"id": credit["id"], "sla_id": credit["sla_id"], "metric": credit["metric"],
                     "window": credit["window"], "owed": credit["owed"], "remaining": credit["remaining"],
                     "state": state, "recorded_at": credit["recorded_at"]})


def refund_to_wire(refund: dict) -> dict:
    return jsonable({k: refund[k] for k in ("id", "contract_id", "tenant_id", "provider_id", "amount", "reference",
                                            "recorded_at")})


def credit_note_to_wire(note: dict) -> dict:
    wire = {k: note[k] for k in ("id", "number", "invoice_id", "invoice_number", "tenant_id", "provider_id",
                                 "contract_id", "amount", "reason", "issued_at")}
    return jsonable(wire | {k: note[k] for k in ("net", "tax") if note.get(k) is not None})


def item_to_wire(item: dict) -> dict:
    return jsonable({k: item.get(k) for k in ITEM_FIELDS})
