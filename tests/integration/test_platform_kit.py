"""The platform kit against a real broker and database: outbox, relay, idempotent consumers."""

import json
import time

import pytest
from kombu import Connection, Exchange, Producer
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_waiter

from shared import topology
from shared.envelope import build
from shared.messaging import subscribe
from shared.persistence import Database

pytestmark = pytest.mark.integration


class KitProducer:
    name = "kitproducer"
    store = Database()

    @rpc
    def make(self, thing_id, fail=False):
        def work(uow):
            uow.db.things.insert_one({"_id": thing_id}, session=uow.session)
            uow.emit("thing.made.v1", subject=thing_id, data={"thing_id": thing_id}, lane="smb", tenant="t1")
            if fail:
                raise RuntimeError("boom after the writes")

        self.store.transact(work)


class KitConsumer:
    name = "kitconsumer"
    store = Database()

    @subscribe("kitproducer", "thing.made.v1", check_contract=False)
    def on_thing_made(self, uow, envelope):
        uow.db.seen.update_one(
            {"_id": envelope["data"]["thing_id"]}, {"$inc": {"times": 1}}, upsert=True, session=uow.session
        )


CATALOG = {
    "events": [
        {
            "type": "thing.made.v1",
            "producer": "kitproducer",
            "consumers": [{"service": "kitconsumer", "handler": "on_thing_made"}],
        }
    ]
}


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


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

    from nameko.standalone.rpc import ServiceRpcProxy

    with ServiceRpcProxy("kitproducer", {"AMQP_URI": amqp_uri}) as proxy:
        with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
            proxy.make("a")
        with pytest.raises(RemoteError):
            proxy.make("b", fail=True)

    seen = mongo_client[consumer_config["MONGO_DATABASE"]].seen
    produced = mongo_client[producer_config["MONGO_DATABASE"]]
    assert seen.find_one({"_id": "a"})["times"] == 1
    assert produced.things.find_one({"_id": "b"}) is None
    assert produced.outbox.count_documents({}) == 1
    assert wait_for(lambda: produced.outbox.count_documents({"status": "published"}) == 1)
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


FAILURES: dict[str, int] = {}


class FlakyConsumer:
    name = "flakyconsumer"
    store = Database()

    @subscribe("kitproducer", "thing.made.v1", check_contract=False)
    def on_thing_made(self, uow, envelope):
        thing_id = envelope["data"]["thing_id"]
        failures_wanted = envelope["data"].get("fail_times", 0)
        if FAILURES.get(thing_id, 0) < failures_wanted:
            FAILURES[thing_id] = FAILURES.get(thing_id, 0) + 1
            raise RuntimeError(f"{thing_id} fails on purpose")
        uow.db.seen.update_one({"_id": thing_id}, {"$inc": {"times": 1}}, upsert=True, session=uow.session)


FLAKY_CATALOG = {
    "events": [
        {
            "type": "thing.made.v1",
            "producer": "kitproducer",
            "consumers": [{"service": "flakyconsumer", "handler": "on_thing_made"}],
        }
    ]
}


def _publish_raw(amqp_uri, body, content_type="application/json"):
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        Producer(conn.channel()).publish(
            body, exchange=Exchange("kitproducer.events", type="topic", durable=True),
            routing_key="thing.made.v1", content_type=content_type, content_encoding="utf-8", mandatory=True,
        )


def _thing(thing_id, **data):
    return build(service="kitproducer", routing_key="thing.made.v1", subject=thing_id,
                 data={"thing_id": thing_id, **data}, lane="smb")


def _dead_letters(amqp_uri, service):
    from kombu import Queue

    parked = []
    with Connection(amqp_uri) as conn:
        queue = Queue(f"dlq.{service}", queue_arguments={"x-queue-type": "quorum"})(conn.channel())
        while (message := queue.get(no_ack=False)) is not None:
            parked.append((message.body, dict(message.headers)))
            message.ack()
    return parked


def test_a_failing_handler_is_retried_with_back_off_and_applied_once(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, FLAKY_CATALOG, environ={"TASKLINKR_RETRY_DELAYS": "0.2,0.4"})
    config = dict(service_config, RETRY_DELAYS_SECONDS="0.2,0.4")
    consumer = container_factory(FlakyConsumer, config)
    consumer.start()
    _publish_raw(amqp_uri, json.dumps(_thing("flaky", fail_times=2)))
    seen = mongo_client[config["MONGO_DATABASE"]].seen
    assert wait_for(lambda: seen.find_one({"_id": "flaky"}) is not None)
    time.sleep(0.5)
    assert seen.find_one({"_id": "flaky"})["times"] == 1
    assert FAILURES["flaky"] == 2
    assert _dead_letters(amqp_uri, "flakyconsumer") == []


def test_a_handler_that_always_fails_is_dead_lettered_with_its_error_and_others_keep_flowing(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, FLAKY_CATALOG, environ={"TASKLINKR_RETRY_DELAYS": "0.2,0.4"})
    config = dict(service_config, RETRY_DELAYS_SECONDS="0.2,0.4")
    consumer = container_factory(FlakyConsumer, config)
    consumer.start()
    _publish_raw(amqp_uri, json.dumps(_thing("doomed", fail_times=1000)))
    _publish_raw(amqp_uri, json.dumps(_thing("fine")))
    seen = mongo_client[config["MONGO_DATABASE"]].seen
    assert wait_for(lambda: seen.find_one({"_id": "fine"}) is not None)
    parked = []
    assert wait_for(lambda: parked.extend(_dead_letters(amqp_uri, "flakyconsumer")) or parked, timeout=10)
    body, headers = parked[0]
    assert json.loads(body)["data"]["thing_id"] == "doomed"
    assert headers["x-tasklinkr-attempts"] == 3
    assert "doomed fails on purpose" in headers["x-tasklinkr-error"]
    assert headers["x-tasklinkr-original-queue"] == "evt-kitproducer-thing.made.v1--flakyconsumer.on_thing_made"
    assert seen.find_one({"_id": "doomed"}) is None


def test_an_undecodable_message_is_parked_and_the_consumer_keeps_serving(
    container_factory, service_config, amqp_uri, mongo_client
):
    topology.apply(amqp_uri, FLAKY_CATALOG, environ={"TASKLINKR_RETRY_DELAYS": "0.2,0.4"})
    consumer = container_factory(FlakyConsumer, dict(service_config, RETRY_DELAYS_SECONDS="0.2,0.4"))
    consumer.start()
    _publish_raw(amqp_uri, b"{this is not json")
    _publish_raw(amqp_uri, json.dumps({"no": "envelope"}))
    with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        _publish_raw(amqp_uri, json.dumps(_thing("after-poison")))
    parked = []
    assert wait_for(lambda: len(parked.extend(_dead_letters(amqp_uri, "flakyconsumer")) or parked) >= 2)
    reasons = sorted(headers["x-tasklinkr-error"] for _, headers in parked)
    assert reasons[0] == "not an event envelope"
    assert reasons[1].startswith("undecodable message")
    assert mongo_client[service_config["MONGO_DATABASE"]].seen.find_one({"_id": "after-poison"})["times"] == 1
