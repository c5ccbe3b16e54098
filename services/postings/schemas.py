"""The postings service's edges: what callers may send and what they get back.

Loading turns wire JSON into the service's Python form (``Money``, ``date``, ``Decimal``); dumping turns a
stored tenant or posting back into wire JSON. Every schema refuses unknown fields, so a typo is an error
rather than silently ignored data. A marshmallow ``ValidationError`` leaves this module as
``shared.vocabulary.errors.ValidationFailed`` with marshmallow's own ``messages`` as ``details``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from shared.vocabulary import apikeys, paging
from shared.vocabulary import fields as shared_fields
from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.fields import (
    BoundedDate,
    ClockTime,
    CountryCode,
    LanguageCode,
    MoneyField,
    Name,
    StartTime,
    StrictSchema,
    TimeZone,
    load_validated,
    parse_decimal,
)
from shared.vocabulary.terms import CATEGORY_IDS, DEFAULT_BUSINESS_HOURS, WEEKDAYS, Lane, Model
from shared.vocabulary.times import rfc3339

from . import domain


class Text(fields.String):
    """A string with surrounding whitespace removed before its length is checked."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class LowerText(Text):
    """Skill names and units compare case-insensitively, so they are stored lower-case."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).lower()


class StrictBoolean(fields.Boolean):
    """Only JSON true and false: a "yes" or a 1 for a flag is more likely a mistake than a choice."""

    def _deserialize(self, value, attr, data, **kwargs):
        # A set lookup would let 1 and 0 through, since they hash like True and False.
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class DecimalString(fields.Field):
    """A decimal sent as a string (``"60"``, ``"99.5"``): JSON numbers are refused, as for money."""

    def _deserialize(self, value, attr, data, **kwargs):
        return parse_decimal(value)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format(value, "f")


class UtcTimestamp(fields.Field):
    """Dumps an aware ``datetime`` as RFC 3339 UTC with milliseconds, the platform's one time format."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else rfc3339(value)


# -- tenants -------------------------------------------------------------------------------------------------


class BusinessHoursSchema(StrictSchema):
    """When a client works, in its own time zone: the overlap rule and coverage explanations use it."""

    days = fields.List(fields.String(validate=validate.OneOf(WEEKDAYS)), required=True,
                       validate=validate.Length(min=1, max=7))
    start = StartTime(required=True)
    end = ClockTime(required=True)

    @validates_schema
    def a_day_has_hours(self, data: dict, **kwargs) -> None:
        if len(set(data["days"])) != len(data["days"]):
            raise ValidationError("Each day may be listed once.", "days")
        if data["start"] == data["end"]:
            raise ValidationError("A business day ends after it starts.", "end")

    @post_load
    def in_week_order(self, data: dict, **kwargs) -> dict:
        return {**data, "days": sorted(data["days"], key=WEEKDAYS.index)}


class NewTenantSchema(StrictSchema):
    name = Name(required=True, validate=validate.Length(min=1, max=200))
    country = CountryCode(required=True)
    time_zone = TimeZone(required=True)
    segment = fields.String(required=True, validate=validate.OneOf([lane.value for lane in Lane]))
    core_competencies = fields.List(
        Text(validate=validate.Length(min=1, max=80)),
        load_default=list,
        validate=validate.Length(max=30),
    )
    business_hours = fields.Nested(BusinessHoursSchema, load_default=lambda: dict(DEFAULT_BUSINESS_HOURS))
    # What invoices name the client by: optional.
    legal_name = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    address = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=500))
    tax_id = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=50))


class TenantSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    country = fields.String()
    time_zone = fields.String()
    segment = fields.String()
    core_competencies = fields.List(fields.String())
    business_hours = fields.Dict()
    created_at = UtcTimestamp()
    legal_name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    tax_id = fields.String(allow_none=True)


def load_new_tenant(payload: Any) -> dict:
    return load_validated(NewTenantSchema(), payload, "The tenant is not valid.")


