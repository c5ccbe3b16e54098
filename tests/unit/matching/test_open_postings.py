"""The in-memory view of the open postings and the incremental shortlist: they decide and rank exactly as the rules
and a full ranking do, on a random market."""

import random
from datetime import UTC, datetime

import pytest

from services.matching import domain, shortlists
from services.matching.open_postings import OpenPostings
from services.matching.ranking import MatchIndex
from tests.unit.matching import population

NOW = datetime(2026, 12, 6, tzinfo=UTC)
K = 5


@pytest.fixture(scope="module")
def market():
    return population.open_market(2000, 3, 300, 500, K, NOW)


def by_the_rules(shortlist, needs, provider_id, rows) -> bool:
    if provider_id in {c["provider_id"] for c in shortlist["candidates"]}:
        return True
    cut = shortlists.cut_key(shortlist)
    return any(e.eligible and (cut is None or domain.sort_key(e.units, e.row) < cut)
               for e in (domain.evaluate(row, needs) for row in rows))


def improved(rows):
    return [domain.CandidateRow(**{**{f: getattr(r, f) for f in r.__slots__}, "skills": {k: 5 for k in r.skills},
                                   "verified": True, "availability_status": "available"}) for r in rows]


def test_the_view_finds_exactly_the_postings_the_rules_say_a_provider_can_change(market):
    index, view, postings = market
    for provider_id in random.Random(7).sample(list(index.by_provider), 150):
        rows = improved(index.provider_rows(provider_id))
        decided = {e.posting["id"] for e in view.touched_by(provider_id, rows)}
        expected = {posting_id for posting_id, posting in postings.items()
                    if by_the_rules(posting["shortlist"], domain.posting_needs(posting), provider_id, rows)}
        assert decided == expected, provider_id


def test_the_score_bound_is_never_below_the_score():
    rows = [row for profile, track in population.providers(300, seed=9)
            for row in domain.candidate_rows(profile, domain.TrackRecord.from_document(track))]
    for n in range(40):
        needs = domain.posting_needs(population.posting(random.Random(n)))
        for row in rows:
            evaluation = domain.evaluate(row, needs, explain=False)
            if evaluation.eligible:
                assert domain.score_bound_units(row, needs) >= evaluation.units


def test_admitting_a_provider_gives_the_shortlist_a_full_ranking_gives(market):
    _, _, postings = market
    index = MatchIndex()  # a copy of the market to change
    for profile, track in population.providers(2000, seed=3):
        index.upsert(profile["id"], domain.candidate_rows(profile, domain.TrackRecord.from_document(track)))
    admitted = 0
    for provider_id in random.Random(11).sample(list(index.by_provider), 60):
        previous = index.provider_rows(provider_id)
        rows = improved(previous)
        index.upsert(provider_id, rows)
        for posting in postings.values():
            needs = domain.posting_needs(posting)
            before = posting["shortlist"]
            after = shortlists.admit(index, needs, before, provider_id, rows, previous, version=2, now=NOW)
            if after is not None:
                admitted += 1
                full, _ = shortlists.build(index, needs, K, version=2, now=NOW)
                assert after == full, posting["id"]
        index.upsert(provider_id, previous)  # back, so every posting's stored shortlist stays current
    assert admitted > 20


def test_needs_the_columns_cannot_hold_are_decided_by_the_rules(market):
    """A posting asking more skills than the columns hold, or an asked level above their table, a posting without a
    shortlist (a provider of its market re-ranks it), and a row with a skill level above the index's: the view decides
    them one by one, as the rules do."""
    index, _, postings = market
    view = OpenPostings()
    documents = [dict(d) for d in list(postings.values())[:40]]
    many = {**documents[0], "id": "pst_" + "e" * 32,
            "required_skills": [{"name": f"skill {n}", "min_level": 2} for n in range(9)]}
    high = {**documents[1], "id": "pst_" + "f" * 32, "required_skills": [{"name": "excel", "min_level": 20}]}
    unranked = {**documents[2], "id": "pst_" + "d" * 32, "shortlist": None}
    for document in [*documents, many, high]:
        shortlist, _ = shortlists.build(index, domain.posting_needs(document), K, version=1, now=NOW)
        document["shortlist"] = shortlist
    for document in [*documents, many, high, unranked]:
        view.apply(document["id"], document)
    for provider_id in random.Random(5).sample(list(index.by_provider), 60):
        rows = improved(index.provider_rows(provider_id))
        if provider_id[-1] in "0123":  # a skill level beyond what the index stores
            rows = [domain.CandidateRow(**{**{f: getattr(r, f) for f in r.__slots__},
                                           "skills": {**r.skills, "excel": 200}}) for r in rows]
        decided = {e.posting["id"] for e in view.touched_by(provider_id, rows)}
        expected = {d["id"] for d in [*documents, many, high]
                    if shortlists.could_change(d["shortlist"], domain.posting_needs(d), provider_id, rows)}
        market = domain.posting_needs(unranked)
        serves = any(market.model in r.models and market.category in r.categories for r in rows)
        assert decided == expected | ({unranked["id"]} if serves else set()), provider_id
