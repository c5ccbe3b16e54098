"""Reports: the audit trail and the cost reports (with the in-house costs they compare against)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.gateway.schemas.common import PageQuerySchema, Strict, _date, _one_of, _text, _timestamp
from shared.vocabulary.fields import BoundedDateTime, MoneyField
from shared.vocabulary.terms import CATEGORY_IDS

# --- audit trail ---------------------------------------------------------------------------------------------------

AUDIT_OUTCOMES = ["succeeded", "failed", "unknown"]


class AuditQuerySchema(PageQuerySchema):
    cursor = fields.String(validate=validate.Regexp(r"^[0-9a-f]{24}$", error="Not a cursor this API issued."),
                           metadata={"description": "The `next_cursor` of the page before."})
    operation = _text(80, metadata={"description": "The route's operation id, e.g. `publish_posting`."})
    key_id = _text(80, metadata={"description": "Requests made with this key."})
    actor = _text(120, metadata={"description": "`operator`, `client:<tenant_id>` or `provider:<provider_id>`."})
    resource_id = _text(120, metadata={"description": "Requests that named or created this resource."})
    correlation_id = _text(128)
    outcome = _one_of(AUDIT_OUTCOMES)
    since = BoundedDateTime(metadata={"description": "At or after this time (RFC 3339)."})
    until = BoundedDateTime(metadata={"description": "Before this time (RFC 3339)."})


class OperatorAuditQuerySchema(AuditQuerySchema):
    tenant_id = _text(80, metadata={"description": "Requests by or about this client organisation."})


class AuditPrincipalSchema(Schema):
    # unverified: an inbound message without a tenant's or provider's broker-validated user_id; system: the
    # platform itself (the tenant sweep removing what a tenant's broker user declared).
    kind = _one_of(["operator", "client", "provider", "unverified", "system"], required=True)
    role = fields.String(allow_none=True)
    tenant_id = fields.String(allow_none=True)
    provider_id = fields.String(allow_none=True)


class AuditRecordSchema(Schema):
    id = fields.String(required=True)
    at = _timestamp(required=True, metadata={"description": "When it arrived (UTC)."})
    finished_at = _timestamp(allow_none=True)
    actor = fields.String(required=True)
    principal = fields.Nested(AuditPrincipalSchema, required=True)
    key_id = fields.String(allow_none=True, metadata={"description": "The key's id; never the key."})
    tenant_id = fields.String(allow_none=True, metadata={"description": "The client organisation concerned."})
    operation = fields.String(required=True)
    method = fields.String(required=True)
    path = fields.String(required=True)
    resource_ids = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    status = fields.Integer(allow_none=True, metadata={"description": "The HTTP status answered; null: unknown."})
    outcome = _one_of(AUDIT_OUTCOMES, required=True, metadata={
        "description": "unknown: the request was passed on but its answer could not be recorded."})
    error = fields.String(allow_none=True)
    correlation_id = fields.String(required=True)


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditRecordSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class CostReportQuerySchema(Strict):
    json_types = False

    start = _date(required=True, data_key="from", metadata={"description": "The period's first day."})
    months = fields.Integer(load_default=12, validate=validate.Range(min=1, max=36), metadata={
        "description": "How many calendar months the period spans, 1-36, default 12: the report covers "
                       "[from, from + months), e.g. from 2027-01-15 for 1 month is 2027-01-15 to 2027-02-14."})


class CostReportSchema(Schema):
    start = _date(attribute="from", data_key="from", metadata={"description": "The period's first day."})
    end = _date(attribute="to", data_key="to", metadata={
        "description": "The period's last day: the day before `from` + `months` (never past 2999-12-31)."})
    months = fields.String(metadata={"description": "The months the period spans, as asked."})
    currencies = fields.List(fields.Dict(), metadata={
        "description": "Per currency: spend (net of SLA credits and credit notes, before tax), tax, total, fixed "
                       "and variable with their shares, credits, credit_notes (their net), spend by_category, "
                       "by_model, by_shoring and by_provider, and the saving per category against the in-house "
                       "monthly estimate over the months its invoices cover (months_compared)."})


class InHouseCostsSchema(Strict):
    monthly = fields.Dict(keys=_one_of(list(CATEGORY_IDS)), values=MoneyField(), required=True,
                          metadata={"description": "Per category, what the work would cost in-house a month."})
