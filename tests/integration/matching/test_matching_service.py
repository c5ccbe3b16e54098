"""The matching service over a real broker and database: events in, shortlists and events out, RPC queries."""

import json
from pathlib import Path

import pytest
from nameko.testing.services import entrypoint_waiter

from services.matching import domain, shortlists
from services.matching.service import MatchingService
from shared.runtime import contracts
from shared.runtime import envelope as envelopes
from shared.vocabulary.errors import NotFound
from tests.integration.matching.events import (
    OTHER_TENANT,
    STRONG_SKILLS,
    TENANT,
    deliver,
    emitted,
    live,
    profile_event,
    publish_built,
    publish_posting,
    register,
    stored_posting,
    stored_shortlist,
)
from tests.unit.matching import builders as b
from tests.unit.matching.builders import POSTING

pytestmark = pytest.mark.integration


def test_a_published_posting_gets_an_explained_shortlist_and_matches_proposed(matching, rpc, database, amqp_uri):
    strong = [b.profile(n=n, skills=STRONG_SKILLS) for n in (11, 12)]
    average = b.profile(n=13)
    refuses_nda = b.profile(n=14, nda_willing=False, skills=STRONG_SKILLS)
    for p in (*strong, average, refuses_nda):
        register(matching, amqp_uri, p)

    publish_posting(matching, amqp_uri)

    (proposed,) = emitted(database, "matches.proposed.v1")
    assert (proposed["subject"], proposed["tenantid"], proposed["lane"]) == (POSTING["id"], b.TENANT, "smb")
    shortlist = proposed["data"]["shortlist"]
    assert shortlist["version"] == 1
    assert [c["provider_id"] for c in shortlist["candidates"]] == [strong[0]["id"], strong[1]["id"], average["id"]]
    assert rpc.get_shortlist(b.TENANT, POSTING["id"])["shortlist"] == shortlist

    why_not = rpc.explain(b.TENANT, POSTING["id"], refuses_nda["id"])
    assert why_not["status"] == "excluded"
    assert [x["constraint"] for x in why_not["rows"][0]["excluded_by"]] == ["no_nda"]
    why = rpc.explain(b.TENANT, POSTING["id"], average["id"])
    assert (why["status"], why["rows"][0]["rank"]) == ("shortlisted", 3)


def test_a_shortlist_keeps_its_candidates_and_their_details_as_texts_and_one_stored_nested_before_still_reads(
        matching, rpc, database, amqp_uri):
    for n in (71, 72, 73):
        register(matching, amqp_uri, b.profile(n=n))
    publish_posting(matching, amqp_uri)
    (proposed,) = emitted(database, "matches.proposed.v1")
    stored = database.postings.find_one({"_id": POSTING["id"]})["shortlist"]
    assert {type(stored["listed"]), type(stored["details"])} == {str}
    assert not any({"breakdown", "reasons"} & candidate.keys() for candidate in json.loads(stored["listed"]))
    assert [c["provider_id"] for c in json.loads(stored["listed"])] == [b.provider_id(n) for n in (71, 72, 73)]

    # As a shortlist was stored before: the candidates with their breakdowns and reasons, nested.
    nested = proposed["data"]["shortlist"] | {"eligible": stored["eligible"], "top_k": stored["top_k"]}
    database.postings.update_one({"_id": POSTING["id"]}, {"$set": {"shortlist": nested}})
    assert "details" not in database.postings.find_one({"_id": POSTING["id"]})["shortlist"]
    assert rpc.get_shortlist(b.TENANT, POSTING["id"])["shortlist"] == proposed["data"]["shortlist"]
    assert rpc.get_posting(POSTING["id"])["shortlist"] == nested
    assert rpc.explain(b.TENANT, POSTING["id"], b.provider_id(72))["shortlist_version"] == 1
    view = live(matching)
    view.catch_up_postings()
    assert shortlists.order(view.postings.entries[POSTING["id"]].posting["shortlist"]) == shortlists.order(nested)

    better = b.profile(n=79, skills=STRONG_SKILLS)
    register(matching, amqp_uri, better)  # re-ranks the nested shortlist; stores the new form
    (updated,) = emitted(database, "shortlist.updated.v1")
    assert updated["data"]["changes"]["added"] == [better["id"]]
    assert {"listed", "details"} <= database.postings.find_one({"_id": POSTING["id"]})["shortlist"].keys()
    assert rpc.get_shortlist(b.TENANT, POSTING["id"])["shortlist"] == updated["data"]["shortlist"]


