"""The open-postings view decides like the scalar rule over every open posting: its arrays (score ceilings, cheap
hard constraints) only skip postings the provider cannot change, also after shortlists change in place."""

import random
from datetime import UTC, datetime

from services.matching import domain, shortlists
from services.matching.open_postings import OpenPostings
from services.matching.ranking import MatchIndex
from tests.unit.matching import population

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def market():
    index = MatchIndex()
    for profile, track in population.providers(1500, seed=11):
        index.upsert(profile["id"], domain.candidate_rows(profile, domain.TrackRecord.from_document(track)))
    postings = {}
    for n in range(200):
        posting = population.posting(random.Random(500 + n))
        posting["shortlist"], _ = shortlists.build(index, domain.posting_needs(posting), 5, version=1, now=NOW)
        postings[posting["id"]] = posting
    return index, postings


def scalar_rule(postings: dict, provider_id: str, rows) -> list[str]:
    """``shortlists.could_change`` over every open posting, as the service decided before the view."""
    return sorted(p["id"] for p in postings.values()
                  if shortlists.could_change(p["shortlist"], domain.posting_needs(p), provider_id, rows))


def test_the_view_picks_exactly_the_postings_the_scalar_rule_picks_as_shortlists_change():
    index, postings = market()
    view = OpenPostings()
    for posting in postings.values():
        view.apply(posting)
    rng = random.Random(3)
    providers = list(index.by_provider)
    picked_any = 0
    for turn in range(60):
        provider_id = rng.choice(providers)
        rows = index.provider_rows(provider_id)
        if turn % 2:  # half the changes make the provider much stronger, so it can enter many shortlists
            rows = [domain.CandidateRow(**{**{f: getattr(r, f) for f in r.__slots__},
                                           "skills": {k: 5 for k in r.skills}, "verified": True,
                                           "availability_status": "available"}) for r in rows]
        index.upsert(provider_id, rows)
        picked = view.could_change(provider_id, rows)
        assert picked == scalar_rule(postings, provider_id, rows)
        picked_any += bool(picked)
        for posting_id in picked:  # re-ranked: the view learns the new shortlist in place
            posting = postings[posting_id]
            posting["shortlist"], _ = shortlists.build(index, domain.posting_needs(posting), 5, version=2, now=NOW)
            view.apply(posting)
    assert picked_any > 10


def test_a_closed_posting_leaves_the_view_and_a_listed_provider_finds_its_postings_outside_its_markets():
    index, postings = market()
    view = OpenPostings()
    for posting in postings.values():
        view.apply(posting)
    posting = next(p for p in postings.values() if p["shortlist"]["candidates"])
    listed = posting["shortlist"]["candidates"][0]["provider_id"]
    elsewhere = [domain.CandidateRow(**{**{f: getattr(r, f) for f in r.__slots__}, "models": frozenset({"kpo"}),
                                        "categories": frozenset({"nowhere"})}) for r in index.provider_rows(listed)]
    assert posting["id"] in view.could_change(listed, elsewhere)  # it leaves the shortlist: re-ranked

    view.apply({**posting, "status": "cancelled"})
    assert posting["id"] not in view.postings
    assert posting["id"] not in view.could_change(listed, elsewhere)
    assert posting["id"] not in view.could_change(listed, index.provider_rows(listed))


def test_a_row_never_scores_above_its_ceiling():
    index, postings = market()
    for posting in list(postings.values())[:40]:
        needs = domain.posting_needs(posting)
        for row in index.rows[:600]:
            if row is not None:
                evaluation = domain.evaluate(row, needs, explain=False)
                if evaluation.eligible:
                    assert evaluation.units < domain.score_ceiling_units(row, needs)


def test_a_shortlist_that_changes_in_place_is_decided_on_its_new_cut():
    index, postings = market()
    view = OpenPostings()
    for posting in postings.values():
        view.apply(posting)
    posting = next(p for p in postings.values() if p["shortlist"]["eligible"] > 20)
    needs = domain.posting_needs(posting)
    weakest = index.rows[index.rank(needs, 10_000).top[-1][0]].provider_id
    rows = index.provider_rows(weakest)
    assert posting["id"] not in view.could_change(weakest, rows)  # far below the cut

    posting["shortlist"] = {**posting["shortlist"], "candidates": posting["shortlist"]["candidates"][:2]}
    view.apply(posting)  # re-ranked elsewhere: now there is room, and any eligible provider enters
    assert posting["id"] in view.could_change(weakest, rows)
