"""Postings and their negotiation: invitations, proposals, counter-offers and the award."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.gateway.schemas.common import (
    COVERAGE,
    ENGAGEMENTS,
    INVITATION_STATUSES,
    MODELS,
    POSTING_STATUSES,
    PROPOSAL_STATUSES,
    SHORING,
    SLA_DIRECTIONS,
    SLA_WINDOWS,
    DecimalString,
    PageQuerySchema,
    Strict,
    _date,
    _name,
    _one_of,
    _text,
    _timestamp,
)
from services.gateway.schemas.tenants import BusinessHoursSchema
from shared.vocabulary.fields import Cursor, LanguageCode, MoneyField
from shared.vocabulary.terms import CATEGORY_IDS

# --- postings ----------------------------------------------------------------------------------------------------


class SkillRequirementSchema(Strict):
    name = _name(60, required=True)
    min_level = fields.Integer(required=True, validate=validate.Range(min=1, max=5))


class EngagementSchema(Strict):
    type = _one_of(ENGAGEMENTS, required=True)
    unit = _name(40, allow_none=True, metadata={"description": "Per-unit work only, and then required."})

    @validates_schema
    def unit_only_for_per_unit_work(self, data: dict, **kwargs) -> None:
        if (data.get("type") == "per_unit") != (data.get("unit") is not None):
            raise ValidationError("Per-unit work names its unit; other work has none.", "unit")


class ShoringSchema(Strict):
    preference = _one_of(SHORING, required=True, metadata={
        "description": "The class the score favours; `any` for none."})
    required = fields.Boolean(metadata={
        "description": "Without `accepted`: true accepts only the preferred class, false or left out every class. "
                       "With `accepted`: true or left out; false only when every class is accepted."})
    accepted = fields.List(_one_of(["onshore", "nearshore", "offshore"]), validate=validate.Length(min=1, max=3),
                           metadata={"description": "The classes a provider may be in, e.g. [onshore, nearshore] "
                                                    "for 'never offshore'."})


class SlaRequirementSchema(Strict):
    metric = _name(60, required=True)
    target = DecimalString(required=True, metadata={"example": "60"})
    direction = _one_of(SLA_DIRECTIONS, required=True)
    window = _one_of(SLA_WINDOWS, required=True)


class ConfidentialitySchema(Strict):
    confidential = fields.Boolean(required=True)
    nda_required = fields.Boolean(required=True)


class PostingChangesSchema(Strict):
    """Any part of a posting; only title, category and model are needed to create a draft."""

    title = _name(200)
    description = fields.String(validate=validate.Length(max=10_000))
    category = _one_of(list(CATEGORY_IDS))
    model = _one_of(MODELS)
    required_skills = fields.List(fields.Nested(SkillRequirementSchema), validate=validate.Length(max=30))
    nice_to_have_skills = fields.List(fields.Nested(SkillRequirementSchema), validate=validate.Length(max=30))
    languages = fields.List(LanguageCode(), validate=validate.Length(max=10))
    engagement = fields.Nested(EngagementSchema, allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(validate=validate.Range(min=1, max=168), allow_none=True, metadata={
        "description": "Hours a week per seat."})
    seats = fields.Integer(validate=validate.Range(min=1, max=1000), metadata={
        "description": "People working at once (default 1); a 3-seat 24/7 desk is seats 3 × hours_per_week 168. "
                       "Capacity and billing limits count seats × hours_per_week."})
    start_date = _date(allow_none=True)
    duration_weeks = fields.Integer(validate=validate.Range(min=1, max=520), allow_none=True)
    shoring = fields.Nested(ShoringSchema)
    min_overlap_hours = fields.Integer(validate=validate.Range(min=0, max=24))
    coverage = _one_of(COVERAGE)
    sla_requirements = fields.List(fields.Nested(SlaRequirementSchema), validate=validate.Length(max=20))
    confidentiality = fields.Nested(ConfidentialitySchema)
    business_hours = fields.Nested(BusinessHoursSchema, allow_none=True, metadata={
        "description": "This posting's business hours for the overlap rule; null: the client's own."})


class PostingDraftSchema(PostingChangesSchema):
    title = _name(200, required=True)
    category = _one_of(list(CATEGORY_IDS), required=True)
    model = _one_of(MODELS, required=True)


class PublishSchema(Strict):
    confirm_core = fields.Boolean(
        metadata={"description": "Required when the posting is assessed as core to the client's business."}
    )


class CancelSchema(Strict):
    reason = _text(500, required=True)


class PostingListQuerySchema(PageQuerySchema):
    status = _one_of(POSTING_STATUSES)
    cursor = Cursor("pst")


class SkillRequirementOutSchema(Schema):
    name = fields.String()
    min_level = fields.Integer()


class EngagementOutSchema(Schema):
    type = fields.String()
    unit = fields.String(allow_none=True)


class ShoringOutSchema(Schema):
    preference = fields.String()
    required = fields.Boolean(metadata={"description": "Whether `accepted` leaves out a class."})
    accepted = fields.List(fields.String(), metadata={
        "description": "The shoring classes a provider may be in (absent on postings written before it)."})


class SlaRequirementOutSchema(Schema):
    metric = fields.String()
    target = fields.String()
    direction = fields.String()
    window = fields.String()


class ConfidentialityOutSchema(Schema):
    confidential = fields.Boolean()
    nda_required = fields.Boolean()


class AssessmentSchema(Schema):
    classification = _one_of(["core", "non_core", "borderline"])
    reason = fields.String()
    confirmed_core = fields.Boolean()


class ClientLocationSchema(Schema):
    country = fields.String()
    time_zone = fields.String()
    business_hours = fields.Nested(BusinessHoursSchema, metadata={
        "description": "The client's business hours when the posting was created"})


class PostingSchema(Schema):
    id = fields.String(required=True, metadata={"example": "pst_7c9e6679742540de944be07fc1f90ae7"})
    tenant_id = fields.String(required=True)
    status = _one_of(POSTING_STATUSES, required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    category = fields.String(required=True)
    model = fields.String(required=True)
    required_skills = fields.List(fields.Nested(SkillRequirementOutSchema))
    nice_to_have_skills = fields.List(fields.Nested(SkillRequirementOutSchema))
    languages = fields.List(fields.String())
    engagement = fields.Nested(EngagementOutSchema, allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(allow_none=True, metadata={"description": "Hours a week per seat."})
    seats = fields.Integer(metadata={"description": "People working at once (absent on postings written before "
                                                    "seats existed: 1)."})
    start_date = _date(allow_none=True)
    duration_weeks = fields.Integer(allow_none=True)
    shoring = fields.Nested(ShoringOutSchema, allow_none=True)
    min_overlap_hours = fields.Integer(allow_none=True)
    coverage = fields.String(allow_none=True)
    sla_requirements = fields.List(fields.Nested(SlaRequirementOutSchema))
    confidentiality = fields.Nested(ConfidentialityOutSchema, allow_none=True)
    business_hours = fields.Nested(BusinessHoursSchema, allow_none=True, metadata={
        "description": "The posting's own business hours; null: the client's (client.business_hours)"})
    assessment = fields.Nested(AssessmentSchema, allow_none=True)
    client = fields.Nested(ClientLocationSchema, allow_none=True)
    created_at = _timestamp(required=True)
    updated_at = _timestamp(required=True)
    published_at = _timestamp(allow_none=True)
    cancelled_at = _timestamp(allow_none=True)
    cancellation_reason = fields.String(allow_none=True)
    awarded_at = _timestamp(allow_none=True)
    awarded_proposal_id = fields.String(allow_none=True)
    version = fields.Integer(required=True)


class PostingPageSchema(Schema):
    items = fields.List(fields.Nested(PostingSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


# --- invitations and proposals -------------------------------------------------------------------------------------


class InvitationCreateSchema(Strict):
    provider_id = fields.String(required=True, validate=[validate.Length(min=1, max=100), validate.Regexp("^prv_")],
                                metadata={"description": "A provider on the posting's current shortlist."})


class DeclineSchema(Strict):
    reason = fields.String(validate=validate.Length(max=500), allow_none=True)


class TermsSchema(Strict):
    price = MoneyField(required=True, metadata={
        "description": "In the posting's currency; means what the posting's budget means (hourly rate, total "
        "fixed price, retainer per month, price per unit)."})
    hours_per_week = fields.Integer(validate=validate.Range(min=1, max=168), allow_none=True,
                                    metadata={"description": "Required for hourly and retainer work."})
    available_from = _date(required=True)


class OfferSchema(Strict):
    terms = fields.Nested(TermsSchema, required=True)
    note = fields.String(validate=validate.Length(max=2000), allow_none=True)


class AwardSchema(Strict):
    proposal_id = fields.String(required=True, validate=[validate.Length(min=1, max=100), validate.Regexp("^prp_")])


class InvitationListQuerySchema(PageQuerySchema):
    status = _one_of(INVITATION_STATUSES)
    cursor = Cursor("inv")


class TermsOutSchema(Schema):
    price = MoneyField()
    hours_per_week = fields.Integer(allow_none=True)
    available_from = _date()


class NegotiationStepSchema(Schema):
    step = fields.Integer()
    action = _one_of(["proposed", "countered", "accepted"])
    by = _one_of(["provider", "client"])
    actor = fields.String()
    at = _timestamp()
    terms = fields.Nested(TermsOutSchema)
    note = fields.String(allow_none=True)


class ProposalSchema(Schema):
    id = fields.String(required=True, metadata={"example": "prp_7d8e9f0a1b2c43d4e5f6a7b8c9d0e1f2"})
    posting_id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    invitation_id = fields.String(required=True)
    provider_id = fields.String(required=True)
    centre_id = fields.String(allow_none=True)
    engagement = fields.Nested(EngagementOutSchema, allow_none=True)
    status = _one_of(PROPOSAL_STATUSES, required=True)
    terms = fields.Nested(TermsOutSchema, required=True, metadata={"description": "The terms on the table."})
    history = fields.List(fields.Nested(NegotiationStepSchema), required=True)
    agreed_at = _timestamp(allow_none=True)
    closed_reason = fields.String(allow_none=True)
    created_at = _timestamp(required=True)
    updated_at = _timestamp(required=True)
    version = fields.Integer(required=True)


class ProposalListSchema(Schema):
    items = fields.List(fields.Nested(ProposalSchema), required=True)


class PostingSummarySchema(Schema):
    title = fields.String()
    category = fields.String()
    model = fields.String()
    engagement = fields.Nested(EngagementOutSchema, allow_none=True)
    budget = MoneyField(allow_none=True)
    hours_per_week = fields.Integer(allow_none=True, metadata={"description": "Hours a week per seat."})
    seats = fields.Integer(metadata={"description": "People working at once (absent on older invitations: 1)."})
    start_date = _date(allow_none=True)
    duration_weeks = fields.Integer(allow_none=True)
    confidentiality = fields.Nested(ConfidentialityOutSchema)


class InvitationSchema(Schema):
    id = fields.String(required=True, metadata={"example": "inv_1c2d3e4f5a6b47c8d9e0f1a2b3c4d5e6"})
    posting_id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    provider_id = fields.String(required=True)
    centre_id = fields.String(allow_none=True)
    status = _one_of(INVITATION_STATUSES, required=True)
    shortlist_version = fields.Integer()
    rank = fields.Integer()
    posting = fields.Nested(PostingSummarySchema, metadata={"description": "The posting as it was when invited."})
    decline_reason = fields.String(allow_none=True)
    proposal_id = fields.String(allow_none=True)
    invited_at = _timestamp(required=True)
    responded_at = _timestamp(allow_none=True)
    version = fields.Integer(required=True)


class InvitationPageSchema(Schema):
    items = fields.List(fields.Nested(InvitationSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
