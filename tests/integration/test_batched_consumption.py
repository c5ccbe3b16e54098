"""Batched consumption (shared.runtime.batches) against the real broker and database: many deliveries in one
transaction, each applied once, a poison message retried alone and parked, acknowledgement only after commit."""

import json

import pytest
from kombu import Connection
from prometheus_client import REGISTRY

from shared.runtime import topology
from shared.runtime.inbox import claim_id
from shared.runtime.messaging import queue_name
from shared.runtime.outbox import outbox_events, segments
from tests.support.kit import BATCH_CATALOG, FAILURES, BatchConsumer, dead_letters, publish_raw, thing
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

QUEUE = queue_name("kitproducer", "thing.made.v1", "batchconsumer", "on_things_made", "smb")


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, {"service": "batchconsumer", "handler": "on_things_made", **labels}) or 0.0


@pytest.fixture
def batch_config(amqp_uri, service_config):
    """The batched consumer's topology, its queue empty (the broker's vhost is the session's), quick retries."""
    topology.apply(amqp_uri, BATCH_CATALOG, environ={"TASKLINKR_RETRY_DELAYS": "0.2,0.4"})
    with Connection(amqp_uri) as connection:
        connection.channel().queue_purge(QUEUE)
    dead_letters(amqp_uri, "batchconsumer")
    return dict(service_config, RETRY_DELAYS_SECONDS="0.2,0.4")


def publish(amqp_uri, envelopes):
    for envelope in envelopes:
        publish_raw(amqp_uri, json.dumps(envelope))


def test_a_batch_of_good_and_poison_messages_applies_the_good_once_and_parks_the_poison_alone(
    container_factory, batch_config, amqp_uri, mongo_client
):
    good = [thing(f"good-{n}") for n in range(12)]
    poison = thing("poison-1", poison=True)
    publish(amqp_uri, good[:6] + [poison] + good[6:])  # queued before the consumer starts: one burst
    split_before = metric("tasklinkr_batches_split_total", lane="smb")
    container_factory(BatchConsumer, batch_config).start()

    db = mongo_client[batch_config["MONGO_DATABASE"]]
    assert wait_for(lambda: db.seen.count_documents({}) == 12, timeout=20)
    parked = []
    assert wait_for(lambda: parked.extend(dead_letters(amqp_uri, "batchconsumer")) or parked, timeout=20)

    assert {doc["_id"]: doc["times"] for doc in db.seen.find()} == {f"good-{n}": 1 for n in range(12)}
    assert len(parked) == 1
    body, headers = parked[0]
    assert json.loads(body)["id"] == poison["id"]
    assert headers["x-tasklinkr-attempts"] == 3  # its own attempts: the first alone, then the two delays
    assert "poison-1 is poison" in headers["x-tasklinkr-error"]
    assert headers["x-tasklinkr-original-queue"] == QUEUE
    # The batch that held the poison failed once and was split; its neighbours were applied alone, at once.
    assert metric("tasklinkr_batches_split_total", lane="smb") - split_before >= 1
    assert db.seen.find_one({"_id": "poison-1"}) is None
    assert sorted(claim for record in db.applied_events.find() for claim in record["claims"]) == sorted(
        claim_id("batchconsumer.on_things_made", envelope["id"]) for envelope in good)
    assert db.batches.count_documents({"things": "poison-1"}) == 0


def test_a_message_failing_once_in_a_batch_is_applied_once_with_its_neighbours(
    container_factory, batch_config, amqp_uri, mongo_client
):
    FAILURES.pop("wobbly", None)
    publish(amqp_uri, [thing("steady-1"), thing("wobbly", fail_times=2), thing("steady-2")])
    container_factory(BatchConsumer, batch_config).start()

    db = mongo_client[batch_config["MONGO_DATABASE"]]
    assert wait_for(lambda: db.seen.count_documents({}) == 3, timeout=20)
    # It failed in its batch and once alone (one attempt spent), then applied from the delay queue.
    assert FAILURES["wobbly"] == 2
    assert {doc["_id"]: doc["times"] for doc in db.seen.find()} == {"steady-1": 1, "wobbly": 1, "steady-2": 1}
    assert dead_letters(amqp_uri, "batchconsumer") == []


