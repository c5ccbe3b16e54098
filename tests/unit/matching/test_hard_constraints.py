"""Every hard constraint excludes, with its own reason; the index and the scalar rules exclude the same rows."""

from decimal import Decimal

import pytest

from services.matching import currency, domain
from tests.unit.matching import builders as b
from tests.unit.matching.builders import ANA, CEBU_BPO, HELPDESK_24X7, POSTING

# (label, provider changes, posting changes, the constraint that must exclude)
EXCLUDED = [
    ("a freelancer-only profile for virtual-assistant work", {"models": ["freelance"]}, {}, "model_not_served"),
    ("a scheduler asked for data entry", {}, {"category": "data_entry"}, "category_not_served"),
    ("nobody verified her yet", {"verified": False}, {}, "not_verified"),
    ("on leave", {"availability": {"status": "unavailable", "available_from": None}}, {}, "unavailable"),
    ("free only after the start date", {"availability": {"status": "available", "available_from": "2027-02-01"}},
     {}, "unavailable"),
    ("refuses NDAs for confidential work", {"nda_willing": False}, {}, "no_nda"),
    ("no German for a German-speaking client", {}, {"languages": ["en", "de"]}, "languages_missing"),
    ("ten hours a week for a twenty-hour job", {"capacity_hours_per_week": 10}, {}, "insufficient_capacity"),
    ("an individual for 24/7 coverage", {"categories": ["administrative_support"]},
     {"coverage": "24x7", "hours_per_week": 20}, "coverage_not_met"),
    ("an individual for extended hours", {}, {"coverage": "extended"}, "coverage_not_met"),
    ("Mexico City when onshore (US) is required", {}, {"shoring": {"preference": "onshore", "required": True}},
     "shoring_mismatch"),
    ("Manila day shift: no overlap with New York", {"country": "PH", "time_zone": "Asia/Manila"}, {},
     "insufficient_overlap"),
]


@pytest.mark.parametrize("label, provider_changes, posting_changes, constraint", EXCLUDED,
                         ids=[e[0] for e in EXCLUDED])
def test_each_hard_constraint_excludes_with_its_reason_and_the_index_agrees(
    label, provider_changes, posting_changes, constraint
):
    provider = b.profile(**provider_changes)
    posting = b.posting(**posting_changes)

    evaluation = b.evaluate(provider, posting)

    assert [code for code, _ in evaluation.exclusions] == [constraint]
    assert evaluation.exclusions[0][1]  # a human-readable reason
    assert b.ranking(posting, provider) == []


def test_the_default_scenario_passes_every_constraint():
    evaluation = b.evaluate(b.profile())
    assert evaluation.exclusions == []
    assert evaluation.overlap_per_day == 7.0  # Mexico City 09-17 is New York 10-18 in January


def test_committed_hours_from_the_track_record_use_up_capacity():
    busy = b.profile(track={"committed_hours_per_week": 30, "completed_contracts": 3})
    assert [c for c, _ in b.evaluate(busy).exclusions] == ["insufficient_capacity"]


def test_a_multi_seat_posting_needs_seats_times_hours_of_free_capacity_and_prices_the_seat_hours():
    desk = b.posting(HELPDESK_24X7, hours_per_week=168, seats=3)  # 504 seat-hours a week
    small = b.profile(CEBU_BPO, delivery_centres=[{**CEBU_BPO["delivery_centres"][0], "seats": 2}])  # 336 h
    large = b.profile(CEBU_BPO, delivery_centres=[{**CEBU_BPO["delivery_centres"][0], "seats": 3}])  # 504 h

    assert b.evaluate(small, desk).exclusions == [
        ("insufficient_capacity", "has 336 free hours a week, the work needs 504 (3 seats × 168)")]
    assert b.evaluate(large, desk).eligible
    assert [p for p, _, _ in b.ranking(desk, small, large)] == [large["id"]]
    retainer = b.posting(desk, engagement={"type": "retainer", "unit": None},
                         budget={"amount": "20000.00", "currency": "USD"})
    no_retainer = b.profile(large, rates={**CEBU_BPO["rates"], "monthly_retainer": None})
    (row,) = b.rows(no_retainer)
    nine_usd = currency.to_units(Decimal("9.00"))
    assert domain.cost_units(row, domain.posting_needs(retainer)) == nine_usd * 504 * 52 / 12  # × seat-hours