def tenant_to_wire(tenant: dict) -> dict:
    return TenantSchema().dump(tenant)


# -- postings ------------------------------------------------------------------------------------------------


class SkillSchema(StrictSchema):
    name = LowerText(required=True, validate=validate.Length(min=1, max=60))
    min_level = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))


class EngagementSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf([kind.value for kind in domain.Engagement]))
    unit = LowerText(load_default=None, allow_none=True, validate=validate.Length(min=1, max=40))

    @validates_schema
    def unit_only_for_per_unit_work(self, data: dict, **kwargs) -> None:
        if data["type"] == domain.Engagement.PER_UNIT and not data.get("unit"):
            raise ValidationError("Per-unit work names its unit (for example 'ticket').", "unit")
        if data["type"] != domain.Engagement.PER_UNIT and data.get("unit") is not None:
            raise ValidationError("Only per_unit engagements have a unit.", "unit")


class ShoringSchema(StrictSchema):
    """``accepted`` is the set of classes a provider may be in ("onshore or nearshore"); ``preference`` the one
    the score favours. Without ``accepted``, a required shoring accepts exactly its preference (the old form), and
    one that is not required (``required`` false or left out) accepts every class."""

    preference = fields.String(required=True, validate=validate.OneOf(domain.SHORING_PREFERENCES))
    required = StrictBoolean(load_default=None)
    accepted = fields.List(fields.String(validate=validate.OneOf(domain.SHORING_CLASSES)),
                           validate=validate.Length(min=1, max=3), load_default=None)

    @validates_schema
    def a_requirement_names_a_class(self, data: dict, **kwargs) -> None:
        accepted = data.get("accepted")
        if accepted is None:
            if data["required"] and data["preference"] == domain.ANY_SHORING:
                raise ValidationError("A required shoring names onshore, nearshore or offshore, not 'any'.",
                                      "preference")
            return
        if len(set(accepted)) != len(accepted):
            raise ValidationError("Each class may be listed once.", "accepted")
        if data["required"] is False and len(accepted) < len(domain.SHORING_CLASSES):
            raise ValidationError("Accepting only some classes is a requirement; leave 'required' out or set it "
                                  "to true.", "required")
        if data["preference"] not in (domain.ANY_SHORING, *accepted):
            raise ValidationError(f"The preferred class must be one of the accepted: {', '.join(accepted)}.",
                                  "preference")

    @post_load
    def with_accepted_classes(self, data: dict, **kwargs) -> dict:
        return domain.shoring_requirement(data["preference"], data["required"], data.get("accepted"))


class SlaRequirementSchema(StrictSchema):
    metric = Text(required=True, validate=validate.Length(min=1, max=60))
    target = DecimalString(required=True)
    direction = fields.String(required=True, validate=validate.OneOf(domain.SLA_DIRECTIONS))
    window = fields.String(required=True, validate=validate.OneOf(domain.SLA_WINDOWS))


class ConfidentialitySchema(StrictSchema):
    confidential = StrictBoolean(required=True)
    nda_required = StrictBoolean(required=True)


class PostingChangesSchema(StrictSchema):
    """Every field a client may set. Nothing is required here: this is also the shape of an edit."""

    title = Name(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=10_000))
    category = fields.String(validate=validate.OneOf(CATEGORY_IDS))
    model = fields.String(validate=validate.OneOf([model.value for model in Model]))
    required_skills = fields.List(fields.Nested(SkillSchema), validate=validate.Length(max=30))
    nice_to_have_skills = fields.List(fields.Nested(SkillSchema), validate=validate.Length(max=30))
    languages = fields.List(LanguageCode(), validate=validate.Length(max=10))
    engagement = fields.Nested(EngagementSchema, allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=1, max=168))
    seats = fields.Integer(strict=True, validate=validate.Range(min=1, max=domain.MAX_SEATS))
    start_date = BoundedDate(allow_none=True)
    duration_weeks = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=1, max=520))
    shoring = fields.Nested(ShoringSchema)
    min_overlap_hours = fields.Integer(strict=True, validate=validate.Range(min=0, max=24))
    coverage = fields.String(validate=validate.OneOf(domain.COVERAGES))
    sla_requirements = fields.List(fields.Nested(SlaRequirementSchema), validate=validate.Length(max=20))
    confidentiality = fields.Nested(ConfidentialitySchema)
    business_hours = fields.Nested(BusinessHoursSchema, allow_none=True)

    @validates_schema
    def skills_are_listed_once(self, data: dict, **kwargs) -> None:
        for field_name in ("required_skills", "nice_to_have_skills"):
            names = [skill["name"] for skill in data.get(field_name) or []]
            if len(names) != len(set(names)):
                raise ValidationError("Each skill may be listed once.", field_name)


