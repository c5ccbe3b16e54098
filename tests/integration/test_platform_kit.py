"""The platform kit against a real broker and database: outbox, relay, idempotent consumers."""

import time

import pytest
from kombu import Connection, Exchange, Producer, Queue
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

    @subscribe("kitproducer", "thing.made.v1")
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
        queue = Queue("evt-kitproducer-thing.made.v1--kitconsumer.on_thing_made")
        assert queue(conn.channel()).queue_declare(passive=True).message_count >= 1
    consumer = container_factory(KitConsumer, service_config)
    with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        consumer.start()
    assert mongo_client[service_config["MONGO_DATABASE"]].seen.find_one({"_id": "early"})["times"] == 1
