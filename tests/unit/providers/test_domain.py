"""Provider profile rules, without I/O."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.matching.geography import schedule_mask
from services.providers import domain, schemas
from shared.vocabulary.errors import Conflict, ValidationFailed
from shared.vocabulary.money import Money
from tests.unit.providers.profiles import firm, individual

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def loaded(profile: dict) -> dict:
    return schemas.load_registration(profile)


def stored(profile: dict, provider_id: str = "prv_1") -> dict:
    counter = iter(range(1, 100))
    return domain.new_provider(loaded(profile), provider_id=provider_id, now=NOW,
                               new_id=lambda: f"dc_{next(counter)}")


def test_a_valid_individual_and_a_valid_firm_break_no_rule():
    assert domain.profile_errors(loaded(individual())) == {}
    assert domain.profile_errors(loaded(firm())) == {}


def test_an_individual_cannot_offer_firm_models():
    errors = domain.profile_errors(loaded(individual(models=["virtual_assistant", "bpo"])))
    assert list(errors) == ["models"]
    assert "bpo" in errors["models"][0]


def test_an_individual_needs_working_hours_and_weekly_capacity():
    errors = domain.profile_errors(loaded(individual(working_hours=None, capacity_hours_per_week=None)))
    assert set(errors) == {"working_hours", "capacity_hours_per_week"}


def test_an_individual_has_no_delivery_centres():
    errors = domain.profile_errors(loaded(individual(delivery_centres=firm()["delivery_centres"])))
    assert list(errors) == ["delivery_centres"]


def test_a_firm_needs_a_delivery_centre_and_offers_only_firm_models():
    errors = domain.profile_errors(loaded(firm(delivery_centres=[], models=["freelance"])))
    assert set(errors) == {"delivery_centres", "models"}


def test_a_firm_has_no_personal_hours_or_weekly_capacity():
    hours = {"days": ["mon"], "start": "09:00", "end": "17:00"}
    errors = domain.profile_errors(loaded(firm(working_hours=hours, capacity_hours_per_week=40)))
    assert set(errors) == {"working_hours", "capacity_hours_per_week"}


def test_every_rate_must_be_in_the_provider_currency():
    rates = {"hourly": {"amount": "12.00", "currency": "EUR"},
             "per_unit": [{"unit": "ticket", "price": {"amount": "1.00", "currency": "GBP"}}]}
    errors = domain.profile_errors(loaded(individual(rates=rates)))
    assert errors["rates"]["hourly"] == ["Must be in USD, the provider's currency; got EUR."]
    assert errors["rates"]["per_unit"][0]["price"] == ["Must be in USD, the provider's currency; got GBP."]


def test_rates_given_as_amounts_alone_are_in_the_profiles_currency():
    rates = {"hourly": {"amount": "12.00"}, "monthly_retainer": None,
             "per_unit": [{"unit": "ticket", "price": {"amount": "1.50"}}]}
    profile = domain.priced(loaded(individual(currency="EUR", rates=rates)))
    assert profile["rates"]["hourly"] == Money(Decimal("12.00"), "EUR")
    assert profile["rates"]["per_unit"][0]["price"] == Money(Decimal("1.50"), "EUR")
    assert profile["rates"]["monthly_retainer"] is None and domain.profile_errors(profile) == {}


def test_a_change_of_rates_as_amounts_is_in_the_currency_the_profile_will_have():
    current = stored(individual())
    rates = {"hourly": {"amount": "15.00"}}
    same = domain.priced(domain.apply_changes(current, schemas.load_changes({"rates": rates})))
    assert same["rates"]["hourly"] == Money(Decimal("15.00"), "USD")
    both = schemas.load_changes({"rates": rates, "currency": "EUR"})
    moved = domain.priced(domain.apply_changes(current, both))
    assert moved["rates"]["hourly"] == Money(Decimal("15.00"), "EUR")
    domain.require_valid_change(moved, both)


def test_at_least_one_rate_is_required():
    errors = domain.profile_errors(loaded(individual(rates={"hourly": None, "per_unit": []})))
    assert errors == {"rates": ["Give at least one rate: hourly, monthly_retainer or per_unit."]}


def test_a_unit_priced_twice_in_another_letter_case_is_refused():
    rates = {"hourly": None, "per_unit": [{"unit": "Ticket", "price": {"amount": "0.80", "currency": "USD"}},
                                          {"unit": "ticket", "price": {"amount": "25.00", "currency": "USD"}}]}
    errors = domain.profile_errors(loaded(individual(rates=rates)))
    assert errors["rates"]["per_unit"][1]["unit"] == ["Unit 'ticket' is priced twice."]


def test_a_zero_rate_is_refused():
    errors = domain.profile_errors(loaded(individual(rates={"hourly": {"amount": "0", "currency": "USD"}})))
    assert errors == {"rates": {"hourly": ["Must be greater than zero."]}}


def test_a_shift_may_cross_midnight_and_one_ending_at_its_start_is_round_the_clock_as_matching_reads_it():
    profile = firm()
    assert domain.profile_errors(loaded(profile)) == {}
    shift = profile["delivery_centres"][0]["shifts"][1]
    shift["end"] = shift["start"]
    assert domain.profile_errors(loaded(profile)) == {}
    around_the_clock = schedule_mask(profile["delivery_centres"][0]["time_zone"],
                                     ((("mon",), shift["start"], shift["end"]),))
    assert bin(around_the_clock).count("1") == 48  # 24 hours of half-hour slots
    hours = individual(working_hours={"days": ["mon"], "start": "08:00", "end": "08:00"})
    assert domain.profile_errors(loaded(hours)) == {}


def test_require_valid_raises_validation_failed_with_the_rule_errors():
    with pytest.raises(ValidationFailed) as caught:
        domain.require_valid(loaded(individual(models=["kpo"])))
    assert "models" in caught.value.details


def test_a_new_provider_starts_unverified_available_at_version_one_with_centre_ids():
    provider = stored(firm())
    assert provider["version"] == 1 and provider["verified"] is False and provider["verified_at"] is None
    assert provider["availability"] == {"status": "available", "available_from": None}
    assert [c["id"] for c in provider["delivery_centres"]] == ["dc_1", "dc_2"]
    assert provider["created_at"] == provider["updated_at"] == NOW


def test_lanes_follow_the_kind():
    assert domain.lane_for("firm") == "enterprise"
    assert domain.lane_for("individual") == "smb"


def test_changed_fields_name_only_what_differs_and_money_compares_by_value():
    before = stored(individual())
    rates = dict(before["rates"], hourly=Money(Decimal("12.0"), "USD"))
    same_money = domain.apply_changes(before, {"rates": rates})
    assert domain.changed_fields(before, same_money) == []
    after = domain.apply_changes(before, {"headline": "Bookkeeper too",
                                          "display_name": before["display_name"]})
    assert domain.changed_fields(before, after) == ["headline"]


def test_resent_centres_without_ids_keep_their_ids_by_name():
    before = stored(firm())
    resent = loaded(firm())["delivery_centres"]
    after = domain.apply_changes(before, {"delivery_centres": resent}, new_id=lambda: "dc_new")
    assert [c["id"] for c in after["delivery_centres"]] == ["dc_1", "dc_2"]
    assert domain.changed_fields(before, after) == []


def test_a_seat_change_is_an_availability_change_and_a_renamed_centre_is_not():
    before = stored(firm())
    first, second = before["delivery_centres"]
    renamed = domain.apply_changes(before, {"delivery_centres": [dict(first, name="SJO"), second]})
    assert not domain.is_availability_change(before, renamed)
    reseated = domain.apply_availability(before, {"centre_seats": {"dc_1": 450}})
    assert domain.is_availability_change(before, reseated)
    assert domain.availability_view(reseated)["delivery_centres"] == [{"id": "dc_1", "seats": 450},
                                                                     {"id": "dc_2", "seats": 200}]


def test_a_headline_change_is_not_an_availability_change_but_capacity_is():
    before = stored(individual())
    assert not domain.is_availability_change(before, domain.apply_changes(before, {"headline": "x"}))
    fewer_hours = domain.apply_changes(before, {"capacity_hours_per_week": 20})
    assert domain.is_availability_change(before, fewer_hours)


def test_setting_the_same_availability_again_changes_nothing():
    before = stored(individual())
    again = domain.apply_availability(before, {
        "availability": {"status": "available", "available_from": None},
        "capacity_hours_per_week": 40,
    })
    assert not domain.is_availability_change(before, again)


def test_availability_changes_must_fit_the_kind():
    with pytest.raises(Conflict) as caught:
        domain.apply_availability(stored(individual()), {"centre_seats": {"dc_1": 3}})
    assert list(caught.value.details) == ["centre_seats"]
    with pytest.raises(Conflict) as caught:
        domain.apply_availability(stored(firm()),
                                  {"capacity_hours_per_week": 40, "centre_seats": {"dc_9": 3}})
    assert caught.value.details == {
        "capacity_hours_per_week": ["A firm's capacity is set per centre with centre_seats."],
        "centre_seats": {"dc_9": ["No delivery centre with this id."]},
    }


def test_update_cannot_change_identity_or_verification():
    with pytest.raises(ValidationFailed):
        domain.apply_changes(stored(individual()), {"verified": True})


def test_verifying_stamps_the_time_and_moves_the_version():
    later = datetime(2026, 11, 30, 10, 15, 0, 987654, tzinfo=UTC)
    provider = domain.verified(stored(individual()), now=later)
    assert provider["verified"] is True
    assert provider["verified_at"] == provider["updated_at"] == later.replace(microsecond=987000)
    assert provider["version"] == 2


@pytest.mark.parametrize(
    ("availability", "available"),
    [
        ({"status": "available", "available_from": None}, True),
        ({"status": "limited", "available_from": date(2026, 11, 29)}, True),
        ({"status": "available", "available_from": date(2026, 12, 1)}, False),
        ({"status": "unavailable", "available_from": None}, False),
    ],
)
def test_a_provider_is_available_when_not_unavailable_and_its_start_date_has_come(availability, available):
    assert domain.is_available_on(availability, date(2026, 11, 29)) is available


def test_an_update_breaking_the_rules_on_its_own_is_invalid_and_against_the_stored_profile_a_conflict():
    before = stored(individual())
    other = "JPY" if before["currency"] != "JPY" else "EUR"
    rates = {"hourly": {"amount": "30", "currency": other}}

    def change(changes: dict) -> None:
        wanted = schemas.load_changes(changes)
        domain.require_valid_change(domain.apply_changes(before, wanted), wanted)

    with pytest.raises(ValidationFailed):  # the change itself names two currencies
        change({"currency": before["currency"], "rates": rates})
    with pytest.raises(ValidationFailed):  # no rate at all, whatever is stored
        change({"rates": {}})
    with pytest.raises(Conflict):  # rates in another currency than the stored one
        change({"rates": rates})
    with pytest.raises(Conflict):  # an individual (its kind never changes) states its capacity
        change({"capacity_hours_per_week": None})
    change({"currency": other, "rates": rates})
