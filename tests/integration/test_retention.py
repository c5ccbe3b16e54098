"""Retention of the inbox: the database prunes it by TTL index, and only what is past retention. (The outbox's
segments are dropped by the relay: tests/integration/test_outbox_relay.py.)"""

from datetime import timedelta

import pytest
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from shared.runtime import topology
from shared.runtime.envelope import build
from shared.runtime.inbox import applied_claims, claim_id, claim_record
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
    """Waits for the TTL monitor's next pass (up to a minute)."""
    topology.apply(amqp_uri, CATALOG)
    consumer_config = dict(service_config, MONGO_DATABASE=service_config["MONGO_DATABASE"] + "_c",
                           INBOX_RETENTION_SECONDS=3600)
    producer_config = dict(service_config, MONGO_DATABASE=service_config["MONGO_DATABASE"] + "_p")
    consumer = container_factory(KitConsumer, consumer_config)
    producer = container_factory(KitProducer, producer_config)
    consumer.start()
    producer.start()
    inbox = mongo_client[consumer_config["MONGO_DATABASE"]].applied_events

    recent = thing_made("recent")
    with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        deliver(amqp_uri, recent)
    # An id applied two hours ago, past the consumer's one-hour retention.
    consumer_name = "kitconsumer.on_thing_made"
    inbox.insert_one(claim_record(consumer_name, ["old-event"], utc_now() - timedelta(hours=2)))
    with ServiceRpcProxy("kitproducer", {"AMQP_URI": amqp_uri}) as proxy, \
            entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        proxy.make("published-one")
    producer.stop()

    assert wait_for(lambda: not applied_claims(inbox, [claim_id(consumer_name, "old-event")]),
                    timeout=TTL_PASS_SECONDS, interval=1)
    assert applied_claims(inbox, [claim_id(consumer_name, recent["id"])])

    with entrypoint_waiter(consumer, "on_thing_made", timeout=10):
        deliver(amqp_uri, recent)
    assert mongo_client[consumer_config["MONGO_DATABASE"]].seen.find_one({"_id": "recent"})["times"] == 1


def test_a_changed_retention_is_applied_to_the_existing_index(mongo_client, service_config):
    db = mongo_client[service_config["MONGO_DATABASE"]]
    ensure_platform_indexes(db)
    ensure_platform_indexes(db, inbox_retention_seconds=600)
    assert db.applied_events.index_information()["applied_at_ttl"]["expireAfterSeconds"] == 600
