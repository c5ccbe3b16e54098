"""A kept explanation is what ``domain.evaluate`` says of the row now: it is not used once the row, the index's
numbering or the posting's needs changed."""

from datetime import UTC, datetime

from services.matching import domain, shortlists
from services.matching.explanations import BREAKDOWN, Explanations
from tests.unit.matching import builders as b
from tests.unit.matching.builders import POSTING

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def explanation_of(index, needs, provider_id):
    row = index.provider_rows(provider_id)[0]
    evaluation = domain.evaluate(row, needs)
    return evaluation.units, evaluation.reasons


def kept_market():
    profiles = [b.profile(n=n) for n in range(1, 5)]
    index = b.index_of(*profiles)
    needs = domain.posting_needs(POSTING)
    explanations = Explanations()
    shortlist, ranked = shortlists.build(index, needs, 3, version=1, now=NOW)
    explanations.keep_built(index, needs, shortlist, ranked.top)
    return profiles, index, needs, explanations, shortlist


def test_a_listed_candidate_is_explained_from_what_was_kept_while_its_row_is_unchanged():
    _, index, needs, explanations, shortlist = kept_market()
    kept = explanations.of(index, needs)
    for candidate in shortlist["candidates"]:
        found = kept.get(index, (candidate["provider_id"], ""))
        assert (found.score, list(found.reasons)) == (candidate["score"], candidate["reasons"])
        assert dict(zip(BREAKDOWN, found.breakdown, strict=True)) == candidate["breakdown"]


def test_a_provider_whose_rows_changed_is_explained_again():
    profiles, index, needs, explanations, shortlist = kept_market()
    listed = shortlist["candidates"][0]["provider_id"]
    n = next(n for n, p in enumerate(profiles, 1) if p["id"] == listed)
    changed = b.profile(n=n, skills=[{"name": "calendar management", "level": 2}])
    index.upsert(listed, b.rows(changed))
    found = explanations.of(index, needs).get(index, (listed, ""))
    units, reasons = explanation_of(index, needs, listed)
    assert (found.units, list(found.reasons)) == (units, reasons)
    assert found.score != shortlist["candidates"][0]["score"]


def test_nothing_kept_is_used_once_the_index_is_renumbered_or_the_needs_change():
    _, index, needs, explanations, _ = kept_market()
    assert explanations.of(index, needs).rows
    other_needs = domain.posting_needs({**POSTING, "min_overlap_hours": 1})
    assert not explanations.of(index, other_needs).rows  # the same posting, edited

    _, index, needs, explanations, _ = kept_market()
    index._compact()  # what removing many providers triggers: every row gets a new number
    assert not explanations.of(index, needs).rows