def test_a_posting_keeps_its_snapshot_as_text_and_one_stored_with_its_fields_apart_before_still_reads_and_updates(
        matching, rpc, database, amqp_uri):
    for n in (74, 75, 76):
        register(matching, amqp_uri, b.profile(n=n))
    publish_posting(matching, amqp_uri)
    document = database.postings.find_one({"_id": POSTING["id"]})
    assert type(document["snapshot"]) is str and "title" not in document and document["status"] == "open"
    answered = rpc.get_posting(POSTING["id"])
    assert answered["title"] == POSTING["title"] and answered["required_skills"] == POSTING["required_skills"]

    # As a posting was stored before: every field of the snapshot apart.
    before = {k: v for k, v in stored_posting(database).items() if k != "_id"}
    database.postings.replace_one({"_id": POSTING["id"]}, before)
    assert "snapshot" not in database.postings.find_one({"_id": POSTING["id"]})
    assert rpc.get_posting(POSTING["id"]) == answered
    view = live(matching)
    view.follow_postings()
    view.catch_up_postings()
    assert view.postings.entries[POSTING["id"]].needs == domain.posting_needs(POSTING)

    # A newer snapshot is written over it in the new form: what it changed reads, the fields of before do not win.
    edited = b.posting(title="Inbox and calendar help", version=POSTING["version"] + 1)
    deliver(matching, amqp_uri, "on_posting_updated", "postings", "posting.updated.v1",
            {"posting": edited, "changed": ["title"]}, POSTING["id"], tenant=b.TENANT)
    assert database.postings.find_one({"_id": POSTING["id"]})["title"] == POSTING["title"]  # left beside the text
    assert rpc.get_posting(POSTING["id"])["title"] == "Inbox and calendar help"
    better = b.profile(n=79, skills=STRONG_SKILLS)
    register(matching, amqp_uri, better)  # the view re-ranks it
    (updated,) = emitted(database, "shortlist.updated.v1")
    assert updated["data"]["changes"]["added"] == [better["id"]]
    assert stored_posting(database)["title"] == "Inbox and calendar help"


def test_another_tenant_gets_not_found_for_the_shortlist_and_its_explanations(matching, rpc, amqp_uri):
    register(matching, amqp_uri, b.profile(n=21))
    publish_posting(matching, amqp_uri)
    with pytest.raises(NotFound):
        rpc.get_shortlist(OTHER_TENANT, POSTING["id"])
    with pytest.raises(NotFound):
        rpc.explain(OTHER_TENANT, POSTING["id"], b.provider_id(21))
    with pytest.raises(NotFound):
        rpc.get_shortlist(b.TENANT, "pst_" + "9" * 32)


def test_a_better_provider_registering_later_updates_the_open_shortlist(matching, rpc, database, amqp_uri):
    for n in (31, 32, 33):
        register(matching, amqp_uri, b.profile(n=n))
    publish_posting(matching, amqp_uri)

    better = b.profile(n=39, skills=STRONG_SKILLS, verified=False, verified_at=None)
    register(matching, amqp_uri, better)
    assert emitted(database, "shortlist.updated.v1") == []  # not verified yet: it cannot enter

    deliver(matching, amqp_uri, "on_provider_verified", "providers", "provider.verified.v1",
            {"provider_id": better["id"], "verified_at": "2026-12-02T09:00:00.000Z", "verified_by": "operator"},
            better["id"], lane="smb")

    (updated,) = emitted(database, "shortlist.updated.v1")
    data = updated["data"]
    assert data["previous_version"] == 1 and data["shortlist"]["version"] == 2
    assert data["shortlist"]["candidates"][0]["provider_id"] == better["id"]
    assert data["changes"] == {"added": [better["id"]], "removed": [b.provider_id(33)],
                               "moved": [b.provider_id(31), b.provider_id(32)]}
    assert rpc.get_shortlist(b.TENANT, POSTING["id"])["shortlist"]["version"] == 2


