"""A service of a test's own for the outbox relay: its database, its outbox, and queues bound to its events."""

from __future__ import annotations

import contextlib

import eventlet
from kombu import Connection, Exchange, Queue

from shared.runtime.envelope import amqp_headers, build, event_exchange
from shared.runtime.outbox import OutboxRelay, outbox_documents, outbox_event, segment_name
from shared.runtime.persistence import ensure_platform_indexes
from shared.vocabulary.times import utc_now
from tests.support.infra import unique_name

EVENT = "relaytest.ticked.v1"


class RelayRig:
    def __init__(self, service: str, db, client, amqp_uri: str):
        self.service, self.db, self.client, self.amqp_uri = service, db, client, amqp_uri
        self.exchange = Exchange(event_exchange(service), type="topic", durable=True)
        self.queue = self.bind("sink", EVENT)
        self.committed: list[str] = []

    def bind(self, name: str, routing_key: str, **arguments) -> Queue:
        """A queue of the service's events under ``routing_key`` (deleted at the end of the test)."""
        queue = Queue(f"{self.service}-{name}", exchange=self.exchange, routing_key=routing_key, durable=True,
                      queue_arguments=arguments or None)
        with Connection(self.amqp_uri) as connection:
            queue(connection.channel()).declare()
        self._queues = [*getattr(self, "_queues", []), queue]
        return queue

    def event(self, seq: int, subject: str | None = None, lane: str = "smb", routing_key: str = EVENT, *,
              tenant: str | None = None, nested: bool = False) -> dict:
        """An outbox event as ``uow.emit_many`` keeps it (``outbox_event``), or, ``nested``, in the form written
        before (the envelope as a document)."""
        envelope = build(service=self.service, routing_key=routing_key, subject=subject or f"tick-{seq}",
                         data={"seq": seq}, lane=lane, tenant=tenant)
        if not nested:
            return outbox_event(envelope, routing_key)
        return {"event_id": envelope["id"], "routing_key": routing_key, "envelope": envelope,
                "headers": amqp_headers(envelope)}

    def commit(self, events: list[dict], session=None, segment: str | None = None) -> None:
        """One transaction's events, as ``uow.emit_many`` writes them (one document per lane)."""
        self.db[segment or segment_name()].insert_many(outbox_documents(events, utc_now()), session=session)
        self.committed += [e["event_id"] for e in events]

    def commit_each(self, seqs, subject=None, lane: str = "smb", routing_key: str = EVENT) -> list[str]:
        ids = []
        for seq in seqs:
            event = self.event(seq, subject(seq) if subject else None, lane, routing_key)
            self.commit([event])
            ids.append(event["event_id"])
        return ids

    def relay(self, lane: str = "smb", **options) -> OutboxRelay:
        relay = OutboxRelay(db=self.db, amqp_uri=self.amqp_uri, service=self.service, lane=lane, **options)
        relay.subscribed_types = frozenset({EVENT})  # a returned event is a failure here
        assert relay.acquire_lease()
        return relay

    def publish_once(self, lane: str = "smb", **options) -> int:
        """A relay of ``lane`` taking its lease, publishing what it can, and stopping: how many it published."""
        relay = self.relay(lane, **options)
        try:
            return relay.publish_pending()
        finally:
            relay.stop()

    def delivered(self, queue: Queue | None = None) -> list[str]:
        """Message ids in the queue, in the order the broker holds them."""
        ids = []
        with Connection(self.amqp_uri) as connection:
            bound = (queue or self.queue)(connection.channel())
            while (message := bound.get(no_ack=True)) is not None:
                ids.append(message.properties["message_id"])
        return ids

    def close(self) -> None:
        with Connection(self.amqp_uri) as connection:
            for queue in self._queues:
                with contextlib.suppress(Exception):
                    queue(connection.channel()).delete()
        self.client.drop_database(self.service)


@contextlib.contextmanager
def relay_rig(amqp_uri: str, mongo_client):
    service = unique_name("relay").replace("_", "")[:40]
    db = mongo_client[service]
    ensure_platform_indexes(db)
    rig = RelayRig(service, db, mongo_client, amqp_uri)
    try:
        yield rig
    finally:
        rig.close()


def publish_until_the_second_store(relay: OutboxRelay) -> None:
    """``relay.publish_pending()``, killed (RuntimeError) after the broker confirmed its second batch and before
    it stored the position after it."""
    store, stored = relay._store_position, []

    def die_before_the_second_store(*args, **kwargs):
        if stored:
            raise RuntimeError("killed between the broker's confirm and the store (injected)")
        stored.append(args)
        return store(*args, **kwargs)

    relay._store_position = die_before_the_second_store
    relay.publish_pending()


@contextlib.contextmanager
def running(*relays: OutboxRelay):
    """The relays running as a process runs them: each in a greenthread of its own, stopped at the end."""
    threads = [eventlet.spawn(relay.run) for relay in relays]
    try:
        yield
    finally:
        for relay in relays:
            relay.stop()
        for thread in threads:
            thread.wait()