def test_a_contracts_hours_a_week_count_once_per_seat():
    record = domain.track_record_document([{
        "id": "ctr_1", "provider_id": "prv_1", "centre_id": "dc_cebu", "status": "active", "hours_per_week": 168.0,
        "seats": 3}], [], "2027-01-04")
    assert record["committed_hours_per_week"] == 504.0


def test_nda_is_only_required_for_confidential_work():
    refuses = b.profile(nda_willing=False)
    public = b.posting(confidentiality={"confidential": False, "nda_required": False})
    assert b.evaluate(refuses, public).eligible


def test_a_provider_failing_several_constraints_hears_about_each():
    provider = b.profile(verified=False, nda_willing=False, languages=["es"])
    codes = [c for c, _ in b.evaluate(provider).exclusions]
    assert codes == ["not_verified", "no_nda", "languages_missing"]


def test_a_manila_night_shift_covers_new_york_business_hours():
    night = b.profile(country="PH", time_zone="Asia/Manila",
                      working_hours={"days": b.WEEKDAYS, "start": "21:00", "end": "06:00"})
    evaluation = b.evaluate(night)
    assert evaluation.eligible
    assert evaluation.overlap_per_day == 8.0
    assert evaluation.shoring == "offshore"


def test_a_firm_with_round_the_clock_shifts_meets_24x7_and_is_matched_per_centre():
    firm = b.profile(CEBU_BPO)
    evaluation = b.evaluate(firm, HELPDESK_24X7)
    assert evaluation.eligible
    assert evaluation.row.centre_id == "dc_cebu"
    assert evaluation.row.capacity_hours == 120 * 168


def test_centres_whose_shifts_together_cover_the_week_meet_24x7_follow_the_sun():
    def daily(start, end):
        return [{"name": "day", "days": [*b.WEEKDAYS, "sat", "sun"], "start": start, "end": end}]

    # Cebu 08:00-20:00 is 00:00-12:00 UTC; Bogotá 07:00-19:00 is 12:00-24:00 UTC
    firm = b.profile(CEBU_BPO, delivery_centres=[
        {"id": "dc_cebu", "name": "Cebu", "country": "PH", "time_zone": "Asia/Manila", "seats": 80,
         "shifts": daily("08:00", "20:00")},
        {"id": "dc_bogota", "name": "Bogotá", "country": "CO", "time_zone": "America/Bogota", "seats": 60,
         "shifts": daily("07:00", "19:00")},
    ])
    alone = b.profile(CEBU_BPO, delivery_centres=[firm["delivery_centres"][0]])
    needs = domain.posting_needs(HELPDESK_24X7)

    together = [domain.evaluate(row, needs) for row in b.rows(firm)]
    assert [e.eligible for e in together] == [True, True]
    assert "follow-the-sun" in " ".join(together[0].reasons)
    assert [c for c, _ in b.evaluate(alone, HELPDESK_24X7).exclusions] == ["coverage_not_met"]
    assert len(b.ranking(HELPDESK_24X7, firm)) == 1  # the firm takes one place (its best centre)