def test_a_change_that_cannot_touch_the_shortlist_emits_nothing(matching, database, amqp_uri):
    for n in (41, 42, 43):
        register(matching, amqp_uri, b.profile(n=n, skills=STRONG_SKILLS))
    publish_posting(matching, amqp_uri)
    register(matching, amqp_uri, b.profile(n=49, skills=[{"name": "calendar management", "level": 3}]))
    register(matching, amqp_uri, b.profile(n=48, categories=["bookkeeping"]))
    assert emitted(database, "shortlist.updated.v1") == []


def test_a_shortlisted_provider_going_unavailable_leaves_the_shortlist(matching, database, amqp_uri):
    for n in (51, 52, 53, 54):
        register(matching, amqp_uri, b.profile(n=n))
    publish_posting(matching, amqp_uri)
    deliver(matching, amqp_uri, "on_provider_availability_changed", "providers", "provider.availability_changed.v1",
            {"provider_id": b.provider_id(51), "availability": {"status": "unavailable", "available_from": None},
             "capacity_hours_per_week": 40, "delivery_centres": []}, b.provider_id(51))
    (updated,) = emitted(database, "shortlist.updated.v1")
    assert updated["data"]["changes"]["removed"] == [b.provider_id(51)]
    assert updated["data"]["changes"]["added"] == [b.provider_id(54)]


def awarded_event():
    schema = json.loads(Path(contracts.event_schema_path("postings", "posting.awarded.v1")).read_text())
    data = json.loads(json.dumps(schema["examples"][0]["data"]))
    data["posting"]["id"], data["posting"]["tenant_id"] = POSTING["id"], b.TENANT
    return data


def test_an_awarded_posting_is_no_longer_re_ranked(matching, database, amqp_uri):
    register(matching, amqp_uri, b.profile(n=61))
    publish_posting(matching, amqp_uri)
    deliver(matching, amqp_uri, "on_posting_awarded", "postings", "posting.awarded.v1", awarded_event(),
            POSTING["id"], tenant=b.TENANT)
    register(matching, amqp_uri, b.profile(n=62, skills=STRONG_SKILLS))
    assert emitted(database, "shortlist.updated.v1") == []
    assert database.postings.find_one({"_id": POSTING["id"]})["status"] == "awarded"


def test_a_cancelled_posting_is_no_longer_re_ranked(matching, database, amqp_uri):
    register(matching, amqp_uri, b.profile(n=71))
    publish_posting(matching, amqp_uri)
    deliver(matching, amqp_uri, "on_posting_cancelled", "postings", "posting.cancelled.v1",
            {"posting_id": POSTING["id"], "reason": "Hired in-house", "cancelled_at": "2026-12-03T09:00:00.000Z"},
            POSTING["id"], tenant=b.TENANT)
    register(matching, amqp_uri, b.profile(n=72, skills=STRONG_SKILLS))
    assert emitted(database, "shortlist.updated.v1") == []


def test_an_edited_posting_is_re_ranked(matching, database, amqp_uri):
    mexico = b.profile(n=81)
    manila_night = b.profile(n=82, skills=STRONG_SKILLS, country="PH", time_zone="Asia/Manila",
                             working_hours={"days": b.WEEKDAYS, "start": "21:00", "end": "06:00"})
    register(matching, amqp_uri, mexico)
    register(matching, amqp_uri, manila_night)
    publish_posting(matching, amqp_uri)
    edited = b.posting(shoring={"preference": "nearshore", "required": True}, version=3)
    deliver(matching, amqp_uri, "on_posting_updated", "postings", "posting.updated.v1",
            {"posting": edited, "changed": ["shoring"]}, POSTING["id"], tenant=b.TENANT)
    (updated,) = emitted(database, "shortlist.updated.v1")
    assert [c["provider_id"] for c in updated["data"]["shortlist"]["candidates"]] == [mexico["id"]]
    assert updated["data"]["changes"]["removed"] == [manila_night["id"]]


