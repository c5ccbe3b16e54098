"""The edges: what a caller may send for a tenant, a posting or an edit, and the wire form sent back."""

from datetime import date
from decimal import Decimal

import pytest

from services.postings import schemas
from shared.vocabulary import idempotency
from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.money import Money

from .builders import COMPLETE_POSTING

TENANT = {"name": "Acme Dental Group", "country": "US", "time_zone": "America/Chicago", "segment": "smb"}


def refused(load, payload):
    with pytest.raises(ValidationFailed) as caught:
        load(payload)
    return caught.value.details


def test_a_tenant_loads_with_normalised_codes_and_no_competencies_by_default():
    loaded = schemas.load_new_tenant({**TENANT, "country": "us"})
    assert loaded["country"] == "US"
    assert loaded["core_competencies"] == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("country", "XX", "'XX' is not an ISO 3166-1 alpha-2 country code."),
        ("country", "USA", "'USA' is not an ISO 3166-1 alpha-2 country code."),
        ("time_zone", "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not an IANA time zone."),
        ("segment", "mid_market", "Must be one of: enterprise, smb."),
    ],
)
def test_a_tenant_with_a_bad_code_is_refused_field_by_field(field, value, message):
    assert refused(schemas.load_new_tenant, {**TENANT, field: value}) == {field: [message]}


def test_a_tenant_competency_is_at_most_eighty_characters_and_at_most_thirty_of_them():
    assert "core_competencies" in refused(
        schemas.load_new_tenant, {**TENANT, "core_competencies": ["x" * 81]}
    )
    assert "core_competencies" in refused(
        schemas.load_new_tenant, {**TENANT, "core_competencies": ["x"] * 31}
    )


def test_a_complete_posting_loads_into_exact_python_values():
    loaded = schemas.load_new_posting(
        {
            **COMPLETE_POSTING,
            "sla_requirements": [
                {
                    "metric": "first_response_minutes",
                    "target": "60.5",
                    "direction": "at_most",
                    "window": "weekly",
                }
            ],
        }
    )
    assert loaded["budget"] == Money(Decimal("15.00"), "USD")
    assert loaded["start_date"] == date(2027, 1, 4)
    assert loaded["sla_requirements"][0]["target"] == Decimal("60.5")


def test_a_draft_needs_only_title_category_and_model():
    assert refused(schemas.load_new_posting, {}) == {
        "title": ["Missing data for required field."],
        "category": ["Missing data for required field."],
        "model": ["Missing data for required field."],
    }


def test_an_unknown_field_is_refused_not_ignored():
    assert refused(schemas.load_new_posting, {**COMPLETE_POSTING, "budjet": "typo"}) == {
        "budjet": ["Unknown field."]
    }


def test_an_unknown_field_inside_a_nested_object_is_refused():
    details = refused(
        schemas.load_new_posting, {**COMPLETE_POSTING, "engagement": {"type": "hourly", "per": "h"}}
    )
    assert details == {"engagement": {"per": ["Unknown field."]}}


def test_a_float_amount_is_refused():
    details = refused(
        schemas.load_new_posting, {**COMPLETE_POSTING, "budget": {"amount": 15.0, "currency": "USD"}}
    )
    assert details == {"budget": {"amount": ["Send the amount as a decimal string, not a float."]}}


def test_an_unknown_currency_is_refused():
    details = refused(
        schemas.load_new_posting, {**COMPLETE_POSTING, "budget": {"amount": "15", "currency": "XYZ"}}
    )
    assert details == {"budget": {"currency": ["'XYZ' is not an ISO 4217 currency code."]}}


def test_a_negative_budget_is_refused():
    details = refused(
        schemas.load_new_posting, {**COMPLETE_POSTING, "budget": {"amount": "-1", "currency": "USD"}}
    )
    assert details == {"budget": {"amount": ["Must not be negative."]}}


def test_an_sla_target_is_a_decimal_string_not_a_json_number():
    details = refused(
        schemas.load_new_posting,
        {
            **COMPLETE_POSTING,
            "sla_requirements": [
                {"metric": "first_response_minutes", "target": 60, "direction": "at_most", "window": "weekly"}
            ],
        },
    )
    assert details == {"sla_requirements": {0: {"target": ["Send the number as a decimal string."]}}}


def test_an_unknown_language_is_refused():
    assert refused(schemas.load_new_posting, {**COMPLETE_POSTING, "languages": ["xx"]}) == {
        "languages": {0: ["'xx' is not an ISO 639-1 language code."]}
    }


def test_per_unit_work_names_its_unit_and_only_per_unit_work_has_one():
    missing = refused(schemas.load_new_posting, {**COMPLETE_POSTING, "engagement": {"type": "per_unit"}})
    assert missing == {"engagement": {"unit": ["Per-unit work names its unit (for example 'ticket')."]}}
    stray = refused(
        schemas.load_new_posting, {**COMPLETE_POSTING, "engagement": {"type": "fixed", "unit": "page"}}
    )
    assert stray == {"engagement": {"unit": ["Only per_unit engagements have a unit."]}}


def test_a_required_shoring_must_name_a_class():
    details = refused(
        schemas.load_new_posting, {**COMPLETE_POSTING, "shoring": {"preference": "any", "required": True}}
    )
    assert details == {
        "shoring": {"preference": ["A required shoring names onshore, nearshore or offshore, not 'any'."]}
    }


