"""A shortlist as matching's database keeps it (``shortlists.stored``): its candidates as two JSON texts, what deciding
reads (``listed``) and their breakdowns and reasons (``details``), read back (``shortlists.readable``) exactly as
built; a shortlist stored in either form before (nested; its candidates as fields beside ``details``) reads the same,
and the view of the open postings decides the same from every form."""

import json
import random
from datetime import UTC, datetime

import pytest

from services.matching import domain, shortlists
from services.matching.open_postings import OpenPostings
from services.matching.ranking import MatchIndex
from tests.unit.matching import population

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def market() -> MatchIndex:
    index = MatchIndex()
    for profile, track in population.providers(3000, seed=3):
        index.upsert(profile["id"], domain.candidate_rows(profile, domain.TrackRecord.from_document(track)))
    return index


@pytest.fixture(scope="module")
def built(market) -> list[tuple[dict, dict]]:
    """Postings with their shortlists as ``shortlists.build`` writes them, firms' other centres among them."""
    found = []
    for n in range(60):
        posting = population.posting(random.Random(500 + n))
        shortlist, _ = shortlists.build(market, domain.posting_needs(posting), 10, version=3, now=NOW)
        found.append((posting, shortlist))
    assert any(c.get("other_centres") for _, s in found for c in s["candidates"])
    return found


def stored_before(shortlist: dict) -> dict:
    """The stored form of before 2026-12-07: the candidates as fields (without their details) beside ``details``."""
    stored = shortlists.stored(shortlist)
    return {("candidates" if k == "listed" else k): (json.loads(v) if k == "listed" else v) for k, v in stored.items()}


def test_a_stored_shortlist_reads_back_exactly_as_built(built):
    for _, shortlist in built:
        stored = shortlists.stored(shortlist)
        assert "candidates" not in stored
        assert {type(stored["listed"]), type(stored["details"])} == {str}
        for candidate in json.loads(stored["listed"]):
            assert not {"breakdown", "reasons"} & candidate.keys()
            assert all("breakdown" in other for other in candidate.get("other_centres", ()))  # a re-match copies them
        assert shortlists.readable(stored) == shortlist
        assert json.dumps(shortlists.readable(stored)) == json.dumps(shortlist)  # the same wire text, key order too


def test_a_shortlist_stored_with_its_candidates_as_fields_before_reads_the_same(built):
    for _, shortlist in built:
        before = stored_before(shortlist)
        assert isinstance(before["candidates"], list)
        assert json.dumps(shortlists.readable(before)) == json.dumps(shortlist)
        assert shortlists.without_details(before) == shortlists.without_details(shortlists.stored(shortlist))


def test_a_shortlist_stored_nested_before_reads_as_it_is(built):
    for _, shortlist in built:
        assert shortlists.readable(shortlist) is shortlist
    assert shortlists.readable(None) is None
    assert shortlists.stored(None) is None


def test_the_view_decides_the_same_from_every_stored_form(market, built):
    """Nested; stored, whole (as the follower of ``postings`` reads it) and without its details (as the view is built
    from the database, ``repository._RE_RANKING_VIEW``); stored before with its candidates as fields."""
    forms = {
        "nested": lambda shortlist: shortlist,
        "stored": shortlists.stored,
        "stored, read without details": lambda shortlist: {
            k: v for k, v in shortlists.stored(shortlist).items() if k != "details"},
        "stored before": stored_before,
    }
    views = {form: OpenPostings() for form in forms}
    for posting, shortlist in built:
        for form, view in views.items():
            view.apply(posting["id"], {**posting, "status": domain.OPEN, "shortlist": forms[form](shortlist)})
    nested = views.pop("nested")
    for posting, _ in built:
        a = nested.entries[posting["id"]]
        for view in views.values():
            b = view.entries[posting["id"]]
            assert (a.listed, a.cut) == (b.listed, b.cut)
            assert shortlists.order(a.posting["shortlist"]) == shortlists.order(b.posting["shortlist"])
            assert shortlists.scores(a.posting["shortlist"]) == shortlists.scores(b.posting["shortlist"])
            assert not {"details", "listed"} & b.posting["shortlist"].keys()
    for provider_id in list(market.by_provider)[:200]:
        rows = market.provider_rows(provider_id)
        touched = [e.posting["id"] for e in nested.touched_by(provider_id, rows)]
        for view in views.values():
            assert [e.posting["id"] for e in view.touched_by(provider_id, rows)] == touched
