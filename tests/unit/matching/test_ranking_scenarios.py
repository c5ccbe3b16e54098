"""Better-fitting providers outrank worse ones, for the stated reason (the component that differs)."""

import pytest

from services.matching import domain
from tests.unit.matching import builders as b
from tests.unit.matching.builders import CEBU_BPO, HELPDESK_24X7, POSTING

SEASONED = {"completed_contracts": 12, "sla_compliance": 0.98, "rating": 4.8}
SHAKY = {"completed_contracts": 12, "sla_compliance": 0.72, "rating": 3.1}

# (label, better provider changes, worse provider changes, posting changes, the component that decides)
BETTER = [
    ("an expert outranks someone just at the asked level",
     {"skills": [{"name": "calendar management", "level": 5}, {"name": "email triage", "level": 4}]},
     {"skills": [{"name": "calendar management", "level": 3}, {"name": "email triage", "level": 4}]},
     {}, "required_skills"),
    ("someone with the nice-to-have skill outranks someone without",
     {}, {"skills": [{"name": "calendar management", "level": 4}]}, {}, "nice_to_have_skills"),
    ("within budget outranks 30 % over it",
     {}, {"rates": {"hourly": {"amount": "19.50", "currency": "USD"}, "monthly_retainer": None, "per_unit": []}},
     {}, "rate"),
    ("a rate quoted in pesos is converted before it is compared",
     {"currency": "MXN", "rates": {"hourly": {"amount": "198.00", "currency": "MXN"}, "monthly_retainer": None,
                                   "per_unit": []}},
     {"rates": {"hourly": {"amount": "14.50", "currency": "USD"}, "monthly_retainer": None, "per_unit": []}},
     {}, "rate"),
    ("a full business day of overlap outranks a partial one",
     {"country": "US", "time_zone": "America/New_York"}, {"working_hours": {"days": b.WEEKDAYS, "start": "11:00",
                                                                          "end": "19:00"}},
     {}, "overlap"),
    ("a strong track record outranks a shaky one", {}, {}, {}, "track_record"),
    ("a free provider outranks a busy one", {"track_record": {"committed_hours_per_week": 0}},
     {"track_record": {"committed_hours_per_week": 15}}, {}, "load"),
    ("nearshore Mexico City outranks offshore Manila when nearshore is preferred",
     {}, {"country": "PH", "time_zone": "Asia/Manila",
          "working_hours": {"days": b.WEEKDAYS, "start": "22:00", "end": "06:00"}},
     {"shoring": {"preference": "nearshore", "required": False}}, "shoring"),
]


@pytest.mark.parametrize("label, better_changes, worse_changes, posting_changes, decisive", BETTER,
                         ids=[x[0] for x in BETTER])
def test_the_better_fit_outranks_the_worse_for_the_stated_reason(
    label, better_changes, worse_changes, posting_changes, decisive
):
    track_better = better_changes.pop("track_record", SEASONED if decisive == "track_record" else None)
    track_worse = worse_changes.pop("track_record", SHAKY if decisive == "track_record" else None)
    # the worse one gets the lower id, so only the score can put the better one first
    worse = b.profile(n=100, track=track_worse, **worse_changes)
    better = b.profile(n=200, track=track_better, **better_changes)
    posting = b.posting(**posting_changes)

    assert [p for p, _, _ in b.ranking(posting, better, worse)] == [better["id"], worse["id"]]
    good, bad = b.evaluate(better, posting), b.evaluate(worse, posting)
    assert good.components[decisive] > bad.components[decisive]
    assert good.score > bad.score


def test_ties_are_broken_by_provider_id_whatever_the_order_they_arrived_in():
    twins = [b.profile(n=n) for n in (30, 10, 20)]
    assert [p for p, _, _ in b.ranking(POSTING, *twins)] == [b.provider_id(10), b.provider_id(20), b.provider_id(30)]


def test_the_shortlist_keeps_the_top_k():
    many = [b.profile(n=n) for n in range(1, 16)]
    assert len(b.ranking(POSTING, *many, k=10)) == 10
    assert len(b.ranking(POSTING, *many, k=3)) == 3


