import pytest
from marshmallow import ValidationError

from services.gateway import schemas


def errors_of(schema, data):
    with pytest.raises(ValidationError) as caught:
        schema.load(data)
    return caught.value.messages


def test_a_draft_needs_only_title_category_and_model():
    loaded = schemas.PostingDraftSchema().load(
        {"title": "Inbox", "category": "administrative_support", "model": "virtual_assistant"}
    )
    assert loaded == {"title": "Inbox", "category": "administrative_support", "model": "virtual_assistant"}
    assert set(errors_of(schemas.PostingDraftSchema(), {})) == {"title", "category", "model"}


def test_a_posting_round_trips_to_wire_form_with_decimal_strings_and_iso_dates():
    schema = schemas.PostingDraftSchema()
    body = {
        "title": "Helpdesk", "category": "helpdesk", "model": "ito",
        "budget": {"amount": "15.50", "currency": "eur"}, "start_date": "2027-01-04",
        "languages": ["EN"],
        "sla_requirements": [{"metric": "first_response_minutes", "target": "60", "direction": "at_most",
                              "window": "weekly"}],
    }
    wire = schema.dump(schema.load(body))
    assert wire["budget"] == {"amount": "15.50", "currency": "EUR"}
    assert wire["start_date"] == "2027-01-04"
    assert wire["languages"] == ["en"]
    assert wire["sla_requirements"][0]["target"] == "60"


def test_money_as_a_float_and_unknown_vocabulary_are_refused_per_field():
    messages = errors_of(schemas.PostingDraftSchema(), {
        "title": "x", "category": "astrology", "model": "outsourcing",
        "budget": {"amount": 12.5, "currency": "USD"}, "languages": ["zz"],
        "sla_requirements": [{"metric": "m", "target": 1.5, "direction": "at_most", "window": "weekly"}],
    })
    assert set(messages) == {"category", "model", "budget", "languages", "sla_requirements"}
    assert "float" in messages["budget"]["amount"][0]


def test_unknown_fields_are_refused_so_a_typo_is_never_silently_dropped():
    assert errors_of(schemas.PostingChangesSchema(), {"titel": "x"}) == {"titel": ["Unknown field."]}


def test_provider_changes_may_not_touch_kind_verification_or_availability():
    messages = errors_of(schemas.ProviderChangesSchema(), {"kind": "firm", "verified": True, "availability": {}})
    assert set(messages) == {"kind", "verified", "availability"}


def test_provider_registration_checks_the_common_vocabulary():
    messages = errors_of(schemas.ProviderRegistrationSchema(), {
        "kind": "individual", "display_name": "M", "models": ["virtual_assistant"],
        "categories": ["scheduling"], "languages": ["en"], "country": "XX", "time_zone": "Mars/Olympus",
        "currency": "ABC", "rates": {"hourly": {"amount": "-1", "currency": "USD"}},
        "skills": [{"name": "x", "level": 9}],
        "working_hours": {"days": ["mon"], "start": "25:00", "end": "17:00"},
    })
    assert set(messages) == {"country", "time_zone", "currency", "rates", "skills", "working_hours"}


def test_tenant_creation_normalises_the_country():
    loaded = schemas.TenantCreateSchema().load({"name": "Acme", "country": "us", "time_zone": "America/Chicago",
                                                 "segment": "smb"})
    assert loaded["country"] == "US"
    assert "core_competencies" in errors_of(
        schemas.TenantCreateSchema(),
        {"name": "A", "country": "US", "time_zone": "UTC", "core_competencies": ["x"] * 31},
    )


def test_search_query_parses_strings_and_makes_the_rate_money():
    loaded = schemas.ProviderSearchQuerySchema().load(
        {"verified": "true", "skill": "excel", "min_skill_level": "3", "max_hourly_rate": "20", "currency": "usd",
         "limit": "10"}
    )
    assert loaded == {"verified": True, "skill": "excel", "min_skill_level": 3, "limit": 10,
                      "max_hourly_rate": {"amount": "20", "currency": "USD"}}


def test_search_query_refuses_a_rate_without_currency_and_bad_values():
    assert "currency" in errors_of(schemas.ProviderSearchQuerySchema(), {"max_hourly_rate": "20"})
    assert "max_hourly_rate" in errors_of(schemas.ProviderSearchQuerySchema(), {"currency": "USD"})
    assert "skill" in errors_of(schemas.ProviderSearchQuerySchema(), {"min_skill_level": "2"})
    assert "max_hourly_rate" in errors_of(schemas.ProviderSearchQuerySchema(), {"max_hourly_rate": "1.00001",
                                                                               "currency": "USD"})
    messages = errors_of(schemas.ProviderSearchQuerySchema(), {"limit": "0", "available": "perhaps", "x": "1"})
    assert set(messages) == {"limit", "available", "x"}


def test_responses_only_carry_declared_fields_and_money_in_wire_form():
    dumped = schemas.PostingSchema().dump({
        "id": "pst_1", "tenant_id": "ten_1", "status": "draft", "title": "t", "category": "data_entry",
        "model": "freelance", "budget": {"amount": "12.5000", "currency": "USD"}, "created_at": "2026-11-29T09:00:00Z",
        "updated_at": "2026-11-29T09:00:00Z", "version": 1, "api_key_hash": "secret",
    })
    assert "api_key_hash" not in dumped
    assert dumped["budget"] == {"amount": "12.5000", "currency": "USD"}
