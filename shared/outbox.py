"""The outbox relay: publishes committed events to RabbitMQ, then marks them published.

Guarantees and why:
- Never lost: an event leaves ``pending`` only after the broker confirmed it (publisher confirms) *and* routed it
  (``mandatory``; a returned message stays pending and is retried). A crash anywhere before the mark means the
  event is published again after restart: delivery is at-least-once and consumers deduplicate by event id.
- Never published for an uncommitted change: the relay reads only committed outbox documents.
- In order: pending events go out oldest first, and a failed publish stops the batch, so a later event of the same
  aggregate never overtakes an earlier one.
- One relay at a time: replicas of a service compete for a lease in the service's database; only the holder
  publishes, so replicas do not publish the same event twice in the normal case.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta

import eventlet
from eventlet.queue import Empty, LightQueue
from kombu import Connection, Exchange, Producer
from pymongo.database import Database as MongoDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.envelope import utc_now

log = logging.getLogger(__name__)

LEASE_ID = "outbox"


class Unroutable(Exception):
    """The broker returned the event: no queue is bound for it. Apply the topology (`tasklinkr topology apply`)."""


class OutboxRelay:
    def __init__(self, *, db: MongoDatabase, amqp_uri: str, service: str, poll_seconds: float = 1.0,
                 batch_size: int = 200, lease_seconds: float = 10.0):
        self.db = db
        self.amqp_uri = amqp_uri
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.exchange = Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)
        self._wake: LightQueue = LightQueue(maxsize=1)
        self._running = True
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._returned: set[str] = set()
        self.published_total = 0

    # -- control ---------------------------------------------------------------------------------------------

    def notify(self) -> None:
        """Something was committed to the outbox: publish it now rather than at the next poll."""
        try:
            self._wake.put_nowait(True)
        except eventlet.queue.Full:
            pass

    def stop(self) -> None:
        self._running = False
        self.notify()
        self._disconnect()

    def run(self) -> None:
        backoff = 0.5
        while self._running:
            try:
                self._wake.get(timeout=self.poll_seconds)
            except Empty:
                pass
            if not self._running:
                break
            try:
                if self.acquire_lease():
                    self.publish_pending()
                backoff = 0.5
            except Exception as exc:  # keep relaying whatever failed; the events stay pending
                log.warning("outbox relay of %s failed, retrying in %.1fs: %s", self.service, backoff, exc)
                self._disconnect()
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    # -- leadership ------------------------------------------------------------------------------------------

    def acquire_lease(self) -> bool:
        now = utc_now()
        try:
            self.db["relay_lease"].update_one(
                {"_id": LEASE_ID, "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=self.lease_seconds)}},
                upsert=True,
            )
            return True
        except DuplicateKeyError:
            return False

    # -- publishing ------------------------------------------------------------------------------------------

    def publish_pending(self) -> int:
        """Publish pending events oldest first until none are left. Returns how many were published."""
        published = 0
        while self._running:
            batch = list(
                self.db["outbox"].find({"status": "pending"}).sort("_id", 1).limit(self.batch_size)
            )
            if not batch:
                break
            for doc in batch:
                self._publish(doc)
                self.db["outbox"].update_one(
                    {"_id": doc["_id"], "status": "pending"},
                    {"$set": {"status": "published", "published_at": utc_now()}},
                )
                published += 1
            self.published_total += len(batch)
            if not self.acquire_lease():  # another replica took over while we worked
                break
        return published

    def _publish(self, doc: dict) -> None:
        producer = self._ensure_producer()
        event_id = doc["event_id"]
        producer.publish(
            doc["envelope"],
            exchange=self.exchange,
            routing_key=doc["routing_key"],
            serializer="json",
            headers=doc.get("headers") or {},
            delivery_mode=2,
            mandatory=True,
            message_id=event_id,
            retry=False,
        )
        # With confirms on, publish returns once the broker acked; a basic.return for an unroutable message
        # always arrives before that ack.
        if event_id in self._returned:
            self._returned.discard(event_id)
            raise Unroutable(
                f"{doc['routing_key']} from {self.service} has no queue bound; run `tasklinkr topology apply`"
            )

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            self._connection = Connection(self.amqp_uri, transport_options={"confirm_publish": True})
            channel = self._connection.channel()
            channel.events["basic_return"].add(self._on_return)
            self._producer = Producer(channel, exchange=self.exchange)
            self.exchange(channel).declare()
        return self._producer

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        message_id = message.properties.get("message_id")
        if message_id:
            self._returned.add(message_id)

    def _disconnect(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken; nothing to release
                pass

    def backlog(self) -> int:
        try:
            return self.db["outbox"].count_documents({"status": "pending"})
        except PyMongoError:
            return -1