def test_a_firm_excluded_for_coverage_is_told_which_client_hours_its_centres_cover_and_which_are_missing():
    every_day = [*b.WEEKDAYS, "sat", "sun"]
    firm = b.profile(CEBU_BPO, delivery_centres=[
        {"id": "dc_cebu", "name": "Cebu", "country": "PH", "time_zone": "Asia/Manila", "seats": 80,
         "shifts": [{"name": "day", "days": every_day, "start": "08:00", "end": "20:00"}]},
        {"id": "dc_bogota", "name": "Bogotá", "country": "CO", "time_zone": "America/Bogota", "seats": 60,
         "shifts": [{"name": "day", "days": every_day, "start": "07:00", "end": "15:00"}]},
    ])
    needs = domain.posting_needs(HELPDESK_24X7)  # a New York client, 24/7

    cebu, bogota = (domain.evaluate(row, needs) for row in b.rows(firm))

    # Cebu 08:00-20:00 is 19:00-07:00 in New York; Bogotá 07:00-15:00 is 07:00-15:00 there
    assert cebu.exclusions == [("coverage_not_met",
                                "its shifts do not cover 24/7 (Mon–Sun 00:00–24:00, client time America/New_York): "
                                "they cover Mon–Sun 00:00–07:00, 19:00–24:00; missing Mon–Sun 07:00–19:00; "
                                "the firm's centres together cover Mon–Sun 00:00–15:00, 19:00–24:00; "
                                "missing Mon–Sun 15:00–19:00")]
    assert "they cover Mon–Sun 07:00–15:00; missing Mon–Sun 00:00–07:00, 15:00–24:00" in bogota.exclusions[0][1]
    extended = domain.posting_needs(b.posting(coverage="extended"))
    (ana,) = b.rows(b.profile())  # Mexico City 09:00-17:00 is 10:00-18:00 in New York
    assert domain.evaluate(ana, extended).exclusions == [(
        "coverage_not_met", "its shifts do not cover extended hours (Mon–Fri 07:00–21:00, client time "
                            "America/New_York): they cover Mon–Fri 10:00–18:00; missing Mon–Fri 07:00–10:00, "
                            "18:00–21:00")]


def test_a_firms_centre_in_the_wrong_country_is_excluded_while_its_onshore_centre_is_kept():
    firm = b.profile(CEBU_BPO, delivery_centres=[
        {**CEBU_BPO["delivery_centres"][0]},
        {"id": "dc_austin", "name": "Austin", "country": "US", "time_zone": "America/Chicago", "seats": 40,
         "shifts": b.SHIFTS_24X7},
    ])
    onshore = b.posting(HELPDESK_24X7, shoring={"preference": "onshore", "required": True})
    assert [(p, c) for p, c, _ in b.ranking(onshore, firm)] == [(firm["id"], "dc_austin")]


def test_onshore_or_nearshore_admits_both_and_excludes_offshore_while_the_score_favours_the_preferred_one():
    never_offshore = b.posting(shoring={"preference": "nearshore", "required": True,
                                        "accepted": ["onshore", "nearshore"]})
    mexico_city = b.profile()  # nearshore for New York
    chicago = b.profile(country="US", time_zone="America/Chicago")
    manila_nights = b.profile(country="PH", time_zone="Asia/Manila",
                              working_hours={"days": b.WEEKDAYS, "start": "21:00", "end": "05:00"})

    assert b.evaluate(chicago, never_offshore).eligible  # onshore: requiring "exactly nearshore" excluded it
    assert b.evaluate(mexico_city, never_offshore).eligible
    offshore = b.evaluate(manila_nights, never_offshore)
    assert offshore.exclusions == [("shoring_mismatch", "is offshore for this client (PH), the posting accepts "
                                                        "onshore or nearshore")]
    assert b.evaluate(mexico_city, never_offshore).components["shoring"] == 1.0
    assert b.evaluate(chicago, never_offshore).components["shoring"] == 0.5
    assert {p for p, _, _ in b.ranking(never_offshore, mexico_city, chicago, manila_nights)} == {
        mexico_city["id"], chicago["id"]}


def test_unknown_languages_posting_matches_nobody_rather_than_everybody():
    assert b.ranking(b.posting(languages=["en", "xx"]), b.profile(languages=["en", "es"])) == []


