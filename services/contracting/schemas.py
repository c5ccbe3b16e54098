"""Contracting's edges: what callers may send, and the wire form of what they get back.

Loading validates and turns wire JSON into the Python form (decimal strings normalised, timestamps as aware
``datetime``s at millisecond precision); a marshmallow ``ValidationError`` leaves as ``ValidationFailed`` with
marshmallow's messages as details. Every schema refuses unknown fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.vocabulary import fields as shared_fields
from shared.vocabulary import paging
from shared.vocabulary.fields import (
    BoundedDateTime,
    MoneyField,
    Name,
    StrictSchema,
    WireDate,
    jsonable,
    load_validated,
    parse_decimal,
)
from shared.vocabulary.idempotency import key_batch
from shared.vocabulary.terms import REVIEW_CRITERIA

from . import domain

DEFAULT_PAGE = 20
MAX_BATCH = 500


class Text(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class DecimalString(fields.Field):
    """A non-negative decimal sent as a string (``"60"``, ``"99.5"``); JSON numbers are refused, as for money."""

    def _deserialize(self, value, attr, data, **kwargs):
        number = parse_decimal(value)
        if number < 0:
            raise ValidationError("Must not be negative.")
        return format(number, "f")


class WireMoney(MoneyField):
    """Money validated as ``MoneyField`` does, kept in wire form (decimal string amount)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).to_wire()


# Contract dates and times stay within the platform's one range (shared.vocabulary.fields): a window or an end
# computed from them never leaves Python's calendar.
IsoDate = WireDate


class Timestamp(BoundedDateTime):
    """An RFC 3339 time with an offset; loaded as UTC at millisecond precision (what MongoDB keeps)."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


_one_of = validate.OneOf


class TermsChangesSchema(StrictSchema):
    unit = Text(allow_none=True, validate=validate.Length(min=1, max=40))
    price = WireMoney()
    hours_per_week = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=168))
    seats = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=10000))
    billing_cycle = fields.String(validate=_one_of(["weekly", "monthly"]))
    payment_due_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=120))


class CreditSchema(StrictSchema):
    percent = DecimalString(required=True)
    cap = WireMoney(required=True, allow_none=True)


class SlaSchema(StrictSchema):
    id = fields.String(load_default=None, allow_none=True)
    metric = Text(required=True, validate=validate.Length(min=1, max=60))
    target = DecimalString(required=True)
    direction = fields.String(required=True, validate=_one_of(["at_least", "at_most"]))
    window = fields.String(required=True, validate=_one_of(["daily", "weekly", "monthly"]))
    aggregation = fields.String(load_default="average", validate=_one_of(["average", "sum", "min", "max"]))
    credit = fields.Nested(CreditSchema, load_default=lambda: {"percent": domain.DEFAULT_CREDIT_PERCENT,
                                                                 "cap": None})


class MilestoneSchema(StrictSchema):
    title = Name(required=True, validate=validate.Length(min=1, max=200))
    due_date = IsoDate(required=True, allow_none=True)
    amount = WireMoney(required=True)


class EscalationLevelSchema(StrictSchema):
    level = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=5))
    client_contact = Text(required=True, validate=validate.Length(min=1, max=200))
    provider_contact = Text(required=True, validate=validate.Length(min=1, max=200))
    response_hours = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=720))


class GovernanceSchema(StrictSchema):
    reporting_cadence = fields.String(required=True, validate=_one_of(["weekly", "monthly"]))
    review_cadence = fields.String(required=True, validate=_one_of(["weekly", "monthly", "quarterly"]))
    escalation_levels = fields.List(fields.Nested(EscalationLevelSchema), required=True,
                                    validate=validate.Length(min=1, max=5))


class ResponsibilitiesSchema(StrictSchema):
    client = fields.List(Text(validate=validate.Length(min=1, max=500)), required=True,
                         validate=validate.Length(max=30))
    provider = fields.List(Text(validate=validate.Length(min=1, max=500)), required=True,
                           validate=validate.Length(max=30))


class ConfidentialityChangesSchema(StrictSchema):
    nda_terms = Text(allow_none=True, validate=validate.Length(max=10000))


class ContractChangesSchema(StrictSchema):
    title = Name(validate=validate.Length(min=1, max=200))
    scope = Text(validate=validate.Length(max=10000))
    responsibilities = fields.Nested(ResponsibilitiesSchema)
    deliverables = fields.List(Text(validate=validate.Length(min=1, max=500)), validate=validate.Length(max=50))
    milestones = fields.List(fields.Nested(MilestoneSchema), validate=validate.Length(max=50))
    terms = fields.Nested(TermsChangesSchema)
    confidentiality = fields.Nested(ConfidentialityChangesSchema)
    start_date = IsoDate()
    end_date = IsoDate(allow_none=True)
    termination_notice_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    slas = fields.List(fields.Nested(SlaSchema), validate=validate.Length(max=20))
    governance = fields.Nested(GovernanceSchema)


class AmendmentChangesSchema(StrictSchema):
    hours_per_week = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=168))
    seats = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=10000))
    price = WireMoney()
    end_date = IsoDate(allow_none=True)
    slas = fields.List(fields.Nested(SlaSchema), validate=validate.Length(max=20))


class AmendmentSchema(StrictSchema):
    changes = fields.Nested(AmendmentChangesSchema, required=True)
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))
    effective_date = IsoDate(load_default=None)


class SignatureSchema(StrictSchema):
    terms_hash = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))


class MeasurementSchema(StrictSchema):
    key = Text(load_default=None, validate=validate.Length(min=1, max=100))
    sla_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    value = DecimalString(required=True)
    measured_at = Timestamp(required=True)
    units = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=10_000_000))


class WindowSchema(StrictSchema):
    start = Timestamp(required=True)


def load_window(payload: Any) -> datetime:
    return load_validated(WindowSchema(), payload, "Name the window by its start.")["start"]


class MeasurementBatchSchema(StrictSchema):
    measurements = fields.List(fields.Nested(MeasurementSchema), required=True,
                               validate=validate.Length(min=1, max=MAX_BATCH))


class ScoresSchema(StrictSchema):
    """A score 1-5 for each criterion the client judges (``REVIEW_CRITERIA``), one at least; no other names."""

    quality = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    timeliness = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    communication = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    value = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))

    @validates_schema
    def _one_at_least(self, data: dict, **kwargs) -> None:
        if not data:
            raise ValidationError(f"Score one of {', '.join(REVIEW_CRITERIA)} at least.", "_schema")


class ReviewSchema(StrictSchema):
    scores = fields.Nested(ScoresSchema, required=True)
    notes = Text(load_default=None, allow_none=True, validate=validate.Length(max=5000))


class IssueSchema(StrictSchema):
    title = Name(required=True, validate=validate.Length(min=1, max=200))
    description = Text(load_default="", validate=validate.Length(max=5000))
    severity = fields.String(required=True, validate=_one_of(["low", "medium", "high", "critical"]))
    owner = fields.String(required=True, validate=_one_of([p.value for p in domain.Party]),
                          metadata={"description": "The side that must act on the issue."})
    due_at = Timestamp(required=True)


class ResolutionSchema(StrictSchema):
    resolution = Text(required=True, validate=validate.Length(min=1, max=5000))


class RatingSchema(StrictSchema):
    score = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=5))
    comment = Text(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class TerminationSchema(StrictSchema):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))
    notice_days = fields.Integer(strict=True, load_default=None, allow_none=True,
                                 validate=validate.Range(min=0, max=365))


class AnswerSchema(StrictSchema):
    text = Text(required=True, validate=validate.Length(min=1, max=2000))


def load_party(party: Any) -> tuple[domain.Party, str]:
    """Who acts: the client organisation or the provider, with its id."""
    return shared_fields.load_party(party, domain.Party, "Not a party to a contract.")


def load_changes(payload: Any) -> dict:
    return load_validated(ContractChangesSchema(), payload, "The contract changes are not valid.")


def load_amendment(payload: Any) -> dict:
    return load_validated(AmendmentSchema(), payload, "The amendment is not valid.")


def load_signature(payload: Any) -> str:
    return load_validated(SignatureSchema(), payload, "Sign with the terms_hash you read.")["terms_hash"]


def load_measurements(payload: Any, idempotency_key: Any) -> list[dict]:
    """One measurement or ``{"measurements": [...]}``. Each needs a ``key``; without one, the request's
    ``Idempotency-Key`` plus the item's position makes it."""
    batch = payload if isinstance(payload, dict) and "measurements" in payload else {"measurements": [payload]}
    items = load_validated(MeasurementBatchSchema(), batch, "The measurements are not valid.")["measurements"]
    return key_batch(items, idempotency_key, "measurement")


