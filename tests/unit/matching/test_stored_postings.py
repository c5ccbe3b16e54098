"""A posting as matching's database keeps it (``repository._stored_posting``): the fields matching queries, projects,
splits by and sets itself as fields, the rest of the snapshot as one JSON text; read back (``posting_fields``,
``_readable_posting``) as it was, from this form, from the form of before (every field apart), and from a document of
before written since in this form (its stale fields beside the text)."""

import json
import random
from datetime import UTC, datetime

import pytest

from services.matching import domain, shortlists
from services.matching.open_postings import OpenPostings
from services.matching.ranking import MatchIndex
from services.matching.repository import (
    OWN_POSTING_FIELDS,
    SNAPSHOT,
    _readable_posting,
    _stored_posting,
    posting_fields,
)
from tests.unit.matching import population

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def postings() -> list[dict]:
    """Postings as matching stores them: the snapshot with its lane, status and first shortlist."""
    index = MatchIndex()
    for profile, track in population.providers(2000, seed=9):
        index.upsert(profile["id"], domain.candidate_rows(profile, domain.TrackRecord.from_document(track)))
    found = []
    for n in range(30):
        posting = {**population.posting(random.Random(700 + n)), "lane": "smb", "status": domain.OPEN}
        posting["shortlist"], _ = shortlists.build(index, domain.posting_needs(posting), 10, version=1, now=NOW)
        found.append(posting)
    return found


def as_read(document: dict, posting_id: str) -> dict:
    """What a find returns of a stored document (``_id`` where the posting had ``id``)."""
    return {"_id": posting_id, **document}


def stored_before(posting: dict) -> dict:
    """The form of before 2026-12-07: every field of the snapshot apart."""
    return {k: v for k, v in posting.items() if k != "id"} | {"shortlist": shortlists.stored(posting["shortlist"])}


def test_a_stored_posting_keeps_its_own_fields_apart_and_the_rest_as_one_text(postings):
    for posting in postings:
        stored = _stored_posting(posting)
        assert set(stored) == {k for k in OWN_POSTING_FIELDS if k in posting} | {SNAPSHOT}
        assert type(stored[SNAPSHOT]) is str
        snapshot = json.loads(stored[SNAPSHOT])
        assert not set(snapshot) & {"id", *OWN_POSTING_FIELDS}
        assert {**snapshot, **{k: stored[k] for k in OWN_POSTING_FIELDS if k in stored and k != "shortlist"}} == {
            k: v for k, v in posting.items() if k not in ("id", "shortlist")}


def test_a_stored_posting_reads_back_as_it_was(postings):
    for posting in postings:
        read = _readable_posting(as_read(_stored_posting(posting), posting["id"]))
        assert read == {"_id": posting["id"], **{k: v for k, v in posting.items() if k != "id"}}
        assert posting_fields(as_read(_stored_posting(posting), posting["id"]))["shortlist"] == shortlists.stored(
            posting["shortlist"])  # the view reads the shortlist as stored, without its details


def test_a_posting_stored_with_its_fields_apart_before_reads_the_same(postings):
    for posting in postings:
        before = as_read(stored_before(posting), posting["id"])
        assert _readable_posting(before) == _readable_posting(as_read(_stored_posting(posting), posting["id"]))


def test_a_posting_of_before_written_since_reads_the_text_over_its_stale_fields_and_its_own_fields_over_both(
        postings):
    posting = postings[0]
    before = stored_before(posting)
    # A newer snapshot written over it since ($set of the stored form): its old fields stay beside the text.
    newer = {**posting, "title": "Second take", "version": posting["version"] + 1}
    written = {**before, **_stored_posting(newer)}
    assert written["title"] == posting["title"]  # stale, left by the $set
    # Then matching ends it on its own ($set of its own fields).
    ended = {**written, "status": "cancelled", "cancelled_at": "2026-12-07T10:00:00.000Z"}
    read = posting_fields(as_read(ended, posting["id"]))
    assert read["title"] == "Second take" and read["version"] == posting["version"] + 1
    assert (read["status"], read["cancelled_at"]) == ("cancelled", "2026-12-07T10:00:00.000Z")
    assert SNAPSHOT not in read


def test_the_view_of_the_open_postings_decides_the_same_from_either_form(postings):
    views = []
    for form in (_stored_posting, stored_before):
        view = OpenPostings()
        for posting in postings:
            view.apply(posting["id"], posting_fields(as_read(form(posting), posting["id"])))
        views.append(view)
    assert views[0].entries.keys() == views[1].entries.keys() == {p["id"] for p in postings}
    for posting in postings:
        first, second = (view.entries[posting["id"]] for view in views)
        assert first.needs == second.needs == domain.posting_needs(posting)
        assert first.posting == second.posting