def test_the_default_posting_and_provider_are_realistic_shapes():
    assert ANA["kind"] == "individual" and POSTING["client"]["country"] == "US"


def test_the_clients_own_business_hours_and_working_days_drive_the_overlap_rule_and_its_explanation():
    sun_to_thu = {"days": ["sun", "mon", "tue", "wed", "thu"], "start": "08:00", "end": "16:00"}
    dubai = b.posting(client={"country": "AE", "time_zone": "Asia/Dubai", "business_hours": sun_to_thu},
                      min_overlap_hours=6, languages=[], shoring={"preference": "any", "required": False})
    # Manila 12:00-20:00, Sunday to Thursday, is exactly Dubai's 08:00-16:00
    manila = b.profile(country="PH", time_zone="Asia/Manila",
                       working_hours={"days": ["mon", "tue", "wed", "thu", "sun"], "start": "12:00", "end": "20:00"})

    evaluation = b.evaluate(manila, dubai)

    assert evaluation.eligible  # under the old Mon-Fri 09:00-17:00 it overlapped 5.6 h a day and was excluded
    assert evaluation.overlap_per_day == 8.0 and evaluation.components["overlap"] == 1.0
    assert "8 h overlap per business day on average with the client's Sun–Thu 08:00–16:00" in evaluation.reasons[3]
    assert b.ranking(dubai, manila)[0][2] == evaluation.units
    fridays = b.posting(dubai, business_hours={"days": ["fri"], "start": "08:00", "end": "16:00"})
    (code, why), = b.evaluate(manila, fridays).exclusions
    assert code == "insufficient_overlap"
    assert why == "overlaps 0 h per business day on average with the client's Fri 08:00–16:00, the posting needs 6 h"
    assert b.ranking(fridays, manila) == []


def test_a_provider_serving_a_legacy_category_matches_a_posting_in_its_taxonomy_category_and_the_reverse():
    helpdesk_firm = b.profile(CEBU_BPO, categories=["helpdesk"])
    it_support = b.posting(HELPDESK_24X7, category="it_support")
    assert b.evaluate(helpdesk_firm, it_support).eligible
    assert [p for p, _, _ in b.ranking(it_support, helpdesk_firm)] == [helpdesk_firm["id"]]

    support_firm = b.profile(CEBU_BPO, categories=["customer_support"])
    stored_long_ago = b.posting(HELPDESK_24X7, category="customer_inquiries")
    assert b.evaluate(support_firm, stored_long_ago).eligible
    assert [c for c, _ in b.evaluate(support_firm, b.posting(HELPDESK_24X7, category="sales")).exclusions] == [
        "category_not_served"]


def test_extended_coverage_spans_the_clients_own_business_days():
    sun_to_thu = {"days": ["sun", "mon", "tue", "wed", "thu"], "start": "08:00", "end": "16:00"}
    dubai = b.posting(client={"country": "AE", "time_zone": "Asia/Dubai", "business_hours": sun_to_thu},
                      coverage="extended", min_overlap_hours=0, languages=[])
    # Dubai 07:00-21:00 is 11:00-01:00 in Manila: two shifts, Sunday to Thursday
    shifts = [{"name": "early", "days": ["mon", "tue", "wed", "thu", "sun"], "start": "11:00", "end": "19:00"},
              {"name": "late", "days": ["mon", "tue", "wed", "thu", "sun"], "start": "19:00", "end": "01:00"}]
    firm = b.profile(CEBU_BPO, categories=["administrative_support"], models=["virtual_assistant"],
                     delivery_centres=[{**CEBU_BPO["delivery_centres"][0], "shifts": shifts}])

    assert b.evaluate(firm, dubai).eligible  # under Mon-Fri it missed Friday and was excluded
    assert len(b.ranking(dubai, firm)) == 1
    missing = b.evaluate(firm, b.posting(dubai, client={**dubai["client"], "business_hours": None}))
    assert "missing Fri 07:00–21:00" in missing.exclusions[0][1]
