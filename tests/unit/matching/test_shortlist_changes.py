"""A shortlist changes only when who is on it, or their order, changes; a provider re-ranks only what it touches."""

import random
from datetime import UTC, datetime
from decimal import Decimal

from services.matching import domain, shortlists
from tests.unit.matching import builders as b
from tests.unit.matching.builders import CEBU_BPO, HELPDESK_24X7, POSTING

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def entry(provider, rank, score="0.8000", centre=None):
    return {"provider_id": provider, "centre_id": centre, "rank": rank, "score": score, "breakdown": {},
            "reasons": []}


def listing(*candidates, k=3):
    return {"version": 1, "computed_at": "2026-12-01T10:00:00.000Z", "candidates": list(candidates), "top_k": k}


def test_changes_name_the_added_removed_and_moved_providers():
    before = listing(entry("prv_a", 1), entry("prv_b", 2), entry("prv_c", 3))
    after = listing(entry("prv_d", 1), entry("prv_a", 2), entry("prv_b", 3))
    assert shortlists.changes(before, after) == {"added": ["prv_d"], "removed": ["prv_c"],
                                                 "moved": ["prv_a", "prv_b"]}
    assert shortlists.really_changed(before, after)


def test_a_score_that_moves_without_changing_the_order_is_not_a_change():
    before = listing(entry("prv_a", 1, "0.9000"), entry("prv_b", 2, "0.8000"))
    after = listing(entry("prv_a", 1, "0.9100"), entry("prv_b", 2, "0.8000"))
    assert not shortlists.really_changed(before, after)


def test_only_a_provider_that_is_listed_or_now_beats_the_cut_can_change_a_full_shortlist():
    listed = [b.profile(n=n, skills=[{"name": "calendar management", "level": 5},
                                     {"name": "email triage", "level": 4}]) for n in (1, 2, 3)]
    index = b.index_of(*listed)
    needs = domain.posting_needs(POSTING)
    shortlist, _ = shortlists.build(index, needs, 3, version=1, now=NOW)

    weaker = b.profile(n=9, skills=[{"name": "calendar management", "level": 3}])
    stronger = b.profile(n=8, skills=[{"name": "calendar management", "level": 5},
                                      {"name": "email triage", "level": 5}])
    excluded = b.profile(n=7, verified=False, skills=stronger["skills"])

    assert not shortlists.could_change(shortlist, needs, weaker["id"], b.rows(weaker))
    assert not shortlists.could_change(shortlist, needs, excluded["id"], b.rows(excluded))
    assert shortlists.could_change(shortlist, needs, stronger["id"], b.rows(stronger))
    assert shortlists.could_change(shortlist, needs, listed[0]["id"], b.rows(b.profile(n=1, verified=False)))


def test_a_shortlist_with_room_takes_any_eligible_newcomer():
    index = b.index_of(b.profile(n=1))
    needs = domain.posting_needs(POSTING)
    shortlist, _ = shortlists.build(index, needs, 3, version=1, now=NOW)
    newcomer = b.profile(n=9, skills=[{"name": "calendar management", "level": 3}])
    assert shortlists.could_change(shortlist, needs, newcomer["id"], b.rows(newcomer))


def test_a_firm_takes_one_place_ranked_by_its_best_centre_with_its_other_centres_listed_under_it():
    centre = CEBU_BPO["delivery_centres"][0]
    big_firm = b.profile(CEBU_BPO, n=1, delivery_centres=[
        {**centre, "id": f"dc_site{n}", "name": f"Site {n}", "seats": 100 + n} for n in range(1, 5)])
    others = [b.profile(CEBU_BPO, n=n) for n in (2, 3)]
    index = b.index_of(big_firm, *others)
    needs = domain.posting_needs(HELPDESK_24X7)

    shortlist, _ = shortlists.build(index, needs, 3, version=1, now=datetime(2026, 12, 1, tzinfo=UTC))

    providers = [c["provider_id"] for c in shortlist["candidates"]]
    assert sorted(providers) == sorted([big_firm["id"], *(p["id"] for p in others)])  # 4 centres, 1 place
    firm = next(c for c in shortlist["candidates"] if c["provider_id"] == big_firm["id"])
    listed = [firm["centre_id"], *(o["centre_id"] for o in firm["other_centres"])]
    assert sorted(listed) == ["dc_site1", "dc_site2", "dc_site3", "dc_site4"]
    scores = [firm["score"], *(o["score"] for o in firm["other_centres"])]
    assert scores == sorted(scores, reverse=True)
    explained = shortlists.explanation(index, needs, shortlist, big_firm["id"], index.provider_rows(big_firm["id"]),
                                       3)
    statuses = sorted(r["status"] for r in explained["rows"])
    assert statuses == ["listed_under_firm"] * 3 + ["shortlisted"]
    assert {r["rank"] for r in explained["rows"]} == {firm["rank"]}


def random_listing(rng: random.Random) -> dict:
    providers = rng.sample(["prv_a", "prv_b", "prv_c", "prv_d"], rng.randint(0, 3))
    candidates = []
    for rank, provider in enumerate(providers, start=1):
        candidate = entry(provider, rank, f"0.{rng.randint(0, 9999):04d}", rng.choice([None, "ctr_1", "ctr_2"]))
        if candidate["centre_id"] is not None and rng.random() < 0.5:
            candidate["other_centres"] = [{"centre_id": centre, "score": "0.5000", "breakdown": {}}
                                          for centre in rng.sample(["ctr_3", "ctr_4"], rng.randint(0, 2))]
        candidates.append(candidate)
    return listing(*candidates)


def test_a_change_is_exactly_a_change_of_who_is_listed_in_which_order():
    rng = random.Random(16)
    for _ in range(2000):
        before, after = random_listing(rng), random_listing(rng)
        if rng.random() < 0.3:
            after = {**after, "candidates": [dict(c, score="0.1234") for c in before["candidates"]]}
            if after["candidates"] and rng.random() < 0.5:  # the same places, one firm's other centres changed
                rng.choice(after["candidates"])["other_centres"] = [{"centre_id": "ctr_5", "score": "0.4000"}]
        assert shortlists.really_changed(before, after) == (shortlists.order(before) != shortlists.order(after))
    assert shortlists.really_changed(None, listing(entry("prv_a", 1)))
    assert not shortlists.really_changed(None, listing())


def test_the_view_keeps_a_built_shortlist_without_its_candidates_reasons_and_breakdowns():
    rng = random.Random(61)
    for _ in range(200):
        shortlist = random_listing(rng)
        lean = shortlists.without_details(shortlist)
        assert lean == {**shortlist, "candidates": [{k: v for k, v in c.items() if k not in shortlists.DETAILS}
                                                    for c in shortlist["candidates"]]}
        assert shortlists.order(lean) == shortlists.order(shortlist)
        assert shortlists.scores(lean) == shortlists.scores(shortlist)


def test_a_score_text_reads_back_as_the_units_it_was_written_from():
    for units in (*range(0, 10_001, 7), 10_000, -5, 123_456):
        assert shortlists.score_units(domain.score_text(units)) == units
    assert shortlists.score_units("0.5") == 5000
    assert shortlists.score_units("1.23456") == 12345


def test_a_score_is_written_with_four_decimals_exactly_as_its_decimal_writes_it():
    for units in (*range(0, 20_001, 3), 99_999, 10**12 + 7, -5, -12_345):
        assert domain.score_text(units) == format(Decimal(units).scaleb(-4), "f")
