"""What the providers service accepts at its edge, and the messages it gives per field when it refuses."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.providers import domain, schemas
from shared.vocabulary import paging
from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.money import Money
from tests.unit.providers.profiles import firm, individual


def refused(load, value) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        load(value)
    return caught.value.details


def test_a_complete_individual_loads_with_money_as_decimals_and_skills_normalised():
    loaded = schemas.load_registration(individual())
    assert loaded["rates"]["hourly"] == Money(Decimal("12.00"), "USD")
    assert loaded["skills"][0] == {"name": "calendar management", "level": 5}


def test_a_complete_firm_loads():
    loaded = schemas.load_registration(firm())
    assert [c["seats"] for c in loaded["delivery_centres"]] == [400, 200]
    assert loaded["working_hours"] is None


def test_country_and_time_zone_and_language_codes_are_normalised():
    loaded = schemas.load_registration(individual(country="ph", languages=["EN"]))
    assert loaded["country"] == "PH"
    assert loaded["languages"] == ["en"]


def test_working_days_are_kept_in_week_order():
    hours = {"days": ["fri", "mon"], "start": "08:00", "end": "17:00"}
    loaded = schemas.load_registration(individual(working_hours=hours))
    assert loaded["working_hours"]["days"] == ["mon", "fri"]


def test_an_unknown_country_time_zone_and_currency_are_each_reported_on_their_field():
    profile = individual(country="XX", time_zone="Mars/Olympus", currency="ABC")
    details = refused(schemas.load_registration, profile)
    assert set(details) == {"country", "time_zone", "currency"}


def test_a_float_money_amount_is_refused():
    profile = individual(rates={"hourly": {"amount": 12.5, "currency": "USD"}})
    details = refused(schemas.load_registration, profile)
    assert details == {"rates": {"hourly": {"amount": ["Send the amount as a decimal string, not a float."]}}}


def test_unknown_fields_are_refused():
    assert refused(schemas.load_registration, individual(rating=5)) == {"rating": ["Unknown field."]}


def test_a_skill_level_outside_one_to_five_is_refused():
    details = refused(schemas.load_registration, individual(skills=[{"name": "typing", "level": 6}]))
    assert "level" in details["skills"][0]


def test_the_same_skill_twice_is_refused_after_normalisation():
    skills = [{"name": "Typing", "level": 3}, {"name": " typing", "level": 4}]
    assert "skills" in refused(schemas.load_registration, individual(skills=skills))


def test_a_float_capacity_is_refused():
    details = refused(schemas.load_registration, individual(capacity_hours_per_week=40.5))
    assert "capacity_hours_per_week" in details


def test_an_unknown_model_and_category_are_refused():
    details = refused(schemas.load_registration, individual(models=["babysitting"], categories=["gardening"]))
    assert set(details) == {"models", "categories"}


def test_changes_may_not_touch_kind_or_availability():
    details = refused(schemas.load_changes, {"kind": "firm", "availability": {"status": "available"}})
    assert details == {"kind": ["Cannot be changed with update."], "availability": ["Use set_availability."]}


def test_changes_may_be_partial_but_nested_values_stay_complete():
    assert schemas.load_changes({"headline": "Now also bookkeeping"}) == {"headline": "Now also bookkeeping"}
    details = refused(schemas.load_changes, {"working_hours": {"days": ["mon"]}})
    assert set(details["working_hours"]) == {"start", "end"}


def test_an_availability_change_must_say_something():
    assert refused(schemas.load_availability_changes, {}) == {
        "_schema": ["Give availability, capacity_hours_per_week or centre_seats."]
    }


def test_an_availability_change_reads_its_start_date():
    loaded = schemas.load_availability_changes({"availability": {"status": "available",
                                                                 "available_from": "2027-01-04"}})
    assert loaded["availability"]["available_from"] == date(2027, 1, 4)


@pytest.mark.parametrize("limit", [0, 101, "ten"])
def test_a_page_limit_outside_one_to_a_hundred_is_refused(limit):
    assert "limit" in refused(lambda v: schemas.load_page(v, None), limit)


def test_a_cursor_round_trips_and_a_forged_one_is_refused():
    last = "prv_0123456789abcdef0123456789abcdef"
    assert schemas.load_page(5, paging.encode_cursor(last)) == (5, last)
    assert refused(lambda c: schemas.load_page(5, c), "not-a-cursor") == {"cursor": ["Not a cursor this API gave out."]}


def test_a_minimum_skill_level_needs_a_skill():
    details = refused(schemas.load_search, {"min_skill_level": 3})
    assert details == {"min_skill_level": ["Give the skill it applies to."]}


def test_unknown_search_filters_are_refused():
    assert refused(schemas.load_search, {"colour": "blue"}) == {"colour": ["Unknown field."]}


def test_the_wire_form_has_money_as_strings_and_times_as_utc_rfc3339():
    profile = domain.new_provider(schemas.load_registration(individual()), provider_id="prv_1",
                                  now=datetime(2026, 11, 29, 9, 0, 0, 123456, tzinfo=UTC))
    wire = schemas.to_wire(profile)
    assert wire["rates"]["hourly"] == {"amount": "12.00", "currency": "USD"}
    assert wire["created_at"] == "2026-11-29T09:00:00.123Z"
    assert wire["availability"] == {"status": "available", "available_from": None}
    assert wire["verified_at"] is None and wire["version"] == 1


def test_a_provider_may_give_what_its_invoices_name_it_by_and_how_to_pay_it():
    legal = {"legal_name": "Ana Nowak Usługi Biurowe", "address": "ul. Długa 5\n00-001 Warszawa",
             "tax_id": "PL5260250274", "payment_instructions": "IBAN PL61 1090 1014 0000 0712 1981 2874"}
    profile = domain.new_provider(schemas.load_registration({**individual(), **legal}), provider_id="prv_1",
                                  now=datetime(2026, 11, 29, tzinfo=UTC))
    wire = schemas.to_wire(profile)
    assert {key: wire[key] for key in legal} == legal
    assert schemas.to_wire(domain.new_provider(schemas.load_registration(individual()), provider_id="prv_2",
                                               now=datetime(2026, 11, 29, tzinfo=UTC)))["tax_id"] is None
    assert "tax_id" in refused(schemas.load_registration, {**individual(), "tax_id": "x" * 51})
