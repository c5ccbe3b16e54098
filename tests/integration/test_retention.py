"""Retention of the outbox and the inbox: the database prunes them by TTL index, and only what is past retention."""

from datetime import timedelta

import pytest
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from shared.runtime import topology
from shared.runtime.envelope import build
from shared.runtime.inbox import claim_id
from shared.runtime.persistence import ensure_platform_indexes
from shared.vocabulary.times import utc_now
from tests.support.kit import CATALOG, KitConsumer, KitProducer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

# The TTL monitor of MongoDB and of the embedded server passes once a minute.
TTL_PASS_SECONDS = 75


def deliver(amqp_uri: str, envelope: dict) -> None:
    with Connection(amqp_uri) as conn:
        Producer(conn.channel()).publish(
            envelope, exchange=Exchange("kitproducer.events", type="topic", durable=True),
            routing_key="thing.made.v1", serializer="json", mandatory=True,
        )


def thing_made(thing_id: str) -> dict:
    return build(service="kitproducer", routing_key="thing.made.v1", subject=thing_id, data={"thing_id": thing_id},
                 lane="smb")


def test_the_database_prunes_what_is_past_retention_and_a_redelivery_inside_it_is_still_recognised(
    container_factory, service_config, amqp_uri, mongo_client
):
    """One test for both collections: each waits for the TTL monitor's next pass (up to a minute)."""
    topology.apply(amqp_uri, CATALOG)
    consumer_config = dict(service_config, MONGO_DATABASE=service_config["MONGO_DATABASE"] + "_c",
                           INBOX_RETENTION_SECONDS=3600)
    producer_config = dict(service_config, MONGO_DATABASE=service_config["MONGO_DATABASE"] + "_p",
                           OUTBOX_RETENTION_SECONDS=1)
    consumer = container_factory(KitConsumer, consumer_config)
    producer = container_factory(KitProducer, producer_config)
    consumer.start()
    producer.start()
    inbox = mongo_client[consumer_config["MONGO_DATABASE"]].applied_events
    outbox = mongo_client[producer_config["MONGO_DATABASE"]].outbox

    recent = thing_made("recent")
    with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        deliver(amqp_uri, recent)
    # An id applied two hours ago, past the consumer's one-hour retention.
    consumer_name = "kitconsumer.on_thing_made"
    inbox.insert_one({"_id": claim_id(consumer_name, "old-event"), "consumer": consumer_name, "event_id": "old-event",
                      "applied_at": utc_now() - timedelta(hours=2)})
    with ServiceRpcProxy("kitproducer", {"AMQP_URI": amqp_uri}) as proxy, \
            entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        proxy.make("published-one")
    assert wait_for(lambda: outbox.count_documents({"status": "published"}) == 1)
    # A pending event the relay has not reached (written by hand once the relay is stopped), long past retention.
    producer.stop()
    outbox.insert_one({"event_id": "still-pending", "status": "pending", "created_at": utc_now() - timedelta(days=9)})

    assert wait_for(lambda: inbox.count_documents({"event_id": "old-event"}) == 0
                    and outbox.count_documents({"status": "published"}) == 0, timeout=TTL_PASS_SECONDS, interval=1)
    assert inbox.count_documents({"event_id": recent["id"]}) == 1
    assert outbox.count_documents({"event_id": "still-pending", "status": "pending"}) == 1

    with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        deliver(amqp_uri, recent)
    assert mongo_client[consumer_config["MONGO_DATABASE"]].seen.find_one({"_id": "recent"})["times"] == 1


def test_a_changed_retention_is_applied_to_the_existing_index(mongo_client, service_config):
    db = mongo_client[service_config["MONGO_DATABASE"]]
    ensure_platform_indexes(db)
    ensure_platform_indexes(db, outbox_retention_seconds=120, inbox_retention_seconds=600)
    assert db.outbox.index_information()["published_at_ttl"]["expireAfterSeconds"] == 120
    assert db.applied_events.index_information()["applied_at_ttl"]["expireAfterSeconds"] == 600
