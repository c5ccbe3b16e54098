"""Matching's posting.published in batches (shared.runtime.batches), over the real broker and database."""

import pytest
from prometheus_client import REGISTRY

from services.matching import shortlists
from services.matching.service import MatchingService
from shared.runtime import envelope as envelopes
from shared.runtime.outbox import segments
from tests.integration.matching.events import (
    STRONG_SKILLS,
    TENANT,
    deliver,
    emitted,
    publish,
    publish_built,
    register,
    stored_posting,
)
from tests.support.waiting import applied
from tests.unit.matching import builders as b

pytestmark = pytest.mark.integration


def posting_id(n: int) -> str:
    return f"pst_{n:032x}"


def retried() -> float:
    """Batches of publications whose first try (every posting taken as new) met one stored already."""
    return REGISTRY.get_sample_value("tasklinkr_batches_retried_total",
                                     {"service": "matching", "handler": "on_posting_published"}) or 0.0


def test_a_burst_of_publications_is_ranked_in_batches_each_posting_once_with_its_own_cause(
        container_factory, config, quiet_queues, database, amqp_uri):
    # A batch waits up to 300 ms to fill here, so the burst below is handled in a few transactions.
    matching = container_factory(MatchingService, {**config, "BATCH_MAX_WAIT_MS": 300})
    matching.start()
    for n in (31, 32, 33):
        register(matching, amqp_uri, b.profile(n=n, skills=STRONG_SKILLS))
    deliver(matching, amqp_uri, "on_tenant_registered", "postings", "tenant.registered.v1", {"tenant": TENANT},
            TENANT["id"], tenant=TENANT["id"])
    # posting 3 was cancelled before its publication arrived: stored, never ranked
    deliver(matching, amqp_uri, "on_posting_cancelled", "postings", "posting.cancelled.v1",
            {"posting_id": posting_id(3), "cancelled_at": "2026-12-01T10:00:00.000Z", "reason": "no longer needed"},
            posting_id(3), tenant=b.TENANT)

    publications = [b.posting(id=posting_id(n)) for n in range(1, 11)]
    # posting 1 also comes in a newer version within the burst: one proposal, then its snapshot replaced
    publications.insert(5, b.posting(id=posting_id(1), version=3, title="Inbox, calendar and phones"))
    retried_before = retried()
    events = [publish(amqp_uri, "postings", "posting.published.v1", {"posting": posting}, posting["id"],
                      tenant=b.TENANT) for posting in publications]
    assert all(applied(matching, event["id"]) for event in events)
    # The batch holding posting 3, stored by its cancellation, was tried again reading the postings' states.
    assert retried() - retried_before >= 1

    for n in range(1, 11):
        stored = database.postings.find_one({"_id": posting_id(n)})
        if n == 3:
            assert stored["status"] == "cancelled" and not stored.get("shortlist")
            assert emitted(database, "matches.proposed.v1", posting_id(n)) == []
            continue
        (proposed,) = emitted(database, "matches.proposed.v1", posting_id(n))
        assert proposed["causationid"] == next(e["id"] for e in events if e["subject"] == posting_id(n))
        assert proposed["data"]["shortlist"]["candidates"] == shortlists.readable(stored["shortlist"])["candidates"]
        assert [c["provider_id"] for c in shortlists.readable(stored["shortlist"])["candidates"]] == [
            b.provider_id(n) for n in (31, 32, 33)]
    assert database.postings.find_one({"_id": posting_id(1)})["version"] == 3
    assert stored_posting(database, posting_id(1))["title"] == "Inbox, calendar and phones"
    # The nine proposals came out of fewer transactions than postings: batches, each one outbox document.
    documents = [doc for name in segments(database) for doc in database[name].find()
                 if any(event["routing_key"] == "matches.proposed.v1" for event in doc["events"])]
    assert sum(doc["count"] for doc in documents) == 9
    assert len(documents) < 9


def test_a_burst_of_new_postings_is_ranked_without_reading_their_states_first(
        container_factory, config, quiet_queues, database, amqp_uri):
    matching = container_factory(MatchingService, {**config, "BATCH_MAX_WAIT_MS": 300})
    matching.start()
    for n in (34, 35):
        register(matching, amqp_uri, b.profile(n=n, skills=STRONG_SKILLS))
    retried_before = retried()
    events = [publish(amqp_uri, "postings", "posting.published.v1", {"posting": b.posting(id=posting_id(n))},
                      posting_id(n), tenant=b.TENANT) for n in range(50, 62)]
    assert all(applied(matching, event["id"]) for event in events)
    for n in range(50, 62):
        (proposed,) = emitted(database, "matches.proposed.v1", posting_id(n))
        assert [c["provider_id"] for c in proposed["data"]["shortlist"]["candidates"]] == [
            b.provider_id(provider) for provider in (34, 35)]
        assert stored_posting(database, posting_id(n))["status"] == "open"
    assert retried() == retried_before  # every batch's first try held: nothing was stored before


def test_batches_handled_two_at_a_time_still_propose_each_posting_once_at_its_newest_version(
        container_factory, config, quiet_queues, database, amqp_uri):
    # Batches of 3: the burst below is many batches, two handled at once, with copies of one event and two
    # versions of one posting landing in different batches.
    matching = container_factory(MatchingService, {**config, "BATCH_MAX_SIZE": 3, "BATCH_MAX_WAIT_MS": 1})
    matching.start()
    for n in (41, 42, 43):
        register(matching, amqp_uri, b.profile(n=n, skills=STRONG_SKILLS))
    firsts = [envelopes.build(service="postings", routing_key="posting.published.v1", subject=posting_id(n),
                              data={"posting": b.posting(id=posting_id(n))}, lane="smb", tenant=b.TENANT)
              for n in range(20, 44)]
    newer = {n: envelopes.build(service="postings", routing_key="posting.published.v1", subject=posting_id(n),
                                data={"posting": b.posting(id=posting_id(n), version=5, title=f"Second take {n}")},
                                lane="smb", tenant=b.TENANT) for n in range(20, 44, 4)}
    burst: list[dict] = []
    for n, event in zip(range(20, 44), firsts, strict=True):
        if n + 2 in newer and (n + 2) % 8 == 0:
            burst.append(newer[n + 2])  # a newer version two postings ahead of its first, which then changes nothing
        burst.append(event)
        if n % 3 == 0:
            burst.append(event)  # delivered twice
        if n - 2 in newer and (n - 2) % 8 != 0:
            burst.append(newer[n - 2])  # a newer version two postings behind its first
    publish_built(amqp_uri, "postings", *burst)
    assert all(applied(matching, event["id"]) for event in burst)

    for n in range(20, 44):
        stored = stored_posting(database, posting_id(n))
        expected = (5, f"Second take {n}") if n in newer else (2, b.posting()["title"])
        assert (stored["version"], stored["title"]) == expected
        (proposed,) = emitted(database, "matches.proposed.v1", posting_id(n))
        assert [c["provider_id"] for c in proposed["data"]["shortlist"]["candidates"]] == [
            b.provider_id(provider) for provider in (41, 42, 43)]
    assert database.postings.count_documents({"_id": {"$in": [posting_id(n) for n in range(20, 44)]}}) == 24