def test_a_restarted_service_rebuilds_its_index_from_its_own_database(container_factory, config, database,
                                                                       amqp_uri, quiet_queues):
    first = container_factory(MatchingService, config)
    first.start()
    register(first, amqp_uri, b.profile(n=91, skills=STRONG_SKILLS))
    register(first, amqp_uri, b.profile(n=92))
    first.stop()

    second = container_factory(MatchingService, config)
    second.start()
    publish_posting(second, amqp_uri)
    (proposed,) = emitted(database, "matches.proposed.v1")
    assert [c["provider_id"] for c in proposed["data"]["shortlist"]["candidates"]] == \
        [b.provider_id(91), b.provider_id(92)]


def test_a_redelivered_posting_event_is_applied_once(matching, database, amqp_uri):
    register(matching, amqp_uri, b.profile(n=95))
    publish_posting(matching, amqp_uri)
    event = envelopes.build(service="postings", routing_key="posting.published.v1", subject=POSTING["id"],
                            data={"posting": POSTING}, lane="smb", tenant=b.TENANT)
    for _ in range(2):
        with entrypoint_waiter(matching, "on_posting_published", timeout=20):
            publish_built(amqp_uri, "postings", event)
    assert len(emitted(database, "matches.proposed.v1")) == 1


def handler_troubles(caplog) -> list[str]:
    """Warnings and errors of event handling (the outbox relay's own, about this test's unbound queues, aside)."""
    return [r.getMessage() for r in caplog.records
            if r.levelname in ("ERROR", "WARNING") and r.name != "shared.runtime.outbox"]


def test_a_verification_that_overtakes_the_registration_is_kept_and_applied_when_the_registration_comes(
        matching, rpc, database, amqp_uri, caplog):
    for n in (94, 95, 96):
        register(matching, amqp_uri, b.profile(n=n))
    publish_posting(matching, amqp_uri)
    late = b.profile(n=97, skills=STRONG_SKILLS, verified=False, verified_at=None)
    deliver(matching, amqp_uri, "on_provider_verified", "providers", "provider.verified.v1",
            {"provider_id": late["id"], "verified_at": "2026-12-02T09:00:00.000Z", "verified_by": "operator"},
            late["id"])
    assert handler_troubles(caplog) == []  # nothing failed, no retry
    assert database.providers.find_one({"_id": late["id"]}) is None

    register(matching, amqp_uri, late)  # the registration handler alone makes it verified and ranked
    assert database.providers.find_one({"_id": late["id"]})["verification"]
    assert rpc.get_shortlist(b.TENANT, POSTING["id"])["shortlist"]["candidates"][0]["provider_id"] == late["id"]
    register(matching, amqp_uri, {**late, "display_name": "Ana T.", "version": 3, "verified": False})
    assert database.providers.find_one({"_id": late["id"]})["verification"]  # a stale snapshot cannot undo it
    assert database.early_provider_facts.find_one({"_id": late["id"]}) == {"_id": late["id"], "registered": True}


def test_an_availability_change_that_overtakes_the_registration_is_kept_and_applied(matching, database, amqp_uri,
                                                                                   caplog):
    ana = b.profile(n=98)  # version 2
    deliver(matching, amqp_uri, "on_provider_availability_changed", "providers", "provider.availability_changed.v1",
            {"provider_id": ana["id"], "availability": {"status": "unavailable", "available_from": None},
             "capacity_hours_per_week": 40, "delivery_centres": [], "version": 3}, ana["id"])
    assert handler_troubles(caplog) == []
    register(matching, amqp_uri, ana)
    assert database.providers.find_one({"_id": ana["id"]})["availability"]["status"] == "unavailable"


