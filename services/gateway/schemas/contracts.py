"""Contracts (contracting): terms, amendments, SLA measurements and windows, governance, ratings."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.gateway.schemas.common import (
    SLA_DIRECTIONS,
    SLA_WINDOWS,
    DecimalString,
    NotEmpty,
    OneOrBatch,
    PageQuerySchema,
    Strict,
    _content,
    _date,
    _name,
    _one_of,
    _text,
    _timestamp,
)
from shared.vocabulary.fields import NON_NEGATIVE_DECIMAL_PATTERN, Cursor, MoneyField

# --- contracts (contracting) ---------------------------------------------------------------------------------------
# The gateway checks the shape of each request; contracting checks the content (nested terms, SLAs, governance)
# and answers 422 with the field's messages.


class ContractListQuerySchema(PageQuerySchema):
    status = _one_of(["draft", "pending_signatures", "active", "completion_pending", "completed", "terminated"])
    cursor = Cursor("ctr")


def _non_negative_decimal(**kwargs) -> fields.String:
    return DecimalString(validate=validate.Regexp(NON_NEGATIVE_DECIMAL_PATTERN, error="Must not be negative."),
                         metadata={"pattern": NON_NEGATIVE_DECIMAL_PATTERN, **kwargs.pop("metadata", {})}, **kwargs)


class ContractTermsChangesSchema(Strict):
    unit = _content(40, allow_none=True)
    price = MoneyField()
    hours_per_week = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=168))
    seats = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=10000))
    billing_cycle = _one_of(["weekly", "monthly"])
    payment_due_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=120))


class SlaCreditSchema(Strict):
    percent = _non_negative_decimal(required=True)
    cap = MoneyField(required=True, allow_none=True)


class ContractSlaSchema(Strict):
    id = fields.String(allow_none=True, metadata={"description": "An SLA of the contract to change; absent: a new "
                                                                 "one."})
    metric = _content(60, required=True)
    target = _non_negative_decimal(required=True)
    direction = _one_of(SLA_DIRECTIONS, required=True)
    window = _one_of(SLA_WINDOWS, required=True)
    aggregation = _one_of(["average", "sum", "min", "max"], metadata={"description": "Default average."})
    credit = fields.Nested(SlaCreditSchema, metadata={"description": "The service credit of a breached window."})


class MilestoneInSchema(Strict):
    title = _name(200, required=True)
    due_date = _date(required=True, allow_none=True)
    amount = MoneyField(required=True)


class EscalationLevelSchema(Strict):
    level = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=5))
    client_contact = _content(200, required=True)
    provider_contact = _content(200, required=True)
    response_hours = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=720))


class GovernancePlanSchema(Strict):
    reporting_cadence = _one_of(["weekly", "monthly"], required=True)
    review_cadence = _one_of(["weekly", "monthly", "quarterly"], required=True)
    escalation_levels = fields.List(fields.Nested(EscalationLevelSchema), required=True,
                                    validate=validate.Length(min=1, max=5))


class ResponsibilitiesSchema(Strict):
    client = fields.List(_content(500), required=True, validate=validate.Length(max=30))
    provider = fields.List(_content(500), required=True, validate=validate.Length(max=30))


class ContractConfidentialitySchema(Strict):
    nda_terms = fields.String(allow_none=True, validate=validate.Length(max=10000))


class ContractChangesSchema(Strict):
    title = _name(200)
    scope = fields.String(validate=validate.Length(max=10000))
    responsibilities = fields.Nested(ResponsibilitiesSchema)
    deliverables = fields.List(_content(500), validate=validate.Length(max=50))
    milestones = fields.List(fields.Nested(MilestoneInSchema), validate=validate.Length(max=50))
    terms = fields.Nested(ContractTermsChangesSchema)
    confidentiality = fields.Nested(ContractConfidentialitySchema)
    start_date = _date()
    end_date = _date(allow_none=True)
    termination_notice_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    slas = fields.List(fields.Nested(ContractSlaSchema), validate=validate.Length(max=20))
    governance = fields.Nested(GovernancePlanSchema)


class TermsHashSchema(Strict):
    terms_hash = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"),
                               metadata={"description": "The terms_hash of the terms you read and agree to."})


class AmendmentChangesSchema(Strict):
    hours_per_week = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=168))
    seats = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=10000))
    price = MoneyField()
    end_date = _date(allow_none=True)
    slas = fields.List(fields.Nested(ContractSlaSchema), validate=validate.Length(max=20))


class AmendmentCreateSchema(Strict):
    changes = fields.Nested(AmendmentChangesSchema, required=True)
    reason = _content(2000, required=True)
    effective_date = _date(metadata={
        "description": "The day the amended terms take effect: today or later (never earlier work); default the day "
                       "both parties signed. Billing prices work and SLA credits by the terms of its day."})


class MeasurementInSchema(Strict):
    key = _text(100, metadata={"description": "Idempotency key of this measurement."})
    sla_id = _text(64, required=True)
    value = DecimalString(required=True, validate=validate.Regexp(NON_NEGATIVE_DECIMAL_PATTERN,
                                                                  error="Must not be negative."),
                          metadata={"pattern": NON_NEGATIVE_DECIMAL_PATTERN})
    measured_at = _timestamp(required=True)
    units = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000_000),
                           metadata={"description": "Billable units it covers (per_unit work)."})


class MeasurementsSchema(OneOrBatch):
    one = MeasurementInSchema
    batch_field = "measurements"

    key = _text(100)
    sla_id = _text(64)
    value = DecimalString(validate=validate.Regexp(NON_NEGATIVE_DECIMAL_PATTERN, error="Must not be negative."),
                          metadata={"pattern": NON_NEGATIVE_DECIMAL_PATTERN})
    measured_at = _timestamp()
    units = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000_000))
    measurements = fields.List(fields.Nested(MeasurementInSchema), validate=validate.Length(min=1, max=500),
                               metadata={"description": "A batch; or send one measurement's fields alone."})


class MeasurementsRecordedSchema(Schema):
    contract_id = fields.String()
    recorded = fields.Integer()
    late = fields.Integer(metadata={"description": "Recorded for a window already evaluated: flagged, not counted."})
    duplicate = fields.Integer(metadata={"description": "Keys seen before with the same content."})
    measurements = fields.List(fields.Dict())


class SlaWindowCloseSchema(Strict):
    start = _timestamp(required=True, metadata={"description": "The window's start (as the governance summary "
                                                               "shows it)."})


class SlaWindowClosureSchema(Schema):
    contract_id = fields.String()
    sla_id = fields.String()
    window = fields.Dict(metadata={"description": "start, end"})
    confirmed_by = fields.Dict(keys=fields.String(), values=fields.String(),
                               metadata={"description": "client / provider: when each confirmed."})
    closed_at = fields.String(allow_none=True, metadata={"description": "When the second party confirmed."})
    evaluation = fields.Dict(allow_none=True, metadata={"description": "The window's outcome once evaluated, as "
                                                                       "in sla.met.v1 / sla.breached.v1."})


def _score(criterion: str) -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=1, max=5), metadata={"description": f"{criterion}, 1-5."})


class ReviewScoresSchema(NotEmpty):
    """A score 1-5 per criterion the client judges (``REVIEW_CRITERIA``), one at least; no other names."""

    quality = _score("The quality of the work")
    timeliness = _score("Deadlines and response times kept")
    communication = _score("How clearly and promptly the provider communicated")
    value = _score("What the work was worth for its price")


class ReviewCreateSchema(Strict):
    scores = fields.Nested(ReviewScoresSchema, required=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))


class ReviewSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    due_date = _date(allow_none=True)
    scores = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Per criterion, its score 1-5 (reviews recorded before the fixed criteria may name others)."})
    overall = fields.String(metadata={"description": "The mean of the scores."})
    notes = fields.String(allow_none=True)
    recorded_at = _timestamp()


class IssueCreateSchema(Strict):
    title = _name(200, required=True)
    description = fields.String(validate=validate.Length(max=5000))
    severity = _one_of(["low", "medium", "high", "critical"], required=True)
    owner = _one_of(["client", "provider"], required=True, metadata={"description": "The side that must act."})
    due_at = _timestamp(required=True)


class IssueResolveSchema(Strict):
    resolution = _text(5000, required=True)


class IssueSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    raised_by = fields.String()
    title = fields.String()
    description = fields.String()
    severity = fields.String()
    owner = fields.String()
    due_at = _timestamp()
    level = fields.Integer(metadata={"description": "Escalation level of the governance plan it has reached."})
    status = fields.String()
    raised_at = _timestamp()
    escalations = fields.List(fields.Dict())
    escalation_due_at = _timestamp(allow_none=True)
    resolution = fields.String(allow_none=True)
    resolved_at = _timestamp(allow_none=True)
    resolved_by = fields.String(allow_none=True)


class RatingCreateSchema(Strict):
    score = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(allow_none=True, validate=validate.Length(max=2000))


class TerminationCreateSchema(Strict):
    reason = _text(2000, required=True)
    notice_days = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=365),
                                 metadata={"description": "At least the contract's termination_notice_days."})


class RatingAnswerSchema(Strict):
    text = _text(2000, required=True)


class ContractSchema(Schema):
    id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    centre_id = fields.String(allow_none=True)
    posting_id = fields.String()
    proposal_id = fields.String()
    status = fields.String()
    version = fields.Integer(metadata={"description": "Terms version: each signed amendment adds one."})
    title = fields.String()
    scope = fields.String()
    category = fields.String()
    model = fields.String()
    responsibilities = fields.Dict()
    deliverables = fields.List(fields.String())
    milestones = fields.List(fields.Dict())
    terms = fields.Dict()
    confidentiality = fields.Dict()
    start_date = _date()
    end_date = _date(allow_none=True)
    termination_notice_days = fields.Integer()
    slas = fields.List(fields.Dict())
    governance = fields.Dict()
    terms_hash = fields.String(metadata={"description": "SHA-256 of the canonical JSON of the signable terms."})
    signatures = fields.List(fields.Dict())
    lane = fields.String()
    created_at = _timestamp()
    updated_at = _timestamp()
    activated_at = _timestamp(allow_none=True)
    completed_at = _timestamp(allow_none=True)
    terminated_at = _timestamp(allow_none=True)
    history = fields.List(fields.Dict(), metadata={
        "description": "Every terms version and who agreed to it; an amendment withdrawn or declined stays here "
                       "(outcome, ended_by, ended_at, what it proposed)."})
    amendments = fields.List(fields.Dict())
    pending_amendment = fields.Dict(allow_none=True)
    ratings = fields.Dict()
    termination = fields.Dict(allow_none=True)


class ContractPageSchema(Schema):
    items = fields.List(fields.Nested(ContractSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class GovernanceSummarySchema(Schema):
    contract_id = fields.String()
    status = fields.String()
    version = fields.Integer()
    sla_compliance = fields.List(fields.Dict(), metadata={"description": "Per SLA: windows met and breached, "
                                                                         "credits, each window's outcome."})
    late_measurements = fields.Integer()
    reviews = fields.Dict(metadata={"description": "recorded, last, next_due, overdue"})
    issues = fields.Dict(metadata={"description": "open, resolved, items"})
