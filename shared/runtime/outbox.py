"""The outbox relay: publishes committed events to RabbitMQ, then marks them published.

Guarantees and why:
- Never lost: an event leaves ``pending`` only after the broker confirmed it (publisher confirms) *and* routed it
  (``mandatory``; a nacked message, or a returned one whose type has declared consumers in the catalog, stays
  pending and is retried; an event no service subscribes to is confirmed with nobody to deliver to). Confirms
  are pipelined: a batch is published, then its confirms are collected, instead of one round trip per event.
  A crash anywhere before the mark means the event is published again after restart: delivery is at-least-once
  and consumers deduplicate by event id.
- Never marked unless published: after its confirms a batch is marked published by its confirmed ids (each only if
  still pending), in a short transaction that also checks the relay's lease (below), so an event committing into
  the batch's range meanwhile is not touched and goes out in the next pass. If that transaction cannot commit
  (another relay marked the same events, a conflict), the confirmed events are marked one by one, each only if
  still pending.
- Never published for an uncommitted change, nor for one a replica set could still roll back: the relay reads its
  pending events with majority read concern, outside any transaction, and no transaction is open while it
  publishes. (A snapshot transaction's reads are majority-committed only once it commits with write concern
  majority, after the publishing: a write rolled back by a failover could have been published.)
- In order: pending events go out oldest first, and a later event of the same aggregate never overtakes an earlier
  one. A batch carries at most one event per aggregate (subject): with confirms pipelined, a later event of the
  aggregate in the same batch could be enqueued while the earlier one is refused (a full queue), and then arrive
  first; so the later one waits for the next batch.
- One full queue holds up only its own aggregates: an event the broker refuses (nack: one of its queues is full) or
  returns stays pending, its aggregate's later events wait for it, and every other event of the pass still goes
  out; otherwise one consumer's full queue would stop the producer's events to every other consumer. A refused
  event is tried again after a back-off of its own (1 s, doubling up to 30 s); each try reaches the queues that
  have room, and their consumers deduplicate.
- One relay at a time: replicas of a service compete for a lease in the service's database; only the holder
  publishes, so replicas do not publish the same event twice in the normal case. Each takeover raises the lease's
  fencing token, and a batch is marked only in a transaction that finds the lease still held with the token its
  relay took it with: a relay that paused past its lease (or whose clock ran ahead) cannot mark anything once
  another took over; what it published meanwhile goes out again from the new holder, and consumers deduplicate.
- The tenant's copy: an event with a tenant is also published to the tenant feed (``tasklinkr.feed``) under
  ``<tenant>.<event type>``, on the same channel right after the first, and stays pending until the broker confirmed
  both: a tenant's integration gets every such event, in the same order and with the same guarantees. One
  exception: a copy the tenant's own queues refuse (nack: a full queue its owner declared with
  ``x-overflow: reject-publish``) is logged and not retried, so no tenant can hold up the platform's events.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from datetime import UTC, timedelta

import eventlet
import pymongo
from eventlet.queue import Empty, LightQueue
from kombu import Connection, Exchange
from pymongo import ReturnDocument, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database as MongoDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from shared.runtime import metrics
from shared.runtime.topology import FEED_EXCHANGE, load_catalog
from shared.vocabulary.times import utc_now

log = logging.getLogger(__name__)

LEASE_ID = "outbox"
# Longest one database call of the relay may take: a database that stops answering (a silent partition, a
# blackholed host) fails the pass after it, and the relay retries with back-off, instead of waiting until TCP gives up.
OPERATION_TIMEOUT_SECONDS = 10.0
# Back-off of one refused event (its queue full, or none bound): first wait, and the longest.
REFUSED_RETRY_SECONDS = (1.0, 30.0)


class PublishFailed(Exception):
    """The broker did not confirm an event; it stays pending and is retried."""


class LeaseLost(Exception):
    """Another relay took the lease over (its fencing token is newer): this one must not mark anything."""


class Unroutable(PublishFailed):
    """The broker returned the event: no queue is bound for it. Apply the topology (`tasklinkr topology apply`)."""


# What the relay needs of an outbox document to publish it.
BATCH_FIELDS = {"_id": 1, "event_id": 1, "routing_key": 1, "envelope": 1, "headers": 1}


def _pending_between(first, last) -> dict:
    return {"status": "pending", "_id": {"$gte": first, "$lte": last}}


class _PendingReader:
    """One pass over the pending events, oldest first: a window of ids per query, then a batch at a time."""

    def __init__(self, relay: OutboxRelay):
        self.relay = relay
        self.ids: list = []
        self.after = None
        self.batches_read = 0

    def hold_back(self, ids: list) -> None:
        """Ids read but not published in this batch: first in the next one."""
        self.ids = ids + self.ids

    def next_batch(self) -> list[dict] | None:
        """The next batch, or None at the end of the pass."""
        while True:
            if not self.ids:
                self.ids = self.relay._pending_ids(self.after)
                if not self.ids:
                    return None
                self.after = self.ids[-1]
            chunk, self.ids = self.ids[:self.relay.batch_size], self.ids[self.relay.batch_size:]
            batch = self.relay._read_batch(chunk[0], chunk[-1])
            if batch:
                self.batches_read += 1
                return batch
            # else published meanwhile by another replica


def one_per_aggregate(batch: list[dict]) -> tuple[list[dict], list[dict]]:
    """The longest prefix of ``batch`` with one event per subject, and the rest (for the next batch)."""
    subjects: set = set()
    for position, doc in enumerate(batch):
        subject = doc["envelope"].get("subject")
        if subject in subjects:
            return batch[:position], batch[position:]
        subjects.add(subject)
    return batch, []


def subscribed_types(service: str) -> frozenset[str]:
    """The event types of ``service`` that some consumer is declared for in contracts-schema/catalog.json."""
    try:
        events = load_catalog()["events"]
    except FileNotFoundError:
        return frozenset()
    return frozenset(e["type"] for e in events if e["producer"] == service and e.get("consumers"))


class OutboxRelay:
    def __init__(self, *, db: MongoDatabase, amqp_uri: str, service: str, poll_seconds: float = 1.0,
                 batch_size: int = 200, lease_seconds: float = 10.0, read_ahead: int = 10_000,
                 operation_timeout: float = OPERATION_TIMEOUT_SECONDS):
        self.db = db
        self.amqp_uri = amqp_uri
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.read_ahead = max(read_ahead, batch_size)
        self.lease_seconds = lease_seconds
        self.operation_timeout = operation_timeout
        self.token: int | None = None  # the lease's fencing token when this relay took it
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.exchange = Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)
        self.feed = Exchange(FEED_EXCHANGE, type="topic", durable=True, auto_delete=False)
        self._wake: LightQueue = LightQueue(maxsize=1)
        self._running = True
        self.confirm_timeout = 30.0
        self._connection: Connection | None = None
        self._channel = None
        self._next_tag = 0
        self._last_multiple = 0
        self._acked: set[int] = set()
        self._nacked: set[int] = set()
        self._returned: set[str] = set()
        self._failure: dict[str, PublishFailed] = {}
        self.subscribed_types = subscribed_types(service)
        self._refused: dict[str, tuple[float, float]] = {}  # event id -> (monotonic time to try again, back-off)

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
            failed: Exception | None = None
            try:
                if self.acquire_lease():
                    self.publish_pending()
            except Exception as exc:  # keep relaying whatever failed; the events stay pending
                failed = exc
                metrics.OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
                log.warning("outbox relay of %s failed, retrying in %.1fs: %s", self.service, backoff, exc)
                self._disconnect()
            # After a failed pass too: a backlog that ages while the broker is away is what operators must see.
            # Not when the database itself failed: asking it again would only wait out its timeout twice more.
            if not isinstance(failed, PyMongoError):
                self.export_backlog()
            if failed:
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            else:
                backoff = 0.5

    def export_backlog(self) -> None:
        """Set the backlog gauges of this service; they keep their last values while the database is away."""
        try:
            metrics.OUTBOX_BACKLOG.labels(self.service).set(self.backlog())
            metrics.OUTBOX_OLDEST_PENDING_AGE.labels(self.service).set(self.oldest_pending_age())
        except PyMongoError as exc:
            log.warning("outbox backlog of %s unknown: %s", self.service, exc)

    # -- leadership ------------------------------------------------------------------------------------------

    def acquire_lease(self) -> bool:
        """Hold the lease: extend it while this relay holds it with its token, or take it over once it expired
        (raising the fencing token). False while another relay holds it."""
        now = utc_now()
        expires_at = now + timedelta(seconds=self.lease_seconds)
        with pymongo.timeout(self.operation_timeout):
            if self.token is not None and self.db["relay_lease"].update_one(
                    {"_id": LEASE_ID, "owner": self.owner, "token": self.token},
                    {"$set": {"expires_at": expires_at}}).matched_count:
                return True
            try:
                taken = self.db["relay_lease"].find_one_and_update(
                    {"_id": LEASE_ID, "expires_at": {"$lt": now}},
                    {"$set": {"owner": self.owner, "expires_at": expires_at}, "$inc": {"token": 1}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                return False
        self.token = taken["token"]
        return True

    # -- publishing ------------------------------------------------------------------------------------------

    def publish_pending(self) -> int:
        """Publish pending events oldest first until none are left. Returns how many were published.

        Each batch is read with majority read concern and, once the broker confirmed it, marked published by its
        confirmed ids (see ``_mark_published``).
        """
        published = 0
        reader = _PendingReader(self)
        blocked: set = set()  # aggregates with an event refused in this pass: their later events wait for the next
        progress = False
        while self._running:
            batch = reader.next_batch()
            if batch is None:
                if not progress:  # a pass from the oldest published nothing
                    break
                # Start again from the oldest: an event that committed late, with an id below ones this pass
                # published, is found there.
                reader, progress = _PendingReader(self), False
                continue
            now = time.monotonic()
            for doc in batch:  # an event waiting out its back-off holds back the rest of its aggregate
                if self._refused.get(doc["event_id"], (0.0, 0.0))[0] > now:
                    blocked.add(doc["envelope"].get("subject"))
            batch, held = one_per_aggregate([doc for doc in batch if doc["envelope"].get("subject") not in blocked])
            reader.hold_back([doc["_id"] for doc in held])
            confirmed = self._publish_batch(batch)
            if confirmed:
                published += self._mark_published(confirmed)
                progress = True
            for doc in batch:
                failure = self._failure.pop(doc["event_id"], None)
                if failure is None:
                    self._refused.pop(doc["event_id"], None)
                    continue
                blocked.add(doc["envelope"].get("subject"))
                backoff = min(self._refused.get(doc["event_id"], (0.0, REFUSED_RETRY_SECONDS[0] / 2))[1] * 2,
                              REFUSED_RETRY_SECONDS[1])
                self._refused[doc["event_id"]] = (time.monotonic() + backoff, backoff)
                log.warning("%s; it stays pending (next try in %.0f s), and later events of %s wait for it",
                            failure, backoff, doc["envelope"].get("subject"))
            if not self.acquire_lease():  # another replica took over while we worked
                break
        return published

    def _pending_ids(self, after) -> list:
        """The ids of up to ``read_ahead`` pending events after ``after``, oldest first: one query per window.

        A query sorts every pending event before it can return the first one (on the embedded server), so one
        query per window rather than per batch keeps draining a backlog linear in its size.
        """
        query = {"status": "pending"} if after is None else {"status": "pending", "_id": {"$gt": after}}
        with pymongo.timeout(self.operation_timeout):
            cursor = self._majority_outbox().find(query, {"_id": 1}).sort("_id", 1).limit(self.read_ahead)
            return [doc["_id"] for doc in cursor.batch_size(self.read_ahead)]

    def _majority_outbox(self):
        """The outbox read with majority read concern: only events no failover can roll back."""
        return self.db.get_collection("outbox", read_concern=ReadConcern("majority"))

    def _read_batch(self, first, last) -> list[dict]:
        """The pending events with ids in [first, last], majority-committed, outside any transaction."""
        with pymongo.timeout(self.operation_timeout):
            return list(self._majority_outbox().find(_pending_between(first, last), BATCH_FIELDS).sort("_id", 1))

    def _mark_published(self, confirmed: list) -> int:
        """Mark the confirmed events of a batch published: by their ids, each only if still pending, in one short
        transaction that finds the lease still this relay's. If it cannot commit (a conflict, the server's
        transaction lifetime), each event is marked by its id outside it."""
        with self.db.client.start_session() as session:
            try:
                with pymongo.timeout(self.operation_timeout):
                    session.start_transaction(write_concern=WriteConcern("majority"))
                    self._check_fence(session)
                    self.db["outbox"].update_many(
                        {"status": "pending", "_id": {"$in": confirmed}},
                        {"$set": {"status": "published", "published_at": utc_now()}},
                        session=session,
                    )
                    session.commit_transaction()
            except LeaseLost:
                with pymongo.timeout(self.operation_timeout), contextlib.suppress(PyMongoError):
                    session.abort_transaction()
                raise
            except PyMongoError as exc:
                log.info("marking %d events of %s in one transaction failed (%s); marking them one by one",
                         len(confirmed), self.service, exc)
                try:  # release its writes first, or the point updates would wait on them
                    with pymongo.timeout(self.operation_timeout):
                        session.abort_transaction()
                except PyMongoError:  # already ended by the server, or the commit's outcome is unknown
                    pass
                published_at = utc_now()
                with pymongo.timeout(self.operation_timeout):
                    self._check_fence(None)
                    self.db["outbox"].bulk_write(
                        [UpdateOne({"_id": _id, "status": "pending"},
                                   {"$set": {"status": "published", "published_at": published_at}})
                         for _id in confirmed],
                        ordered=False,
                    )
        metrics.EVENTS_PUBLISHED.labels(self.service).inc(len(confirmed))
        return len(confirmed)

    def _check_fence(self, session: ClientSession | None) -> None:
        """Raise ``LeaseLost`` unless the lease is still this relay's, with its token. Inside the mark's
        transaction it is a write to the lease, so a takeover committing meanwhile conflicts with the mark."""
        held = self.db["relay_lease"].update_one(
            {"_id": LEASE_ID, "owner": self.owner, "token": self.token},
            {"$set": {"marking_at": utc_now()}}, session=session)
        if not held.matched_count:
            self.token = None
            raise LeaseLost(f"the outbox relay lease of {self.service} was taken over; not marking")

    def _publish_batch(self, batch: list[dict]) -> list:
        """Publish a batch, then collect its confirms (pipelined, not one round trip per event).

        Returns the ids of the events the broker both routed and confirmed, in batch order; each refused one's
        failure is left in ``_failure``. A batch has one event per aggregate, so a refused event never lets a later
        one of its aggregate go ahead of it.
        """
        channel = self._ensure_channel()
        self._acked.clear()
        self._nacked.clear()
        self._returned.clear()
        self._failure.clear()
        first_tag = self._next_tag + 1
        tags: list[list[int]] = []  # per event: its publish to the service's exchange, and to the tenant feed
        for doc in batch:
            message = channel.prepare_message(
                json.dumps(doc["envelope"], separators=(",", ":")).encode(),
                content_type="application/json",
                content_encoding="utf-8",
                headers=doc.get("headers") or {},
                properties={"delivery_mode": 2, "message_id": doc["event_id"]},
            )
            channel.basic_publish(message, exchange=self.exchange.name, routing_key=doc["routing_key"],
                                  mandatory=True)
            self._next_tag += 1
            tags.append([self._next_tag])
            tenant = doc["envelope"].get("tenantid")
            if tenant:
                # The tenant's copy: not mandatory, a tenant need not listen; confirmed like the first.
                channel.basic_publish(message, exchange=FEED_EXCHANGE, routing_key=f"{tenant}.{doc['routing_key']}")
                self._next_tag += 1
                tags[-1].append(self._next_tag)
        last_tag = self._next_tag
        deadline = time.monotonic() + self.confirm_timeout
        while not self._all_resolved(first_tag, last_tag):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishFailed(f"no confirm from the broker within {self.confirm_timeout}s")
            try:
                self._connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
        confirmed = []
        for event_tags, doc in zip(tags, batch, strict=True):
            if event_tags[0] in self._nacked:
                metrics.EVENTS_REFUSED.labels(self.service, "nack").inc()
                self._failure[doc["event_id"]] = PublishFailed(f"the broker refused {doc['routing_key']} (nack)")
                continue
            if any(tag in self._nacked for tag in event_tags[1:]):
                # Only the tenant's own queues are bound to its feed key: one that refuses (full, and declared to
                # reject new messages) is its owner's choice, and must not hold up every other event.
                log.warning("the feed queues of %s refused %s %s", doc["envelope"].get("tenantid"),
                            doc["routing_key"], doc["event_id"])
            if doc["event_id"] in self._returned and doc["routing_key"] in self.subscribed_types:
                # Someone is declared to consume it, so its queue must exist: keep it until the topology does.
                metrics.EVENTS_REFUSED.labels(self.service, "unroutable").inc()
                self._failure[doc["event_id"]] = Unroutable(
                    f"{doc['routing_key']} from {self.service} has no queue bound; run `tasklinkr topology apply`"
                )
                continue
            # An event no service subscribes to (yet) is confirmed with nobody to route it to: that is delivered.
            confirmed.append(doc["_id"])
        return confirmed

    def _all_resolved(self, first_tag: int, last_tag: int) -> bool:
        return all(tag in self._acked or tag in self._nacked for tag in range(first_tag, last_tag + 1))

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._resolve(self._acked, delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._resolve(self._nacked, delivery_tag, multiple)

    def _resolve(self, into: set[int], delivery_tag: int, multiple: bool) -> None:
        if multiple:
            into.update(t for t in range(self._last_multiple + 1, delivery_tag + 1)
                        if t not in self._acked and t not in self._nacked)
            self._last_multiple = max(self._last_multiple, delivery_tag)
        else:
            into.add(delivery_tag)

    def _ensure_channel(self):
        if self._channel is None:
            self._connection = Connection(self.amqp_uri)
            self._connection.ensure_connection(max_retries=1)
            channel = self._connection.channel()
            channel.events["basic_return"].add(self._on_return)
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self.exchange(channel).declare()
            self.feed(channel).declare()
            channel.confirm_select()
            self._channel = channel
            self._next_tag = 0
            self._last_multiple = 0
        return self._channel

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        message_id = message.properties.get("message_id")
        if message_id:
            self._returned.add(message_id)

    def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken; nothing to release
                pass

    def oldest_pending_age(self) -> float:
        """Seconds since the oldest pending event was committed; 0 when none is pending.

        Outbox ids are ObjectIds taken as events are committed, so the first pending one on the ``(status, _id)``
        index is the oldest (give or take a transaction in flight); one indexed read, no sort of the backlog.
        """
        oldest = self.db["outbox"].find_one({"status": "pending"}, {"created_at": 1}, sort=[("_id", 1)])
        if oldest is None:
            return 0.0
        created = oldest.get("created_at") or oldest["_id"].generation_time
        if created.tzinfo is None:  # pymongo hands back naive UTC unless the client is tz-aware
            created = created.replace(tzinfo=UTC)
        return max(0.0, (utc_now() - created).total_seconds())

    def backlog(self) -> int:
        try:
            with pymongo.timeout(self.operation_timeout):
                return pending_count(self.db)
        except PyMongoError:
            return -1


def pending_count(db) -> int:
    """Events a service committed that the broker has not confirmed yet: its outbox backlog."""
    return db["outbox"].count_documents({"status": "pending"})
