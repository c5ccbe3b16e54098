"""Re-matching after one provider change, done incrementally, gives exactly what ranking every posting again gives.

Property: for any change of one provider of a realistic market (skills, verification, availability, NDA, languages,
rate, load, track record), the open postings' view names exactly the postings whose shortlist the rules say the
change can alter (``shortlists.could_change``); on each, the incremental shortlist (``shortlists.admit``, or a full
``build`` when it declines) equals a full ranking's, explanations included; the batched form of all of them at once
(``rematching.admit_all``: kept explanations, the changed rows evaluated over the postings in columns) is exactly
``shortlists.admit``'s; every other posting's full ranking keeps its providers, order and scores.
"""

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.matching import domain, rematching, shortlists
from tests.unit.matching import population

NOW = datetime(2026, 12, 6, tzinfo=UTC)
K = 5
SKILL_NAMES = sorted({name for names in population.SKILLS.values() for name in names})


@pytest.fixture(scope="module", params=["as built", "as stored"])
def market(request):
    """The view fed the shortlists as built (a process's own) or as the database keeps them (after a start, or
    another process's, through the change stream)."""
    return population.open_market(600, 21, 80, 900, K, NOW, stored=request.param == "as stored")


changes = st.fixed_dictionaries({}, optional={
    "skills": st.dictionaries(st.sampled_from(SKILL_NAMES), st.integers(0, 5), max_size=6),
    "verified": st.booleans(),
    "availability_status": st.sampled_from(["available", "limited", "unavailable"]),
    "nda_willing": st.booleans(),
    "languages": st.sampled_from([frozenset({"en"}), frozenset({"es"}), frozenset({"en", "tl"})]),
    "hourly_units": st.one_of(st.none(), st.integers(10_000, 1_500_000)),
    "retainer_units": st.one_of(st.none(), st.integers(1_000_000, 60_000_000)),
    "committed_hours_per_week": st.sampled_from([0.0, 10.0, 35.0, 400.0]),
    "completed_contracts": st.integers(0, 3),
    "rating": st.one_of(st.none(), st.floats(1.0, 5.0)),
})


def changed(rows: list[domain.CandidateRow], change: dict) -> list[domain.CandidateRow]:
    track_fields = {"committed_hours_per_week", "completed_contracts", "rating"}
    out = []
    for row in rows:
        fields = {k: v for k, v in change.items() if k not in track_fields}
        if "skills" in fields:
            fields["skills"] = {**row.skills, **fields["skills"]}
        track = dataclasses.replace(row.track, **{k: v for k, v in change.items() if k in track_fields})
        out.append(dataclasses.replace(row, **fields, track=track))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), change=changes)
def test_incremental_re_matching_equals_ranking_every_posting_again(market, pick, change):
    index, view, postings = market
    providers = sorted(index.by_provider)
    # half the time a provider already on some shortlist (it may move or drop out), else any provider
    listed = sorted(view.by_provider)
    provider_id = listed[pick % len(listed)] if pick % 2 else providers[pick % len(providers)]
    previous = index.provider_rows(provider_id)
    rows = changed(previous, change)
    index.upsert(provider_id, rows)
    try:
        touched = {entry.posting["id"]: entry for entry in view.touched_by(provider_id, rows)}
        batched = rematching.admit_all(view, index, list(touched.values()), provider_id, rows, previous, now=NOW)
        assert batched.keys() == touched.keys()
        for posting_id, posting in postings.items():
            needs = domain.posting_needs(posting)
            before = posting["shortlist"]
            assert (posting_id in touched) == shortlists.could_change(before, needs, provider_id, rows), posting_id
            full, _ = shortlists.build(index, needs, K, version=2, now=NOW)
            if posting_id not in touched:
                assert shortlists.order(full) == shortlists.order(before), posting_id
                assert shortlists.scores(full) == shortlists.scores(before), posting_id
                continue
            entry = touched[posting_id]
            incremental = shortlists.admit(index, entry.needs, entry.posting["shortlist"], provider_id, rows,
                                           previous, version=2, now=NOW)
            assert batched[posting_id] == incremental, posting_id
            if incremental is not None:
                assert incremental == full, posting_id
    finally:
        index.upsert(provider_id, previous)  # back, so every stored shortlist stays current


def test_a_shortlist_not_in_ranking_order_is_ranked_again_rather_than_admitted_into():
    """The batched form puts the provider in place among the other candidates without sorting them: it relies on a
    shortlist being in ranking order, and declines one that is not (the caller then ranks the market again)."""
    index, view, _ = population.open_market(300, 5, 40, 700, K, NOW)
    for provider_id in sorted(index.by_provider):
        previous = index.provider_rows(provider_id)
        rows = changed(previous, {"skills": {name: 5 for name in SKILL_NAMES}, "verified": True,
                                  "availability_status": "available"})
        index.upsert(provider_id, rows)
        touched = view.touched_by(provider_id, rows)
        admitted = rematching.admit_all(view, index, touched, provider_id, rows, previous, now=NOW)
        entry = next((e for e in touched if admitted[e.posting["id"]] is not None
                      and provider_id not in e.listed and len(e.posting["shortlist"]["candidates"]) >= 3), None)
        if entry is not None:
            break
        index.upsert(provider_id, previous)
    else:
        pytest.fail("no change enters a shortlist of three")
    first, second, *rest = entry.posting["shortlist"]["candidates"]
    swapped = {**entry.posting["shortlist"], "candidates": [{**second, "rank": 1}, {**first, "rank": 2}, *rest]}
    view.set_shortlist(entry.posting["id"], swapped)
    entry = view.entries[entry.posting["id"]]

    assert rematching.admit_all(view, index, [entry], provider_id, rows, previous, now=NOW) == {
        entry.posting["id"]: None}
    assert shortlists.admit(index, entry.needs, swapped, provider_id, rows, previous, version=2, now=NOW) is not None
