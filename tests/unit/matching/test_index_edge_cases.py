"""The index's shortcuts (per-market columns, per-schedule and per-location tables, terms computed once per row)
decide exactly as the scalar rules on the cases a generated market rarely holds."""

import copy
from zoneinfo import ZoneInfoNotFoundError

import pytest

from services.matching import domain
from services.matching.ranking import naive_rank
from tests.unit.matching import builders
from tests.unit.matching.builders import ANA, CEBU_BPO, HELPDESK_24X7, POSTING


def assert_index_agrees(posting: dict, *profiles: dict, k: int = 10) -> list:
    index = builders.index_of(*profiles)
    needs = domain.posting_needs(posting)
    rows = [row for p in profiles for row in builders.rows(p)]
    ranked = index.rank(needs, k)
    naive = naive_rank(rows, needs, k)
    assert [(index.rows[i].key, units) for i, units in ranked.top] == [(row.key, units) for row, units in naive]
    assert ranked.eligible == sum(1 for row in rows if domain.evaluate(row, needs, explain=False).eligible)
    return ranked.top


def _with_rates(**rates) -> dict:
    return {**copy.deepcopy(ANA["rates"]), **rates}


MARKET = [
    builders.profile(),
    builders.profile(languages=["en", "xx-custom"]),  # a code no ISO list knows
    builders.profile(currency="MNT", rates=_with_rates(hourly={"amount": "40000.00", "currency": "MNT"})),  # no FX
    builders.profile(rates=_with_rates(hourly=None, monthly_retainer={"amount": "2000.00", "currency": "USD"})),
    builders.profile(rates=_with_rates(hourly={"amount": "0.00", "currency": "USD"})),
    builders.profile(rates=_with_rates(hourly=None)),
    builders.profile(skills=[{"name": "calendar management", "level": 5}]),
    builders.profile(skills=[]),
    builders.profile(created_at="2026-11-20T10:00:00.000Z"),  # new: boosted
    builders.profile(created_at="2026-11-20T10:00:00.000Z",  # new, but a contract completed: no boost
                     track={"completed_contracts": 1, "sla_compliance": 0.9, "rating": 4.5}),
    builders.profile(track={"committed_hours_per_week": 25}),  # too little free capacity for 20 h
    builders.profile(track={"committed_hours_per_week": 12.5, "rating": 3.0}),
    builders.profile(availability={"status": "available", "available_from": "2027-02-01"}),
    builders.profile(availability={"status": "unavailable", "available_from": None}),
    builders.profile(nda_willing=False),
    builders.profile(verified=False, verified_at=None),
    builders.profile(working_hours={"days": ["mon", "tue"], "start": "20:00", "end": "23:00"}),
    builders.profile(country="ES", time_zone="Europe/Madrid"),
    CEBU_BPO | {"id": builders.provider_id()},
]

POSTINGS = {
    "hourly": POSTING,
    "languages not in any ISO list": builders.posting(languages=["en", "xx-custom"]),
    "zero budget": builders.posting(budget={"amount": "0.00", "currency": "USD"}),
    "budget in another currency": builders.posting(budget={"amount": "14.00", "currency": "EUR"}),
    "no budget": builders.posting(budget=None),
    "fixed price": builders.posting(engagement={"type": "fixed", "unit": None},
                                    budget={"amount": "6000.00", "currency": "USD"}),
    "retainer": builders.posting(engagement={"type": "retainer", "unit": None},
                                 budget={"amount": "1500.00", "currency": "USD"}),
    "many skills, one asked twice": builders.posting(
        required_skills=[{"name": "calendar management", "min_level": 5}, {"name": "email triage", "min_level": 1},
                         {"name": "calendar management", "min_level": 2}, {"name": "travel booking", "min_level": 3}],
        nice_to_have_skills=[{"name": "excel", "min_level": 4}, {"name": "email triage", "min_level": 5}]),
    "no skills asked": builders.posting(required_skills=[], nice_to_have_skills=[]),
    "nearshore required": builders.posting(shoring={"preference": "nearshore", "required": True}),
    "offshore preferred": builders.posting(shoring={"preference": "offshore", "required": False}),
    "extended hours": builders.posting(coverage="extended", min_overlap_hours=0),
    "starts late": builders.posting(start_date="2027-03-01"),
    "no start date, not confidential": builders.posting(start_date=None,
                                                        confidentiality={"confidential": False, "nda_required": False}),
}


@pytest.mark.parametrize("posting", POSTINGS.values(), ids=POSTINGS.keys())
def test_the_index_agrees_with_the_rules_on_unusual_providers_and_postings(posting):
    assert_index_agrees(posting, *MARKET, k=len(MARKET))


def test_equal_scores_are_ordered_by_provider_id_in_the_index_too():
    twins = [builders.profile(n=n) for n in (7, 3, 5)]
    top = assert_index_agrees(POSTING, *twins)
    assert len({units for _, units in top}) == 1