def load_review(payload: Any) -> dict:
    return load_validated(ReviewSchema(), payload, "The review is not valid.")


def load_issue(payload: Any) -> dict:
    return load_validated(IssueSchema(), payload, "The issue is not valid.")


def load_resolution(payload: Any) -> str:
    return load_validated(ResolutionSchema(), payload, "Say how the issue was resolved.")["resolution"]


def load_rating(payload: Any) -> dict:
    return load_validated(RatingSchema(), payload, "The rating is not valid.")


def load_termination(payload: Any) -> dict:
    return load_validated(TerminationSchema(), payload, "The termination is not valid.")


def load_answer(payload: Any) -> str:
    return load_validated(AnswerSchema(), payload, "The answer is not valid.")["text"]


def load_page(status: Any, limit: Any, cursor: Any) -> tuple[str | None, int, str | None]:
    return paging.load_page(status, limit, cursor, statuses=[s.value for s in domain.Status], prefix="ctr")


# -- wire form ---------------------------------------------------------------------------------------------------

# The contract object of the event contracts (contracts-schema/events/contracting/contract.schema.json).
EVENT_FIELDS = ("id", "tenant_id", "provider_id", "centre_id", "posting_id", "proposal_id", "status", "version",
                "title", "scope", "category", "model", "responsibilities", "deliverables", "milestones", "terms",
                "confidentiality", "start_date", "end_date", "termination_notice_days", "slas", "governance",
                "terms_hash", "signatures", "lane", "created_at", "updated_at", "activated_at", "completed_at",
                "terminated_at")
# What the parties also see over the API: how the terms came to be, and how the contract ended.
API_FIELDS = (*EVENT_FIELDS, "history", "amendments", "pending_amendment", "ratings", "termination")


def contract_to_event(contract: dict) -> dict:
    return jsonable({key: contract[key] for key in EVENT_FIELDS})


def contract_to_wire(contract: dict) -> dict:
    return jsonable({key: contract[key] for key in API_FIELDS})


def issue_to_wire(issue: dict) -> dict:
    return jsonable({k: v for k, v in issue.items() if k not in ("tenant_id", "provider_id")})


def review_to_wire(review: dict) -> dict:
    return jsonable({k: v for k, v in review.items() if k not in ("tenant_id", "provider_id")})