def test_duplicates_in_one_batch_are_applied_once_and_the_emitted_events_are_one_outbox_document(
    container_factory, batch_config, amqp_uri, mongo_client
):
    once, twice = thing("once"), thing("twice")
    publish(amqp_uri, [once, twice, twice, twice])
    duplicates_before = metric("tasklinkr_events_consumed_total", outcome="duplicate", lane="smb")
    container_factory(BatchConsumer, batch_config).start()

    db = mongo_client[batch_config["MONGO_DATABASE"]]
    assert wait_for(lambda: metric("tasklinkr_events_consumed_total", outcome="duplicate", lane="smb")
                    - duplicates_before == 2, timeout=20)
    assert {doc["_id"]: doc["times"] for doc in db.seen.find()} == {"once": 1, "twice": 1}
    assert [doc["things"] for doc in db.batches.find()] == [["once", "twice"]]  # one handler call, deduplicated
    documents = [doc for name in segments(db) for doc in db[name].find()]
    assert [doc["count"] for doc in documents] == [2]
    counted = {event["envelope"]["data"]["thing_id"]: event["envelope"] for event in outbox_events(db)}
    assert counted["once"]["causationid"] == once["id"] and counted["twice"]["causationid"] == twice["id"]


def test_a_batch_is_acknowledged_only_after_its_commit_and_a_redelivery_is_applied_once(
    container_factory, batch_config, amqp_uri, mongo_client
):
    things = [thing("early"), thing("marked", pause_after_commit=True), thing("late")]
    publish(amqp_uri, things)
    db = mongo_client[batch_config["MONGO_DATABASE"]]
    first = container_factory(BatchConsumer, batch_config)
    first.start()
    # Committed, and the worker now holds the deliveries unacknowledged.
    assert wait_for(lambda: db.paused.count_documents({}) == 1, timeout=20)
    assert db.seen.count_documents({}) == 3
    with Connection(batch_config["AMQP_URI"]) as connection:
        _, ready, _ = connection.channel().queue_declare(QUEUE, passive=True)
    assert ready == 0  # delivered, not acknowledged (not requeued either)

    duplicates_before = metric("tasklinkr_events_consumed_total", outcome="duplicate", lane="smb")
    retried_before = metric("tasklinkr_batches_retried_total")
    first.kill()  # the process dies between the commit and the acknowledgement
    container_factory(BatchConsumer, batch_config).start()

    assert wait_for(lambda: metric("tasklinkr_events_consumed_total", outcome="duplicate", lane="smb")
                    - duplicates_before == 3, timeout=20)
    # A redelivered batch's first try claimed them as new and the inbox refused it; the second read them (the
    # broker may hand the three back in more than one batch).
    assert metric("tasklinkr_batches_retried_total") - retried_before >= 1
    assert {doc["_id"]: doc["times"] for doc in db.seen.find()} == {"early": 1, "marked": 1, "late": 1}
    assert db.batches.count_documents({}) == 1
    with Connection(batch_config["AMQP_URI"]) as connection:
        assert wait_for(lambda: connection.channel().queue_declare(QUEUE, passive=True)[1:] == (0, 1))


def test_a_batch_holding_an_event_applied_before_is_tried_again_reading_the_inbox_not_split(
    container_factory, batch_config, amqp_uri, mongo_client
):
    first = thing("first")
    publish(amqp_uri, [first])
    db = mongo_client[batch_config["MONGO_DATABASE"]]
    consumer = container_factory(BatchConsumer, batch_config)
    consumer.start()
    assert wait_for(lambda: db.seen.count_documents({}) == 1, timeout=20)
    consumer.stop()

    # Queued while no consumer runs: one burst, the event applied before in the middle of new ones.
    publish(amqp_uri, [thing("second"), first, thing("third")])
    retried_before = metric("tasklinkr_batches_retried_total")
    split_before = metric("tasklinkr_batches_split_total", lane="smb")
    duplicates_before = metric("tasklinkr_events_consumed_total", outcome="duplicate", lane="smb")
    container_factory(BatchConsumer, batch_config).start()

    assert wait_for(lambda: db.seen.count_documents({}) == 3, timeout=20)
    assert wait_for(lambda: metric("tasklinkr_events_consumed_total", outcome="duplicate", lane="smb")
                    - duplicates_before == 1, timeout=20)
    assert {doc["_id"]: doc["times"] for doc in db.seen.find()} == {"first": 1, "second": 1, "third": 1}
    # Its first try (every event taken as new) met the inbox's record; its second, reading it, applied the two new
    # ones in one handler call: retried once, never split into singles.
    assert metric("tasklinkr_batches_retried_total") - retried_before == 1
    assert metric("tasklinkr_batches_split_total", lane="smb") == split_before
    assert [doc["things"] for doc in db.batches.find()][-1] == ["second", "third"]
    assert dead_letters(amqp_uri, "batchconsumer") == []