def test_the_new_provider_boost_is_bounded_and_fades():
    published = domain.posting_needs(POSTING).published_days
    fresh = domain.new_provider_boost(0, published - 1, published)
    month_old = domain.new_provider_boost(0, published - 30, published)
    assert 0 < month_old < fresh <= domain.MAX_NEW_PROVIDER_BOOST
    assert domain.new_provider_boost(0, published - 200, published) == 0.0
    assert domain.new_provider_boost(3, published, published) == 0.0


def test_a_new_provider_gets_a_lift_but_does_not_beat_a_clearly_better_seasoned_one():
    newcomer = b.profile(n=1, created_at="2026-11-30T09:00:00.000Z",
                         skills=[{"name": "calendar management", "level": 3}])
    equal_veteran = b.profile(n=2, skills=[{"name": "calendar management", "level": 3}])
    seasoned = b.profile(n=3, track=SEASONED, skills=[{"name": "calendar management", "level": 5},
                                                      {"name": "email triage", "level": 5}])
    order = [p for p, _, _ in b.ranking(POSTING, newcomer, equal_veteran, seasoned)]
    assert order == [seasoned["id"], newcomer["id"], equal_veteran["id"]]
    assert b.evaluate(newcomer).components["new_provider_boost"] > 0


def test_fixed_price_compares_estimated_hours_times_the_hourly_rate():
    # 20 h a week for 26 weeks at 12 USD = 6,240 USD against a 6,000 USD fixed budget: 4 % over
    fixed = b.posting(engagement={"type": "fixed", "unit": None}, budget={"amount": "6000.00", "currency": "USD"})
    evaluation = b.evaluate(b.profile(), fixed)
    assert evaluation.components["rate"] == domain.rate_score(6240 / 6000)
    assert "estimated price 6240.00 USD" in " ".join(evaluation.reasons)


def test_a_retainer_uses_the_monthly_retainer_or_hourly_times_hours_a_month():
    retainer = b.posting(HELPDESK_24X7, engagement={"type": "retainer", "unit": None},
                         budget={"amount": "5000.00", "currency": "USD"})
    with_retainer = b.evaluate(b.profile(CEBU_BPO), retainer)
    assert with_retainer.components["rate"] == domain.rate_score(6000 / 5000)
    hourly_only = b.profile(CEBU_BPO, rates={"hourly": {"amount": "9.00", "currency": "USD"},
                                             "monthly_retainer": None, "per_unit": []})
    # 9 USD × 168 h × 52 / 12 = 6,552 USD a month
    assert b.evaluate(hourly_only, retainer).components["rate"] == domain.rate_score(6552 / 5000)


def test_per_unit_work_compares_the_price_of_the_same_unit():
    tickets = b.posting(HELPDESK_24X7, engagement={"type": "per_unit", "unit": "ticket"},
                        budget={"amount": "1.50", "currency": "USD"})
    assert b.evaluate(b.profile(CEBU_BPO), tickets).components["rate"] == domain.rate_score(12000 / 15000)
    no_unit_price = b.profile(CEBU_BPO, rates={**CEBU_BPO["rates"], "per_unit": []})
    assert b.evaluate(no_unit_price, tickets).components["rate"] == domain.UNKNOWN_RATE_SCORE


def test_a_currency_missing_from_the_rate_table_is_unknown_not_guessed():
    exotic = b.profile(currency="ISK", rates={"hourly": {"amount": "1600", "currency": "ISK"},
                                              "monthly_retainer": None, "per_unit": []})
    evaluation = b.evaluate(exotic)
    assert evaluation.components["rate"] == domain.UNKNOWN_RATE_SCORE
    assert "no exchange rate for ISK" in " ".join(evaluation.reasons)


def test_scores_stay_within_zero_and_one_and_every_component_is_in_the_breakdown():
    evaluation = b.evaluate(b.profile(created_at="2026-12-01T09:00:00.000Z"))
    assert 0 <= evaluation.score <= 1
    assert set(evaluation.components) == {*domain.WEIGHTS, "new_provider_boost"}
