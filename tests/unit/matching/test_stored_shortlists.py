"""A shortlist as matching's database keeps it (``shortlists.stored``): the candidates' breakdowns and reasons as one
JSON text beside the fields deciding reads, read back (``shortlists.readable``) exactly as built; a shortlist stored
before in the nested form reads as it is, and the view of the open postings decides the same from either form."""

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


def test_a_stored_shortlist_reads_back_exactly_as_built(built):
    for _, shortlist in built:
        stored = shortlists.stored(shortlist)
        assert isinstance(stored["details"], str)
        for candidate in stored["candidates"]:
            assert not {"breakdown", "reasons"} & candidate.keys()
            assert all("breakdown" in other for other in candidate.get("other_centres", ()))  # a re-match copies them
        assert shortlists.readable(stored) == shortlist
        assert json.dumps(shortlists.readable(stored)) == json.dumps(shortlist)  # the same wire text, key order too


def test_a_shortlist_stored_nested_before_reads_as_it_is(built):
    for _, shortlist in built:
        assert shortlists.readable(shortlist) is shortlist
    assert shortlists.readable(None) is None
    assert shortlists.stored(None) is None


def test_the_view_decides_the_same_from_either_stored_form(market, built):
    nested, compact = OpenPostings(), OpenPostings()
    for posting, shortlist in built:
        nested.apply(posting["id"], {**posting, "status": domain.OPEN, "shortlist": shortlist})
        compact.apply(posting["id"], {**posting, "status": domain.OPEN, "shortlist": shortlists.stored(shortlist)})
    for posting, _ in built:
        a, b = nested.entries[posting["id"]], compact.entries[posting["id"]]
        assert (a.listed, a.cut) == (b.listed, b.cut)
        assert shortlists.order(a.posting["shortlist"]) == shortlists.order(b.posting["shortlist"])
        assert shortlists.scores(a.posting["shortlist"]) == shortlists.scores(b.posting["shortlist"])
        assert "details" not in b.posting["shortlist"]
    for provider_id in list(market.by_provider)[:200]:
        rows = market.provider_rows(provider_id)
        assert [e.posting["id"] for e in nested.touched_by(provider_id, rows)] == \
            [e.posting["id"] for e in compact.touched_by(provider_id, rows)]