def test_a_shoring_requirement_is_a_set_of_accepted_classes_with_an_optional_preferred_one():
    never_offshore = schemas.load_new_posting(
        {**COMPLETE_POSTING, "shoring": {"preference": "nearshore", "accepted": ["nearshore", "onshore"]}})
    assert never_offshore["shoring"] == {"preference": "nearshore", "required": True,
                                         "accepted": ["onshore", "nearshore"]}
    old_form = schemas.load_new_posting(
        {**COMPLETE_POSTING, "shoring": {"preference": "onshore", "required": True}})
    assert old_form["shoring"]["accepted"] == ["onshore"]
    assert refused(schemas.load_new_posting, {**COMPLETE_POSTING, "shoring": {
        "preference": "offshore", "accepted": ["onshore", "nearshore"]}}) == {
        "shoring": {"preference": ["The preferred class must be one of the accepted: onshore, nearshore."]}}
    assert refused(schemas.load_new_posting, {**COMPLETE_POSTING, "shoring": {
        "preference": "any", "required": False, "accepted": ["onshore"]}})["shoring"]["required"]


def test_a_preferred_class_alone_prefers_it_and_accepts_every_class():
    loaded = schemas.load_new_posting({**COMPLETE_POSTING, "shoring": {"preference": "nearshore"}})
    assert loaded["shoring"] == {"preference": "nearshore", "required": False,
                                 "accepted": ["onshore", "nearshore", "offshore"]}


def test_a_24_7_desk_of_three_seats_is_168_hours_per_seat_and_more_than_168_per_seat_is_refused():
    desk = schemas.load_new_posting({**COMPLETE_POSTING, "hours_per_week": 168, "seats": 3})
    assert (desk["hours_per_week"], desk["seats"]) == (168, 3)
    assert refused(schemas.load_new_posting, {**COMPLETE_POSTING, "hours_per_week": 169}) == {
        "hours_per_week": ["Must be greater than or equal to 1 and less than or equal to 168."]}
    assert "seats" in refused(schemas.load_new_posting, {**COMPLETE_POSTING, "seats": 0})


def test_flags_must_be_json_booleans():
    details = refused(
        schemas.load_new_posting,
        {**COMPLETE_POSTING, "confidentiality": {"confidential": 1, "nda_required": "yes"}},
    )
    assert details == {
        "confidentiality": {
            "confidential": ["Not a valid boolean."],
            "nda_required": ["Not a valid boolean."],
        }
    }


def test_a_skill_is_listed_once_and_stored_lower_case():
    loaded = schemas.load_new_posting(
        {**COMPLETE_POSTING, "required_skills": [{"name": " QuickBooks ", "min_level": 2}]}
    )
    assert loaded["required_skills"] == [{"name": "quickbooks", "min_level": 2}]
    details = refused(
        schemas.load_new_posting,
        {
            **COMPLETE_POSTING,
            "required_skills": [{"name": "Excel", "min_level": 2}, {"name": "excel", "min_level": 4}],
        },
    )
    assert details == {"required_skills": ["Each skill may be listed once."]}


def test_an_edit_may_clear_optional_fields_but_not_the_title_category_or_model():
    assert schemas.load_posting_changes({"budget": None, "start_date": None}) == {
        "budget": None,
        "start_date": None,
    }
    details = refused(schemas.load_posting_changes, {"title": None, "category": None, "model": None})
    assert set(details) == {"title", "category", "model"}


@pytest.mark.parametrize("field", ["status", "id", "tenant_id", "assessment", "client", "version"])
def test_an_edit_cannot_touch_what_the_lifecycle_owns(field):
    assert refused(schemas.load_posting_changes, {field: "x"}) == {field: ["Unknown field."]}


def test_list_arguments_are_checked_together():
    with pytest.raises(ValidationFailed) as caught:
        schemas.load_page("archived", 0, "not-a-cursor")
    assert set(caught.value.details) == {"status", "limit", "cursor"}


def test_a_cursor_is_the_last_id_of_the_page_before_and_anything_else_is_refused():
    assert schemas.load_page(None, 20, "pst_" + "a" * 32) == (None, 20, "pst_" + "a" * 32)
    for forged in ("ten_" + "a" * 32, "pst_" + "a" * 31, "pst_" + "A" * 32, "pst_" + "a" * 32 + "\n"):
        with pytest.raises(ValidationFailed) as caught:
            schemas.load_page(None, 20, forged)
        assert caught.value.details == {"cursor": ["Not a cursor this API gave out."]}


def test_the_wire_form_has_decimal_strings_and_utc_times(draft):
    wire = schemas.posting_to_wire(draft)
    assert wire["budget"] == {"amount": "15.00", "currency": "USD"}
    assert wire["start_date"] == "2027-01-04"
    assert wire["created_at"] == "2026-11-29T09:00:00.000Z"
    assert wire["published_at"] is None


def test_idempotency_key_confirm_core_and_reason_are_checked():
    assert refused(idempotency.load_key, "") == {
        "idempotency_key": ["A string of 1 to 200 characters."]
    }
    assert refused(schemas.load_confirm_core, "yes") == {"confirm_core": ["Not a valid boolean."]}
    assert refused(schemas.load_cancellation_reason, "   ") == {
        "reason": ["A reason of 1 to 500 characters is required."]
    }


def test_the_taxonomys_new_categories_and_the_legacy_ones_are_accepted():
    for category in ("design_creative", "legal", "translation", "customer_inquiries"):
        assert schemas.load_new_posting({**COMPLETE_POSTING, "category": category})["category"] == category


def test_a_tenant_may_give_its_legal_name_address_and_tax_id_for_its_invoices():
    legal = {"legal_name": "Acme Dental Group LLC", "address": "1 Main St\nChicago, IL 60601", "tax_id": "36-1234567"}
    loaded = schemas.load_new_tenant({**TENANT, **legal})
    assert {key: loaded[key] for key in legal} == legal
    assert schemas.load_new_tenant(TENANT)["tax_id"] is None
    assert "legal_name" in refused(schemas.load_new_tenant, {**TENANT, "legal_name": "x" * 201})
