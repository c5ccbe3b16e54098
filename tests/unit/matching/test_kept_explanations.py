"""A kept explanation is what ``domain.evaluate`` says of the row now: it is not used once the row, the index's
numbering or the posting's needs changed."""

import gc
from datetime import UTC, datetime

from services.matching import domain, shortlists
from services.matching.explanations import BREAKDOWN, Explanations, breakdown_of
from services.matching.open_postings import OpenPostings
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
        _, _, score, values, reasons = kept.get(index, (candidate["provider_id"], ""))
        assert (score, list(reasons)) == (candidate["score"], candidate["reasons"])
        assert dict(zip(BREAKDOWN, values, strict=True)) == candidate["breakdown"]


def test_a_provider_whose_rows_changed_is_explained_again():
    profiles, index, needs, explanations, shortlist = kept_market()
    listed = shortlist["candidates"][0]["provider_id"]
    n = next(n for n, p in enumerate(profiles, 1) if p["id"] == listed)
    changed = b.profile(n=n, skills=[{"name": "calendar management", "level": 2}])
    index.upsert(listed, b.rows(changed))
    _, found_units, score, _, found_reasons = explanations.of(index, needs).get(index, (listed, ""))
    units, reasons = explanation_of(index, needs, listed)
    assert (found_units, list(found_reasons)) == (units, reasons)
    assert score != shortlist["candidates"][0]["score"]


def test_nothing_kept_is_used_once_the_index_is_renumbered_or_the_needs_change():
    _, index, needs, explanations, _ = kept_market()
    assert explanations.of(index, needs).rows
    other_needs = domain.posting_needs({**POSTING, "min_overlap_hours": 1})
    assert not explanations.of(index, other_needs).rows  # the same posting, edited

    _, index, needs, explanations, _ = kept_market()
    index._compact()  # what removing many providers triggers: every row gets a new number
    assert not explanations.of(index, needs).rows


def test_kept_explanations_leave_the_garbage_collector_once_it_has_seen_them_and_what_they_hold():
    """Made after start they are not frozen with what was loaded: they must not add to every full collection."""
    profiles, index, needs, explanations, shortlist = kept_market()
    changed = b.profile(n=1, skills=[{"name": "calendar management", "level": 2}])
    index.upsert(profiles[0]["id"], b.rows(changed))
    kept = explanations.of(index, needs)
    made = [kept.get(index, (c["provider_id"], "")) for c in shortlist["candidates"]]  # one explained again
    gc.collect()
    gc.collect()  # the first may see an explanation before the tuples in it, which it stops tracking first
    assert made and not any(gc.is_tracked(found) for found in made if found is not None)
    assert not gc.is_tracked(kept.rows)


def test_a_kept_breakdown_is_written_out_under_its_components_names_in_their_order():
    values = tuple(f"0.{n:04d}" for n in range(len(BREAKDOWN)))
    written = breakdown_of(values)
    assert written == dict(zip(BREAKDOWN, values, strict=True))
    assert list(written) == list(BREAKDOWN) == list(b.evaluate(b.profile()).components)  # the order JSON keeps


def test_what_is_kept_of_a_posting_is_kept_for_the_views_own_needs_whichever_came_first():
    """A re-match looks a posting's explanations up with the view's needs object: kept for an equal copy (the builder's
    own), they are found by identity, not by comparing every field, whether the view had the posting first or not."""
    index = b.index_of(*[b.profile(n=n) for n in range(1, 5)])
    for view_first in (True, False):
        view = OpenPostings()
        builders_needs = domain.posting_needs(POSTING)
        shortlist, ranked = shortlists.build(index, builders_needs, 3, version=1, now=NOW)
        document = {**POSTING, "status": domain.OPEN, "shortlist": shortlist}
        if view_first:
            view.apply(POSTING["id"], document)
        view.explanations.keep_built(index, builders_needs, shortlist, ranked.top)
        if not view_first:
            view.apply(POSTING["id"], document)
        own = view.needs_of(POSTING["id"])
        assert own == builders_needs and own is not builders_needs
        assert view.explanations._kept[POSTING["id"]].needs is own
        assert len(view.explanations.of(index, own).rows) == 3
