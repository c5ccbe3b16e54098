"""A shortlist changes only when who is on it, or their order, changes; a provider re-ranks only what it touches."""

from datetime import UTC, datetime

from services.matching import domain, shortlists
from tests.unit.matching import builders as b
from tests.unit.matching.builders import POSTING

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