class NewPostingSchema(PostingChangesSchema):
    title = Name(required=True, validate=validate.Length(min=1, max=200))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORY_IDS))
    model = fields.String(required=True, validate=validate.OneOf([model.value for model in Model]))


class _SkillOut(Schema):
    name = fields.String()
    min_level = fields.Integer()


class _SlaOut(Schema):
    metric = fields.String()
    target = DecimalString()
    direction = fields.String()
    window = fields.String()


class PostingSchema(Schema):
    """The wire form of a posting: what every RPC answers and what events carry."""

    id = fields.String()
    tenant_id = fields.String()
    status = fields.String()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    model = fields.String()
    required_skills = fields.List(fields.Nested(_SkillOut))
    nice_to_have_skills = fields.List(fields.Nested(_SkillOut))
    languages = fields.List(fields.String())
    engagement = fields.Dict(allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(allow_none=True)
    seats = fields.Integer()
    start_date = BoundedDate(allow_none=True)
    duration_weeks = fields.Integer(allow_none=True)
    shoring = fields.Dict()
    min_overlap_hours = fields.Integer()
    coverage = fields.String()
    sla_requirements = fields.List(fields.Nested(_SlaOut))
    confidentiality = fields.Dict()
    business_hours = fields.Dict(allow_none=True)
    assessment = fields.Dict(allow_none=True)
    client = fields.Dict()
    created_at = UtcTimestamp()
    updated_at = UtcTimestamp()
    published_at = UtcTimestamp(allow_none=True)
    cancelled_at = UtcTimestamp(allow_none=True)
    cancellation_reason = fields.String(allow_none=True)
    awarded_at = UtcTimestamp(allow_none=True)
    awarded_proposal_id = fields.String(allow_none=True)
    version = fields.Integer()


def load_new_posting(payload: Any) -> dict:
    return load_validated(NewPostingSchema(), payload, "The posting is not valid.")


def load_posting_changes(payload: Any) -> dict:
    return load_validated(PostingChangesSchema(), payload, "The changes are not valid.")


def posting_to_wire(posting: dict) -> dict:
    return PostingSchema().dump(posting)


# -- plain RPC arguments -------------------------------------------------------------------------------------


def load_confirm_core(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed("confirm_core must be true or false.",
                               details={"confirm_core": ["Not a valid boolean."]})
    return value


def load_key_role(role: Any) -> str:
    if role not in apikeys.CLIENT_ROLES:
        raise ValidationFailed("Unknown role.", {"role": [f"Must be one of {', '.join(apikeys.CLIENT_ROLES)}."]})
    return role


def load_cancellation_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 500:
        raise ValidationFailed("Say why the posting is cancelled.",
                               details={"reason": ["A reason of 1 to 500 characters is required."]})
    return reason.strip()


def load_page(status: Any, limit: Any, cursor: Any) -> tuple[str | None, int, str | None]:
    """Checks a list of postings; returns the status filter, the page size and the id to continue after."""
    return paging.load_page(status, limit, cursor, statuses=domain.STATUSES, prefix="pst")


# -- invitations and proposals -------------------------------------------------------------------------------


class TermsSchema(StrictSchema):
    """What a provider offers or a client counters with; the price means what the posting's budget means."""

    price = MoneyField(required=True)
    hours_per_week = fields.Integer(load_default=None, allow_none=True, strict=True,
                                    validate=validate.Range(min=1, max=168))
    available_from = BoundedDate(required=True)


class OfferSchema(StrictSchema):
    terms = fields.Nested(TermsSchema, required=True)
    note = Text(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class _TermsOut(Schema):
    price = MoneyField()
    hours_per_week = fields.Integer(allow_none=True)
    available_from = BoundedDate()


class _StepOut(Schema):
    step = fields.Integer()
    action = fields.String()
    by = fields.String()
    actor = fields.String()
    at = UtcTimestamp()
    terms = fields.Nested(_TermsOut)
    note = fields.String(allow_none=True)


class ProposalSchema(Schema):
    id = fields.String()
    posting_id = fields.String()
    tenant_id = fields.String()
    invitation_id = fields.String()
    provider_id = fields.String()
    centre_id = fields.String(allow_none=True)
    engagement = fields.Dict(allow_none=True)
    status = fields.String()
    terms = fields.Nested(_TermsOut)
    history = fields.List(fields.Nested(_StepOut))
    agreed_at = UtcTimestamp(allow_none=True)
    closed_reason = fields.String(allow_none=True)
    created_at = UtcTimestamp()
    updated_at = UtcTimestamp()
    version = fields.Integer()


class _PostingSummaryOut(Schema):
    title = fields.String()
    category = fields.String()
    model = fields.String()
    engagement = fields.Dict(allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(allow_none=True)
    seats = fields.Integer()
    start_date = BoundedDate(allow_none=True)
    duration_weeks = fields.Integer(allow_none=True)
    confidentiality = fields.Dict()


class InvitationSchema(Schema):
    id = fields.String()
    posting_id = fields.String()
    tenant_id = fields.String()
    provider_id = fields.String()
    centre_id = fields.String(allow_none=True)
    status = fields.String()
    shortlist_version = fields.Integer()
    rank = fields.Integer()
    posting = fields.Nested(_PostingSummaryOut)
    decline_reason = fields.String(allow_none=True)
    proposal_id = fields.String(allow_none=True)
    invited_at = UtcTimestamp()
    responded_at = UtcTimestamp(allow_none=True)
    version = fields.Integer()


def load_offer(terms: Any, note: Any) -> tuple[dict, str | None]:
    loaded = load_validated(OfferSchema(), {"terms": terms, "note": note}, "The terms are not valid.")
    return loaded["terms"], loaded["note"] or None


def proposal_to_wire(proposal: dict) -> dict:
    return ProposalSchema().dump(proposal)


def invitation_to_wire(invitation: dict) -> dict:
    return InvitationSchema().dump(invitation)


def terms_to_wire(terms: dict) -> dict:
    return _TermsOut().dump(terms)


def load_party(party: Any) -> tuple[domain.Party, str]:
    """``{"kind": "client", "tenant_id": ...}`` or ``{"kind": "provider", "provider_id": ...}``: who acts, and
    how the history names them."""
    return shared_fields.load_party(party, domain.Party, "The acting party is not valid.",
                                    problem="A client with a tenant_id or a provider with a provider_id.")


def load_identifier(value: Any, name: str, prefix: str) -> str:
    if not isinstance(value, str) or not value.startswith(prefix) or len(value) > 100:
        raise ValidationFailed(f"{name} is not valid.", details={name: [f"An id starting with {prefix}."]})
    return value


def load_decline_reason(reason: Any) -> str | None:
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason.strip()) > 500:
        raise ValidationFailed("The reason is not valid.", details={"reason": ["At most 500 characters."]})
    return reason.strip() or None


def load_invitation_page(status: Any, limit: Any, cursor: Any) -> tuple[str | None, int, str | None]:
    return paging.load_page(status, limit, cursor, statuses=domain.INVITATION_STATUSES, prefix="inv")
