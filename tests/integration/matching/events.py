"""Events into matching the way their producers' relays publish them (topic exchange, routing key, headers), each
checked against its contract first; what matching emits, read from its outbox and checked against its contract;
a stored shortlist as it reads; a container's in-memory index, and waiting for what follows an event."""

import time

from kombu import Connection, Exchange, Producer
from nameko.testing.services import entrypoint_waiter

from services.matching import shortlists
from services.matching.dependencies import LiveIndex, MatchingIndex
from services.matching.repository import posting_fields
from services.matching.service import MatchingService
from shared.runtime import contracts
from shared.runtime import envelope as envelopes
from shared.runtime.outbox import outbox_events
from tests.support.waiting import applied
from tests.unit.matching import builders as b
from tests.unit.matching.builders import POSTING

TENANT = {"id": b.TENANT, "name": "Hudson Dental", "country": "US", "time_zone": "America/New_York",
          "segment": "smb", "core_competencies": ["dental care"], "created_at": "2026-11-01T09:00:00.000Z"}
OTHER_TENANT = "ten_" + "b" * 32
STRONG_SKILLS = [{"name": "calendar management", "level": 5}, {"name": "email triage", "level": 5}]


def publish(amqp_uri, producer, routing_key, data, subject, lane="smb", tenant=None):
    event = envelopes.build(service=producer, routing_key=routing_key, subject=subject, data=data, lane=lane,
                            tenant=tenant)
    return publish_built(amqp_uri, producer, event)


def publish_built(amqp_uri, producer, *events):
    """``events`` (built envelopes, each checked against its contract), in order, as ``producer``'s relay publishes
    them; the last one."""
    for event in events:
        assert contracts.errors(event) == [], event["type"]
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        exchange = Exchange(f"{producer}.events", type="topic", durable=True)
        producer_channel = Producer(connection.channel())
        for event in events:
            producer_channel.publish(
                event, exchange=exchange, routing_key=envelopes.routing_key_of(event), serializer="json",
                mandatory=True, headers=envelopes.amqp_headers(event), declare=[exchange], delivery_mode=2,
            )
    return events[-1]


def profile_event(profile):
    return {k: v for k, v in profile.items() if k != "track_record"}


def deliver(container, amqp_uri, handler, producer, routing_key, data, subject, **kwargs):
    with entrypoint_waiter(container, handler, timeout=20):
        event = publish(amqp_uri, producer, routing_key, data, subject, **kwargs)
    assert applied(container, event["id"]), f"{routing_key} {event['id']} was not applied"
    return event


def register(container, amqp_uri, profile):
    deliver(container, amqp_uri, "on_provider_registered", "providers", "provider.registered.v1",
            {"provider": profile_event(profile)}, profile["id"])


def publish_posting(container, amqp_uri, posting=POSTING):
    deliver(container, amqp_uri, "on_tenant_registered", "postings", "tenant.registered.v1", {"tenant": TENANT},
            TENANT["id"], tenant=TENANT["id"])
    deliver(container, amqp_uri, "on_posting_published", "postings", "posting.published.v1", {"posting": posting},
            posting["id"], tenant=posting["tenant_id"])


def emitted(database, routing_key, subject=POSTING["id"]):
    events = [d["envelope"] for d in outbox_events(database, {"routing_key": routing_key})
              if d["envelope"]["subject"] == subject]
    for event in events:
        assert contracts.errors(event) == [], event["type"]
    return events


def stored_shortlist(database, posting_id: str = POSTING["id"]) -> dict | None:
    """The posting's shortlist in matching's database, as matching reads it (``shortlists.readable``: the stored form
    keeps its candidates as text)."""
    return shortlists.readable(database.postings.find_one({"_id": posting_id})["shortlist"])


def stored_posting(database, posting_id: str = POSTING["id"]) -> dict | None:
    """The posting in matching's database, its fields as matching reads them (``repository.posting_fields``: the
    stored form keeps the snapshot's own fields as text)."""
    return posting_fields(database.postings.find_one({"_id": posting_id}))


def live(container) -> LiveIndex:
    """The container's ranking index and view of the open postings."""
    return next(d for d in container.extensions if isinstance(d, MatchingIndex)).live


def eventually(check, timeout: float = 20.0):
    """``check()`` once it is truthy, or its last answer after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def competing_pair(container_factory, config, amqp_uri, numbers):
    """Two matching processes on the same queues and database (competing consumers), the providers ``numbers``
    registered through the first before the second starts."""
    first = container_factory(MatchingService, config)
    first.start()
    for n in numbers:
        register(first, amqp_uri, b.profile(n=n))
    second = container_factory(MatchingService, config)
    second.start()
    return first, second
