"""The platform kit against a real broker and database: outbox, relay, idempotent consumers, retries, DLQ."""

import json
import time

import pytest
from kombu import Connection, Exchange, Producer
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from shared.runtime import topology
from shared.runtime.envelope import build
from shared.runtime.outbox import outbox_events, pending_count
from tests.support.kit import (
    CATALOG,
    FAILURES,
    FLAKY_CATALOG,
    FlakyConsumer,
    KitConsumer,
    KitProducer,
    dead_letters,
    publish_raw,
    thing,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def empty_dead_letter_queue(amqp_uri):
    """The session's broker is shared: a message another test parked for the kit's consumer is not this test's."""
    dead_letters(amqp_uri, "flakyconsumer")


def test_a_committed_change_publishes_its_event_and_a_rolled_back_one_publishes_nothing(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, CATALOG)
    producer_config = dict(service_config, MONGO_DATABASE=service_config["MONGO_DATABASE"] + "_p")
    consumer_config = dict(service_config, MONGO_DATABASE=service_config["MONGO_DATABASE"] + "_c")
    producer = container_factory(KitProducer, producer_config)
    consumer = container_factory(KitConsumer, consumer_config)
    producer.start()
    consumer.start()

    with ServiceRpcProxy("kitproducer", {"AMQP_URI": amqp_uri}) as proxy:
        with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
            proxy.make("a")
        with pytest.raises(RemoteError):
            proxy.make("b", fail=True)

    seen = mongo_client[consumer_config["MONGO_DATABASE"]].seen
    produced = mongo_client[producer_config["MONGO_DATABASE"]]
    assert seen.find_one({"_id": "a"})["times"] == 1
    assert produced.things.find_one({"_id": "b"}) is None
    assert len(outbox_events(produced)) == 1
    assert wait_for(lambda: pending_count(produced) == 0)
    time.sleep(0.5)
    assert seen.find_one({"_id": "b"}) is None


def test_an_event_delivered_twice_is_applied_once(container_factory, service_config, amqp_uri, mongo_client):
    topology.apply(amqp_uri, CATALOG)
    consumer = container_factory(KitConsumer, service_config)
    consumer.start()
    envelope = build(service="kitproducer", routing_key="thing.made.v1", subject="x", data={"thing_id": "x"},
                     lane="smb")
    with Connection(amqp_uri) as conn:
        producer = Producer(conn.channel())
        exchange = Exchange("kitproducer.events", type="topic", durable=True)
        for _ in range(2):
            with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
                producer.publish(envelope, exchange=exchange, routing_key="thing.made.v1", serializer="json")
    seen = mongo_client[service_config["MONGO_DATABASE"]].seen
    assert seen.find_one({"_id": "x"})["times"] == 1


def test_an_event_published_before_its_consumer_started_still_arrives(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, CATALOG)
    envelope = build(service="kitproducer", routing_key="thing.made.v1", subject="early",
                     data={"thing_id": "early"}, lane="smb")
    with Connection(amqp_uri) as conn:
        Producer(conn.channel()).publish(
            envelope, exchange=Exchange("kitproducer.events", type="topic", durable=True),
            routing_key="thing.made.v1", serializer="json", mandatory=True,
        )
    consumer = container_factory(KitConsumer, service_config)
    with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        consumer.start()
    assert mongo_client[service_config["MONGO_DATABASE"]].seen.find_one({"_id": "early"})["times"] == 1


def test_a_failing_handler_is_retried_with_back_off_and_applied_once(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, FLAKY_CATALOG, environ={"TASKLINKR_RETRY_DELAYS": "0.2,0.4"})
    config = dict(service_config, RETRY_DELAYS_SECONDS="0.2,0.4")
    consumer = container_factory(FlakyConsumer, config)
    consumer.start()
    publish_raw(amqp_uri, json.dumps(thing("flaky", fail_times=2)))
    seen = mongo_client[config["MONGO_DATABASE"]].seen
    assert wait_for(lambda: seen.find_one({"_id": "flaky"}) is not None)
    time.sleep(0.5)
    assert seen.find_one({"_id": "flaky"})["times"] == 1
    assert FAILURES["flaky"] == 2
    assert dead_letters(amqp_uri, "flakyconsumer") == []


def test_a_handler_that_always_fails_is_dead_lettered_with_its_error_and_others_keep_flowing(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, FLAKY_CATALOG, environ={"TASKLINKR_RETRY_DELAYS": "0.2,0.4"})
    config = dict(service_config, RETRY_DELAYS_SECONDS="0.2,0.4")
    consumer = container_factory(FlakyConsumer, config)
    consumer.start()
    publish_raw(amqp_uri, json.dumps(thing("doomed", fail_times=1000)))
    publish_raw(amqp_uri, json.dumps(thing("fine")))
    seen = mongo_client[config["MONGO_DATABASE"]].seen
    assert wait_for(lambda: seen.find_one({"_id": "fine"}) is not None)
    parked = []
    assert wait_for(lambda: parked.extend(dead_letters(amqp_uri, "flakyconsumer")) or parked, timeout=10)
    body, headers = parked[0]
    assert json.loads(body)["data"]["thing_id"] == "doomed"
    assert headers["x-tasklinkr-attempts"] == 3
    assert "doomed fails on purpose" in headers["x-tasklinkr-error"]
    assert headers["x-tasklinkr-original-queue"] == "evt-kitproducer-thing.made.v1--flakyconsumer.on_thing_made--smb"
    assert seen.find_one({"_id": "doomed"}) is None


def test_a_handler_refused_by_its_own_unique_index_is_retried_and_parked_not_taken_for_a_duplicate_event(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, FLAKY_CATALOG, environ={"TASKLINKR_RETRY_DELAYS": "0.2,0.4"})
    config = dict(service_config, RETRY_DELAYS_SECONDS="0.2,0.4")
    database = mongo_client[config["MONGO_DATABASE"]]
    database.serials.create_index("serial", unique=True)
    consumer = container_factory(FlakyConsumer, config)
    consumer.start()
    publish_raw(amqp_uri, json.dumps(thing("first", serial="S-1")))
    assert wait_for(lambda: database.seen.find_one({"_id": "first"}) is not None)
    publish_raw(amqp_uri, json.dumps(thing("second", serial="S-1")))  # a new event the handler cannot apply

    parked = []
    assert wait_for(lambda: parked.extend(dead_letters(amqp_uri, "flakyconsumer")) or parked, timeout=10)
    body, headers = parked[0]
    assert json.loads(body)["data"]["thing_id"] == "second"
    assert headers["x-tasklinkr-attempts"] == 3 and "duplicate key" in headers["x-tasklinkr-error"].lower()
    assert database.seen.find_one({"_id": "second"}) is None
    assert database.applied_events.count_documents({}) == 1  # only the first was recorded as applied


def test_an_undecodable_message_is_parked_and_the_consumer_keeps_serving(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, FLAKY_CATALOG, environ={"TASKLINKR_RETRY_DELAYS": "0.2,0.4"})
    consumer = container_factory(FlakyConsumer, dict(service_config, RETRY_DELAYS_SECONDS="0.2,0.4"))
    consumer.start()
    publish_raw(amqp_uri, b"{this is not json")
    publish_raw(amqp_uri, json.dumps({"no": "envelope"}))
    with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        publish_raw(amqp_uri, json.dumps(thing("after-poison")))
    parked = []
    assert wait_for(lambda: len(parked.extend(dead_letters(amqp_uri, "flakyconsumer")) or parked) >= 2)
    reasons = sorted(headers["x-tasklinkr-error"] for _, headers in parked)
    assert reasons[0] == "not an event envelope"
    assert reasons[1].startswith("undecodable message")
    assert mongo_client[service_config["MONGO_DATABASE"]].seen.find_one({"_id": "after-poison"})["times"] == 1


class LoneProducer(KitProducer):
    name = "loneproducer"  # an exchange no other test binds a queue to


@pytest.mark.parametrize("declared_consumers, expected_status", [(True, "pending"), (False, "published")])
def test_an_unroutable_event_waits_for_its_declared_consumers_queue_but_one_nobody_wants_is_done(
    container_factory, service_config, mongo_client, monkeypatch, declared_consumers, expected_status
):
    # No topology applied: nothing is bound to kitproducer.events, so the broker returns every event.
    monkeypatch.setattr("shared.runtime.outbox.subscribed_types",
                        lambda service: frozenset({"thing.made.v1"}) if declared_consumers else frozenset())
    producer = container_factory(LoneProducer, service_config)
    producer.start()
    with ServiceRpcProxy("loneproducer", {"AMQP_URI": service_config["AMQP_URI"]}) as proxy:
        proxy.make("lonely")
    database = mongo_client[service_config["MONGO_DATABASE"]]
    assert wait_for(lambda: len(outbox_events(database)) == 1)
    time.sleep(1.5)  # several relay passes
    assert pending_count(database) == (1 if expected_status == "pending" else 0)