def test_follow_the_sun_per_unit_work_is_ranked_as_the_rules_rank_it():
    centre = CEBU_BPO["delivery_centres"][0]
    mornings = copy.deepcopy(centre) | {"id": "dc_mornings", "shifts": centre["shifts"][:1]}
    rest = copy.deepcopy(centre) | {"id": "dc_rest", "shifts": centre["shifts"][1:]}
    firm = builders.profile(CEBU_BPO, delivery_centres=[mornings, rest])  # neither centre covers 24/7 alone
    per_unit = builders.posting(HELPDESK_24X7, engagement={"type": "per_unit", "unit": "ticket"},
                                budget={"amount": "1.50", "currency": "USD"})
    top = assert_index_agrees(per_unit, firm, builders.profile(CEBU_BPO))
    assert len(top) == 2  # two firms, each in one place


def test_a_provider_changed_or_removed_leaves_its_markets():
    ana, other = builders.profile(), builders.profile()
    index = builders.index_of(ana, other)
    needs = domain.posting_needs(POSTING)
    assert index.rank(needs, 10).eligible == 2

    index.upsert(ana["id"], builders.rows({**ana, "availability": {"status": "unavailable", "available_from": None}}))
    assert [index.rows[i].provider_id for i, _ in index.rank(needs, 10).top] == [other["id"]]

    index.upsert(ana["id"], builders.rows({**ana, "categories": ["data_entry"]}))  # left this market
    assert [index.rows[i].provider_id for i, _ in index.rank(needs, 10).top] == [other["id"]]
    assert index.rank(domain.posting_needs(builders.posting(category="data_entry")), 10).eligible == 1

    index.remove(other["id"])
    assert index.rank(needs, 10).eligible == 0


def test_a_profile_in_a_time_zone_nobody_knows_fails_every_time_and_changes_nothing():
    """Its handler raises on every try (so the event is parked after its retries): the first failure must leave no
    half-added row or schedule behind for a retry to take as valid."""
    ana = builders.profile()
    index = builders.index_of(ana)
    needs = domain.posting_needs(POSTING)
    ranked_before = index.rank(needs, 10).top
    lost = builders.profile(time_zone="Mars/Olympus_Mons")
    moved = {**ana, "time_zone": "Mars/Olympus_Mons"}
    for _ in range(3):
        with pytest.raises(ZoneInfoNotFoundError):
            index.upsert(lost["id"], builders.rows(lost))
        with pytest.raises(ZoneInfoNotFoundError):
            index.upsert(ana["id"], builders.rows(moved))
    assert lost["id"] not in index.by_provider and index.size == index.live == 1
    assert index.rank(needs, 10).top == ranked_before  # ana still ranked as before


@pytest.mark.parametrize("engagement", ["hourly", "fixed", "retainer"])
def test_rates_on_both_sides_of_every_bend_of_the_rate_score_rank_as_the_rules_rank_them(engagement):
    """The index takes the smaller of the rate score's two branches instead of choosing by the ratio: the same
    values at a ratio of 0, at and around 0.6 (where it saturates), 1 (where it bends) and 1.4 (where it reaches 0),
    and far above."""
    budgets = {"hourly": "15.00", "fixed": "6000.00", "retainer": "1500.00"}
    posting = builders.posting(engagement={"type": engagement, "unit": None},
                               budget={"amount": budgets[engagement], "currency": "USD"},
                               estimated_hours=400, hours_per_week=20)
    amounts = ["0.00", "0.01", "8.99", "9.00", "9.01", "14.99", "15.00", "15.01", "20.99", "21.00", "21.01",
               "45.00", "99999.99"]
    market = [builders.profile(rates=_with_rates(hourly={"amount": amount, "currency": "USD"})) for amount in amounts]
    assert_index_agrees(posting, *market, k=len(market))


def test_a_market_that_grows_after_a_test_was_answered_answers_it_for_its_new_rows_too():
    """A market keeps its answers to the last tests asked (languages spoken, schedules that overlap, locations
    accepted) and extends them as rows come; a bulk load's trimmed columns grow again."""
    kinds = [{}, {"languages": ["de"]}, {"country": "ES", "time_zone": "Europe/Madrid"},
             {"working_hours": {"days": ["mon", "tue"], "start": "20:00", "end": "23:00"}}]
    loaded = [builders.profile(**changes) for changes in kinds]
    index = builders.index_of(*loaded)
    index.finish_loading()
    postings = [builders.posting(languages=["en"]),
                builders.posting(shoring={"preference": "nearshore", "required": True}),
                builders.posting(min_overlap_hours=6)]
    for posting in postings:
        assert_index_agrees(posting, *loaded)
        index.rank(domain.posting_needs(posting), 10)
    newcomers = [builders.profile(**changes) for changes in kinds * 20]  # past the trimmed columns' room
    for profile in newcomers:
        index.upsert(profile["id"], builders.rows(profile))
    rows = [row for p in loaded + newcomers for row in builders.rows(p)]
    for posting in postings:
        needs = domain.posting_needs(posting)
        eligible = sum(domain.evaluate(row, needs, explain=False).eligible for row in rows)
        assert 0 < index.rank(needs, 100).eligible == eligible < len(rows)
