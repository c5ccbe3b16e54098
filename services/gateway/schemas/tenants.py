"""Client organisations (tenants) and the API keys of tenants and providers."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.gateway.schemas.common import SEGMENTS, Strict, _name, _one_of, _text, _timestamp
from shared.vocabulary import apikeys
from shared.vocabulary.fields import ClockTime, CountryCode, StartTime, TimeZone
from shared.vocabulary.terms import WEEKDAYS

# --- tenants -----------------------------------------------------------------------------------------------------


class BusinessHoursSchema(Strict):
    days = fields.List(_one_of(list(WEEKDAYS)), required=True, validate=validate.Length(min=1, max=7),
                       metadata={"uniqueItems": True})
    start = StartTime(required=True)
    end = ClockTime(required=True, metadata={"description": "start > end crosses midnight"})


class TenantCreateSchema(Strict):
    name = _name(200, required=True)
    country = CountryCode(required=True)
    time_zone = TimeZone(required=True)
    segment = _one_of(SEGMENTS, required=True)
    core_competencies = fields.List(_name(80), validate=validate.Length(max=30))
    business_hours = fields.Nested(BusinessHoursSchema, metadata={
        "description": "When the client works, in its time zone (default 09:00-17:00 Mon-Fri); its postings' "
                       "overlap rule and explanations use it unless a posting sets its own."})
    legal_name = _text(200, allow_none=True, metadata={"description": "The registered name invoices bill."})
    address = _text(500, allow_none=True, metadata={"description": "Billing address, lines separated by newlines."})
    tax_id = _text(50, allow_none=True, metadata={"description": "VAT / GST id; invoices name it."})


class TenantSchema(Schema):
    id = fields.String(required=True, metadata={"example": "ten_0f8fad5bd9cb469fa16570867728950e"})
    name = fields.String(required=True)
    country = fields.String(required=True)
    time_zone = fields.String(required=True)
    segment = _one_of(SEGMENTS, required=True)
    core_competencies = fields.List(fields.String(), required=True)
    business_hours = fields.Nested(BusinessHoursSchema, metadata={
        "description": "The client's business hours (absent on tenants registered before them: 09:00-17:00 Mon-Fri)"})
    created_at = _timestamp(required=True)
    legal_name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    tax_id = fields.String(allow_none=True)


class TenantCreatedSchema(Schema):
    tenant = fields.Nested(TenantSchema, required=True)
    api_key = fields.String(required=True, metadata={"description": "The client key; shown once, never again."})


# --- API keys ------------------------------------------------------------------------------------------------------

KEY_STATUSES = ["active", "expiring", "expired", "revoked"]


class TenantKeyCreateSchema(Strict):
    role = _one_of(list(apikeys.CLIENT_ROLES), required=True, metadata={
        "description": "owner: everything a client may do, its keys and its audit trail; manager: the client's "
                       "work (postings, negotiation), not keys or audit; finance: invoices and reports only."})
    label = _name(80, metadata={"description": "Your name for the key (who or what uses it)."})


class ProviderKeyCreateSchema(Strict):
    label = _name(80, metadata={"description": "Your name for the key (who or what uses it)."})


class KeyRotateSchema(Strict):
    grace_seconds = fields.Integer(
        strict=True, validate=validate.Range(min=0, max=apikeys.MAX_GRACE_SECONDS),
        metadata={"description": "How long the old key keeps working (0: refused at once). Default: the "
                                 "`TASKLINKR_KEY_ROTATION_GRACE_SECONDS` setting (24 hours); at most 30 days."},
    )


class KeySchema(Schema):
    id = fields.String(required=True, metadata={"example": "key_1b4e28ba2fa1453ab9c2e0d1f6a7c8d9"})
    role = _one_of([*apikeys.CLIENT_ROLES, apikeys.PROVIDER_ROLE], required=True)
    label = fields.String(allow_none=True)
    status = _one_of(KEY_STATUSES, required=True, metadata={
        "description": "expiring: rotated, works until `expires_at`; expired and revoked keys are refused."})
    created_at = _timestamp(required=True)
    expires_at = _timestamp(allow_none=True)
    revoked_at = _timestamp(allow_none=True)
    replaced_by = fields.String(allow_none=True, metadata={"description": "The key that rotation issued for it."})
    replaces = fields.String(allow_none=True, metadata={"description": "The key this one was rotated from."})


class KeyListSchema(Schema):
    items = fields.List(fields.Nested(KeySchema), required=True)


class KeyIssuedSchema(Schema):
    key = fields.Nested(KeySchema, required=True)
    api_key = fields.String(required=True, metadata={"description": "The new key; shown once, never again."})