def test_an_availability_change_that_overtakes_an_older_profile_update_still_stands(matching, rpc, database,
                                                                                     amqp_uri):
    ana = b.profile(n=91)  # version 2
    for provider in (ana, b.profile(n=92), b.profile(n=93)):
        register(matching, amqp_uri, provider)
    publish_posting(matching, amqp_uri)
    # The provider edits its skills (version 3), then goes unavailable (version 4); the two events travel on
    # different queues and the availability change arrives first.
    deliver(matching, amqp_uri, "on_provider_availability_changed", "providers", "provider.availability_changed.v1",
            {"provider_id": ana["id"], "availability": {"status": "unavailable", "available_from": None},
             "capacity_hours_per_week": 40, "delivery_centres": [], "version": 4}, ana["id"])
    edited = {**ana, "skills": STRONG_SKILLS, "version": 3}
    deliver(matching, amqp_uri, "on_provider_updated", "providers", "provider.updated.v1",
            {"provider": profile_event(edited), "changed": ["skills"]}, ana["id"])
    stored = database.providers.find_one({"_id": ana["id"]})
    assert (stored["version"], stored["skills"], stored["availability"]["status"]) == (3, STRONG_SKILLS,
                                                                                       "unavailable")
    why = rpc.explain(b.TENANT, POSTING["id"], ana["id"])
    assert why["status"] == "excluded"
    # A stale availability change (older than the profile) changes nothing.
    deliver(matching, amqp_uri, "on_provider_availability_changed", "providers", "provider.availability_changed.v1",
            {"provider_id": ana["id"], "availability": {"status": "available", "available_from": None},
             "capacity_hours_per_week": 40, "delivery_centres": [], "version": 2}, ana["id"])
    assert database.providers.find_one({"_id": ana["id"]})["availability"]["status"] == "unavailable"


def test_a_posting_edited_before_its_publication_arrived_still_gets_its_shortlist(matching, database, amqp_uri):
    for n in (95, 96, 97):
        register(matching, amqp_uri, b.profile(n=n))
    deliver(matching, amqp_uri, "on_tenant_registered", "postings", "tenant.registered.v1", {"tenant": TENANT},
            TENANT["id"], tenant=TENANT["id"])
    edited = b.posting(title="Inbox and calendar help", version=POSTING["version"] + 1)
    deliver(matching, amqp_uri, "on_posting_updated", "postings", "posting.updated.v1",
            {"posting": edited, "changed": ["title"]}, POSTING["id"], tenant=b.TENANT)
    (proposed,) = emitted(database, "matches.proposed.v1")
    assert len(proposed["data"]["shortlist"]["candidates"]) == 3
    publish_posting(matching, amqp_uri)  # the publication, older than the edit, arrives last: nothing more
    assert len(emitted(database, "matches.proposed.v1")) == 1
    assert stored_posting(database)["title"] == "Inbox and calendar help"


def test_a_score_that_moves_without_reordering_is_stored_but_not_announced(matching, rpc, database, amqp_uri):
    strong = [b.profile(n=n, skills=STRONG_SKILLS) for n in (101, 102)]
    last = b.profile(n=103)
    for provider in (*strong, last):
        register(matching, amqp_uri, provider)
    publish_posting(matching, amqp_uri)
    before = {c["provider_id"]: c["score"] for c in stored_shortlist(database)["candidates"]}
    dearer = {**last, "rates": {**last["rates"], "hourly": {"amount": "14.00", "currency": "USD"}},
              "version": last["version"] + 1}
    deliver(matching, amqp_uri, "on_provider_updated", "providers", "provider.updated.v1",
            {"provider": profile_event(dearer), "changed": ["rates"]}, last["id"])
    stored = stored_shortlist(database)
    assert [c["provider_id"] for c in stored["candidates"]][-1] == last["id"]
    assert stored["candidates"][-1]["score"] < before[last["id"]]  # the cut a newcomer must beat moved
    assert stored["candidates"][-1]["score"] == rpc.explain(b.TENANT, POSTING["id"], last["id"])["rows"][0]["score"]
    assert emitted(database, "shortlist.updated.v1") == []
