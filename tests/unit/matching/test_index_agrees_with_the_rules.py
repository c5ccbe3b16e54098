"""The numpy index and the scalar rules are one decision: same eligible rows, same scores, same order.

Checked on a realistic generated market (individuals and multi-centre firms across twenty countries, some with a
track record) against generated postings of every engagement, coverage and shoring preference.
"""

import random

import pytest

from services.matching import domain
from services.matching.ranking import MatchIndex, naive_rank
from tests.unit.matching import population


@pytest.fixture(scope="module")
def market():
    rows, index = [], MatchIndex()
    for profile, track in population.providers(3000, seed=11):
        provider_rows = domain.candidate_rows(profile, domain.TrackRecord.from_document(track))
        rows.extend(provider_rows)
        index.upsert(profile["id"], provider_rows)
    return rows, index


POSTINGS = [population.posting(random.Random(seed)) for seed in range(30)]


@pytest.mark.parametrize("posting", POSTINGS, ids=lambda p: f"{p['model']}-{p['engagement']['type']}-{p['coverage']}")
def test_the_index_ranks_exactly_as_the_scalar_rules(market, posting):
    rows, index = market
    needs = domain.posting_needs(posting)

    ranked = index.rank(needs, 10)
    naive = naive_rank(rows, needs, 10)

    assert [(index.rows[i].key, units) for i, units in ranked.top] == [(row.key, units) for row, units in naive]
    eligible = [row for row in rows if domain.evaluate(row, needs, explain=False).eligible]
    assert ranked.eligible == len(eligible)
    for row_index, units in ranked.top:
        assert domain.evaluate(index.rows[row_index], needs).units == units


def test_the_generated_market_gives_most_postings_a_full_shortlist(market):
    _, index = market
    full = sum(1 for p in POSTINGS if len(index.rank(domain.posting_needs(p), 10).top) == 10)
    assert full >= len(POSTINGS) // 2


def test_replacing_and_removing_providers_keeps_the_index_consistent(market):
    rows, _ = market
    index = MatchIndex()
    profiles = population.providers(600, seed=5)
    for profile, track in profiles:
        index.upsert(profile["id"], domain.candidate_rows(profile, domain.TrackRecord.from_document(track)))
    # every provider changes twice, a third leave: the append-only rows and the compaction must not leak
    for profile, track in profiles:
        changed = {**profile, "capacity_hours_per_week": 40} if profile["kind"] == "individual" else profile
        index.upsert(profile["id"], domain.candidate_rows(changed, domain.TrackRecord.from_document(track)))
        index.upsert(profile["id"], domain.candidate_rows(changed, domain.TrackRecord.from_document(track)))
    for profile, _ in profiles[::3]:
        index.remove(profile["id"])
    remaining = [r for i, r in enumerate(index.rows) if r is not None and index.alive[i]]
    assert len(index) == len(remaining)
    for posting in POSTINGS[:10]:
        needs = domain.posting_needs(posting)
        ranked = index.rank(needs, 10)
        assert [(index.rows[i].key, u) for i, u in ranked.top] == \
            [(r.key, u) for r, u in naive_rank(remaining, needs, 10)]
