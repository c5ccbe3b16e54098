"""Matching: a posting's shortlist and why a provider is (or is not) on it."""

from __future__ import annotations

from marshmallow import Schema, fields

from services.gateway.schemas.common import _one_of, _timestamp

# --- shortlists (matching) ------------------------------------------------------------------------------------------


class OtherCentreSchema(Schema):
    centre_id = fields.String(required=True)
    score = fields.String(required=True, metadata={"example": "0.7810"})
    breakdown = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class CandidateSchema(Schema):
    provider_id = fields.String(required=True)
    centre_id = fields.String(allow_none=True, required=True,
                              metadata={"description": "The firm's delivery centre ranked; null for an individual."})
    rank = fields.Integer(required=True)
    score = fields.String(required=True, metadata={"example": "0.8123", "description": "4-decimal string in [0, 1]"})
    breakdown = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                            metadata={"description": "Soft component -> decimal string (required_skills, "
                                      "nice_to_have_skills, rate, overlap, track_record, load, shoring, "
                                      "new_provider_boost)."})
    reasons = fields.List(fields.String(), required=True)
    other_centres = fields.List(fields.Nested(OtherCentreSchema), metadata={
        "description": "A firm takes one place, ranked by its best centre; its other eligible centres, best first "
                       "(absent when there are none)."})


class ShortlistBodySchema(Schema):
    version = fields.Integer(required=True)
    computed_at = _timestamp(required=True)
    candidates = fields.List(fields.Nested(CandidateSchema), required=True)


class ShortlistSchema(Schema):
    posting_id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "open, awarded, cancelled or closed; only "
                                                    "open postings are re-ranked"})
    eligible = fields.Integer(required=True, metadata={"description": "Candidates passing every hard constraint"})
    top_k = fields.Integer(required=True)
    shortlist = fields.Nested(ShortlistBodySchema, required=True)


class ExclusionSchema(Schema):
    constraint = _one_of(["model_not_served", "category_not_served", "not_verified", "unavailable", "no_nda",
                          "languages_missing", "insufficient_capacity", "coverage_not_met", "shoring_mismatch",
                          "insufficient_overlap"], required=True)
    reason = fields.String(required=True)


class ExplainedRowSchema(Schema):
    centre_id = fields.String(allow_none=True, required=True)
    centre_name = fields.String(allow_none=True)
    status = _one_of(["shortlisted", "listed_under_firm", "below_cut", "excluded"], required=True, metadata={
        "description": "listed_under_firm: an eligible centre of a firm another of whose centres ranks it"})
    excluded_by = fields.List(fields.Nested(ExclusionSchema))
    score = fields.String()
    rank = fields.Integer(allow_none=True, metadata={"description": "The place this row gives its provider among "
                                                     "every eligible provider (a firm ranked by its best centre)"})
    below_cut_by = fields.String(metadata={"description": "Score missing to reach the last shortlisted"})
    breakdown = fields.Dict(keys=fields.String(), values=fields.String())
    reasons = fields.List(fields.String())


class ExplanationSchema(Schema):
    posting_id = fields.String(required=True)
    provider_id = fields.String(required=True)
    status = _one_of(["shortlisted", "below_cut", "excluded", "unknown"], required=True)
    summary = fields.String(required=True)
    shortlist_version = fields.Integer(allow_none=True, metadata={
        "description": "The stored shortlist this explanation agrees with; null while it is being re-ranked"})
    shortlist_pending = fields.Boolean(metadata={
        "description": "True when the stored shortlist does not show this ranking yet (a change is being re-ranked)"})
    cut_score = fields.String(allow_none=True, metadata={"description": "Score of the last shortlisted candidate "
                                                         "when the shortlist is full"})
    top_k = fields.Integer()
    eligible = fields.Integer()
    rows = fields.List(fields.Nested(ExplainedRowSchema), required=True,
                       metadata={"description": "The provider, or each of its delivery centres"})
