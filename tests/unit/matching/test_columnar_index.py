"""The columnar index keeps no row objects: what it reads back is what was put in, and a randomized market under
churn (providers changed, re-added, removed, the index compacted) ranks exactly as the scalar rules.

The oracle is the test's own dict of each provider's current rows, ranked by ``naive_rank`` (``domain.evaluate``
row by row) and placed by ``domain.sort_key``.
"""

import random
from datetime import date, timedelta

import pytest

from services.matching import domain
from services.matching.ranking import MatchIndex, naive_rank
from tests.unit.matching import population


def _varied(rng: random.Random, profile: dict, track: dict | None) -> tuple[dict, dict | None]:
    """A generated profile with the rarer values a read model must carry exactly: a start date in the future,
    unnamed centres, per-unit prices, no skills, the extreme skill levels, per-centre load, SLA windows."""
    profile = {**profile}
    roll = rng.random()
    if roll < 0.1:
        day = date(2026, 12, 1) + timedelta(days=rng.randrange(90))
        profile["availability"] = {"status": "limited", "available_from": day.isoformat()}
    elif roll < 0.15:
        profile["skills"] = []
    elif roll < 0.2:
        profile["skills"] = [{**s, "level": rng.choice([1, 5])} for s in profile["skills"]]
    centres = profile["delivery_centres"]
    if centres and rng.random() < 0.3:
        profile["delivery_centres"] = [{**c, "name": None} if rng.random() < 0.5 else c for c in centres]
    if centres and track and rng.random() < 0.5:
        track = {**track, "committed_seats": rng.randrange(5),
                 "committed_by_centre": [{"centre_id": centres[0]["id"], "hours_per_week": 12.5, "seats": 2}],
                 "sla_windows_evaluated": rng.randrange(30), "rating": None if rng.random() < 0.3 else 4.25}
    if rng.random() < 0.1:
        profile["display_name"] = rng.choice(["Zoë Ångström", "", "株式会社 サポート"])
    return profile, track


def _rows(profile: dict, track: dict | None) -> list[domain.CandidateRow]:
    return domain.candidate_rows(profile, domain.TrackRecord.from_document(track))


def test_a_row_reads_back_equal_to_the_row_added_also_after_compaction():
    rng = random.Random(3)
    index, oracle = MatchIndex(), {}
    for profile, track in population.providers(1500, seed=21):
        profile, track = _varied(rng, profile, track)
        oracle[profile["id"]] = _rows(profile, track)
        index.upsert(profile["id"], oracle[profile["id"]])
    for provider_id, rows in oracle.items():
        assert index.provider_rows(provider_id) == rows
    removed, compacted = list(oracle)[: len(oracle) * 2 // 3], False
    for provider_id in removed:
        index.remove(provider_id)
        del oracle[provider_id]
        compacted |= index.size == index.live  # no dead row left: the index was rebuilt
    assert compacted and index.live == sum(len(rows) for rows in oracle.values())
    for provider_id, rows in oracle.items():
        assert index.provider_rows(provider_id) == rows
        for row in rows:
            assert index.rows[index.row_of(row.key)] == row
    assert all(provider_id not in index.by_provider for provider_id in removed)


@pytest.mark.parametrize("seed", range(4))
def test_a_randomized_market_under_churn_ranks_exactly_as_the_scalar_rules(seed):
    rng = random.Random(seed)
    index, oracle = MatchIndex(), {}
    profiles = [_varied(rng, p, t) for p, t in population.providers(900, seed=100 + seed)]
    postings = [domain.posting_needs(population.posting(random.Random(1000 * seed + n))) for n in range(12)]

    def check() -> None:
        rows = [row for provider_rows in oracle.values() for row in provider_rows]
        for needs in postings:
            k = rng.choice([1, 5, 10, 40])
            ranked = index.rank(needs, k)
            expected = naive_rank(rows, needs, k)
            assert [(index.rows[i].key, units) for i, units in ranked.top] == \
                [(row.key, units) for row, units in expected]
            eligible = [(row, domain.evaluate(row, needs, explain=False)) for row in rows]
            eligible = [(row, e.units) for row, e in eligible if e.eligible]
            assert ranked.eligible == len(eligible)
            if not eligible:
                continue
            row, units = rng.choice(eligible)  # its provider's place among all, each by its best row
            key = domain.sort_key(units, row)
            ahead = {other.provider_id for other, u in eligible if domain.sort_key(u, other) < key}
            ahead.discard(row.provider_id)
            assert index.position(ranked, index.row_of(row.key)) == len(ahead) + 1
            mine = sorted(((r.key, u) for r, u in eligible if r.provider_id == row.provider_id),
                          key=lambda item: (-item[1], item[0]))
            assert [(index.rows[i].key, u) for i, u in index.eligible_rows_of(ranked, row.provider_id)] == mine

    for profile, track in profiles:
        oracle[profile["id"]] = _rows(profile, track)
        index.upsert(profile["id"], oracle[profile["id"]])
    check()
    for _ in range(3):  # churn: changes, removals and returns, enough dead rows to compact at least once
        for profile, track in rng.sample(profiles, 500):
            roll = rng.random()
            if roll < 0.3:
                index.remove(profile["id"])
                oracle.pop(profile["id"], None)
                continue
            changed = {**profile, "verified": rng.random() < 0.8,
                       "availability": {"status": rng.choice(["available", "limited", "unavailable"]),
                                        "available_from": None},
                       "nda_willing": rng.random() < 0.5}
            if profile["kind"] == "individual":
                changed["capacity_hours_per_week"] = rng.choice([5, 10, 40])
            oracle[profile["id"]] = _rows(changed, track)
            index.upsert(profile["id"], oracle[profile["id"]])
        assert len(index) == sum(len(rows) for rows in oracle.values())
        check()
