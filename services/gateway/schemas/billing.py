"""Billing: billable items, billing accounts, invoices, payments, credit notes, refunds and invoice runs."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.gateway.schemas.common import (
    ByKind,
    DecimalString,
    OneOrBatch,
    PageQuerySchema,
    Strict,
    _date,
    _one_of,
    _text,
    _timestamp,
)
from shared.vocabulary.fields import Cursor, MoneyField

# --- billing -------------------------------------------------------------------------------------------------------
# Billing checks each item against the contract (dates, capacity, kind) and answers 422 with the reason per key.


class AmountSchema(Schema):
    amount = fields.String(required=True, metadata={"description": "Decimal string.", "example": "1234.50"})
    currency = fields.String(required=True, metadata={"example": "EUR"})


def _amount(**kwargs) -> fields.Nested:
    return fields.Nested(AmountSchema, **kwargs)


# A positive quantity with at most two decimals, at most 100000 (hours, units), as billing takes it.
QUANTITY_PATTERN = r"^([1-9][0-9]{0,4}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?)|100000(\.00?)?)$"


def _quantity(**kwargs) -> fields.String:
    return DecimalString(validate=validate.Regexp(QUANTITY_PATTERN, error="A positive number with at most two "
                                                  "decimals, at most 100000."),
                         metadata={"pattern": QUANTITY_PATTERN, **kwargs.pop("metadata", {})}, **kwargs)


class BillableItemInSchema(ByKind):
    requires = {"time": ("hours", "description"), "usage": ("units", "description"), "milestone": ("milestone",)}
    belongs = {"hours": "time", "units": "usage", "milestone": "milestone"}

    kind = _one_of(list(requires), required=True)
    key = _text(100, metadata={"description": "Idempotency key of this item."})
    date = _date(required=True)
    hours = _quantity(metadata={"description": "time: hours worked that day, as a decimal string."})
    units = _quantity(metadata={"description": "usage: units (tickets, documents, calls)."})
    milestone = fields.Integer(strict=True, validate=validate.Range(min=0, max=49),
                               metadata={"description": "milestone: its index in the contract."})
    description = _text(500, metadata={"description": "What was done (time and usage)."})


class BillableItemsSchema(OneOrBatch):
    one = BillableItemInSchema

    kind = _one_of(list(BillableItemInSchema.requires))
    key = _text(100)
    date = _date()
    hours = _quantity()
    units = _quantity()
    milestone = fields.Integer(strict=True, validate=validate.Range(min=0, max=49))
    description = _text(500)
    # Kept under another attribute: a dict's own ``items`` method would stand in for a missing batch on dump.
    batch = fields.List(fields.Nested(BillableItemInSchema), validate=validate.Length(min=1, max=500),
                        data_key="items", metadata={"description": "A batch; or send one item's fields alone."})


class BillableItemSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    kind = fields.String()
    key = fields.String()
    date = _date()
    hours = fields.String(allow_none=True)
    units = fields.String(allow_none=True)
    milestone = fields.Integer(allow_none=True)
    description = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "submitted, approved or rejected."})
    reason = fields.String(allow_none=True, metadata={"description": "Why it was rejected."})
    submitted_at = _timestamp()
    reviewed_at = _timestamp(allow_none=True)
    billing_period = fields.Dict(allow_none=True, metadata={"description": "{start, end}: the invoice that bills "
                                                                           "it (approved items)."})
    outcome = fields.String(metadata={"description": "recorded or duplicate (on submission)."})


class BillableItemsRecordedSchema(Schema):
    contract_id = fields.String()
    recorded = fields.Integer()
    duplicate = fields.Integer(metadata={"description": "Keys seen before with the same content: not counted again."})
    items = fields.List(fields.Nested(BillableItemSchema))


class BillableItemQuerySchema(PageQuerySchema):
    status = _one_of(["submitted", "approved", "rejected"])
    cursor = Cursor("itm")


class BillableItemPageSchema(Schema):
    items = fields.List(fields.Nested(BillableItemSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class RejectionSchema(Strict):
    reason = _text(1000, required=True)


class InvoiceLineSchema(Schema):
    kind = fields.String(metadata={"description": "time, usage, milestone, retainer or sla_credit."})
    description = fields.String()
    date = _date(allow_none=True)
    quantity = fields.String()
    unit_price = _amount(allow_none=True, metadata={
        "description": "The price of the terms in force on the line's date (an amendment never reprices earlier "
                       "work)."})
    amount = _amount(metadata={"description": "Rounded once, half up, to the currency's minor unit."})
    source_id = fields.String(allow_none=True)
    unit = fields.String(allow_none=True, metadata={"description": "What the quantity counts: hours, days, the "
                                                                   "contract's unit of work."})
    basis = fields.String(metadata={"description": "A retainer line's proration: its days of the month's days."})


class PaymentSchema(Schema):
    id = fields.String()
    amount = _amount()
    reference = fields.String()
    received_at = _timestamp()
    recorded_at = _timestamp()
    to_credit_balance = _amount(metadata={
        "description": "What the payment paid beyond the invoice's balance: added to the account's credit balance "
                       "(negative: this invoice was paid from the credit balance)."})


class CreditNoteSchema(Schema):
    id = fields.String()
    number = fields.String(metadata={"example": "CN-000001"})
    invoice_id = fields.String()
    invoice_number = fields.String()
    contract_id = fields.String()
    amount = _amount()
    net = _amount(metadata={"description": "The net it corrects: pro rata of the invoice (an SLA credit: the "
                                           "credit itself)."})
    tax = _amount(metadata={"description": "The tax it corrects (amount - net)."})
    reason = fields.String()
    issued_at = _timestamp()


class RefundCreateSchema(Strict):
    amount = MoneyField(required=True)
    reference = _text(200, required=True, metadata={"description": "The refund's reference; its idempotency key."})


class RefundSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    amount = _amount()
    reference = fields.String()
    recorded_at = _timestamp()
    outcome = fields.String(metadata={"description": "recorded or duplicate."})


class InvoiceSchema(Schema):
    id = fields.String()
    number = fields.String(metadata={"description": "Gapless in the issuer's (the provider's) series.",
                                     "example": "INV-000001"})
    tenant_id = fields.String()
    provider_id = fields.String()
    contract_id = fields.String()
    title = fields.String()
    category = fields.String()
    model = fields.String()
    shoring = fields.String(allow_none=True)
    currency = fields.String()
    period = fields.Dict(metadata={"description": "{start, end} (inclusive dates)."})
    issued_at = _timestamp()
    due_date = _date()
    due_at = _timestamp()
    lines = fields.List(fields.Nested(InvoiceLineSchema))
    charges = _amount()
    credits = _amount(metadata={"description": "SLA credits applied."})
    net = _amount()
    tax = fields.Dict(metadata={"description": "{country, name, rate (percent), amount, treatment (domestic, "
                                               "reverse_charge, outside_scope, not_in_table, unknown), note (the "
                                               "wording the invoice carries)}"})
    total = _amount()
    fixed = _amount(metadata={"description": "Retainer and milestones."})
    variable = _amount(metadata={"description": "Time and usage."})
    supplier = fields.Dict(metadata={
        "description": "The provider, who issues the invoice (the platform bills as its agent), as named when "
                       "issued: id, name, legal_name, address, tax_id, country, payment_instructions."})
    client = fields.Dict(metadata={"description": "The client organisation as named when issued: id, name, "
                                                  "legal_name, address, tax_id, country."})
    status = fields.String(metadata={"description": "issued, partially_paid, paid, overpaid, overdue or credited."})
    paid = _amount()
    credited = _amount(metadata={"description": "By credit notes."})
    balance = _amount(metadata={"description": "total - paid - credited; negative when overpaid."})
    overdue_at = _timestamp(allow_none=True)
    payments = fields.List(fields.Nested(PaymentSchema))
    credit_notes = fields.List(fields.Nested(CreditNoteSchema))
    outcome = fields.String(metadata={"description": "recorded or duplicate (on a payment)."})


class InvoiceSummarySchema(Schema):
    id = fields.String()
    number = fields.String()
    contract_id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    title = fields.String()
    currency = fields.String()
    period = fields.Dict()
    issued_at = _timestamp()
    due_date = _date()
    total = _amount()
    paid = _amount()
    credited = _amount()
    balance = _amount()
    status = fields.String()


class InvoiceListQuerySchema(PageQuerySchema):
    status = _one_of(["issued", "partially_paid", "paid", "overpaid", "overdue", "credited"])
    cursor = Cursor("inv")
    contract_id = _text(64)


class InvoicePageSchema(Schema):
    items = fields.List(fields.Nested(InvoiceSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True)


class PaymentCreateSchema(Strict):
    amount = MoneyField(required=True)
    reference = _text(200, required=True, metadata={"description": "The payment's reference; its idempotency key."})
    received_at = _timestamp(metadata={"description": "When the money arrived (not in the future); default now."})


class CreditNoteCreateSchema(Strict):
    amount = MoneyField(required=True)
    reason = _text(1000, required=True)


class BillingAccountSchema(Schema):
    contract_id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    title = fields.String()
    status = fields.String()
    currency = fields.String()
    terms = fields.Dict()
    start_date = _date()
    end_date = _date(allow_none=True)
    invoiced_through = _date(allow_none=True)
    next_period_end = _date(allow_none=True, metadata={"description": "The next period invoiced ends then."})
    invoiced = _amount()
    paid = _amount()
    credited = _amount()
    balance = _amount()
    overdue = _amount()
    sla_credits_owed = _amount(metadata={
        "description": "SLA credits that no invoice or credit note could take (they exceeded what the contract's "
        "last invoices can still be credited): owed to the client as a refund."})
    credit_balance = _amount(metadata={
        "description": "Overpayments not yet used: the next invoice is paid from it first, or it is refunded."})
    sla_credits = fields.List(fields.Dict(), metadata={
        "description": "Every SLA credit from the moment its window is evaluated: sla_id, metric, window, owed, "
                       "remaining and state (awaiting_invoice, applied, settled_by_credit_note, owed)."})
    invoices = fields.List(fields.Dict(), metadata={"description": "Each invoice's number, status and balance."})


class InvoiceRunSchema(Strict):
    as_of = _date(metadata={"description": "Invoice periods that ended before this day; default today."})
    tenant_id = _text(64, metadata={"description": "One client organisation; default all."})


class InvoiceRunSummarySchema(Schema):
    as_of = _date()
    invoices_issued = fields.Integer()
    deferred_batches = fields.Integer(metadata={"description": "Batches another run was issuing at the same time."})
