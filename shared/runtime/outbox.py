"""The outbox relay: follows the outbox through a change stream and publishes every committed event to RabbitMQ.

The outbox is a series of time segments, collections named ``outbox_<UTC start>_<seconds>`` (``segment_name``): a
transaction writes all the events it emits as one document of the segment its clock is in, in the same
transaction as the change. Nothing marks an event published. Guarantees and why:

- Never skipped, never published uncommitted: the relay reads the database's change stream (inserts into
  ``outbox_*``), which returns a transaction's writes only once it committed (majority-committed on a replica
  set), in commit order. An event whose id was taken early but whose transaction committed late comes out of the
  stream after the ones committed before it; no id or clock order is trusted.
- Never lost: the relay's position is the stream's resume token, stored (in its lease document, fenced by the
  lease's token) only once every event up to it was confirmed and routed (publisher confirms, ``mandatory``). A
  crash anywhere before that store restarts the stream from the previous position: the events after it are
  published again (at-least-once; consumers deduplicate by event id). One write per published batch, none per event.
- In order per aggregate: changes are taken in stream order; a batch carries at most one event per aggregate
  (subject), the earliest unconfirmed one; a later event of an aggregate whose event was refused waits for it.
- One full queue holds up only its own aggregates: a nacked event, or one returned (``mandatory``) whose type has
  declared consumers, stays in memory with a back-off of its own (1 s doubling to 30 s); the rest goes out; the
  stored position does not pass it, so after a crash it is published again from there.
- Bounded: once the stored position is past a segment's end by ``retention_seconds`` (at least ``DROP_GRACE_SECONDS``,
  longer than a transaction can stay open, so nothing can still commit into it), the segment is dropped whole.
- Without a position (first start) or when the stream's history no longer reaches it (the oplog was pruned
  meanwhile), the relay opens a new stream, reads every segment not yet passed in one snapshot, publishes that, then
  follows the stream: events in both are published twice, none is missed, and an aggregate's events keep their
  order (a snapshot holding a later event holds the earlier one).
- One relay at a time: replicas compete for a lease; each takeover raises its fencing token, and a position is
  stored only by the holder of the token, so a relay that paused past its lease stores nothing.
- The tenant's copy: an event with a tenant is also published to ``tasklinkr.feed`` under
  ``<tenant>.<event type>`` and counts as confirmed when both were; a copy the tenant's own queues refuse is logged
  and not retried.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import eventlet
import pymongo
from bson import ObjectId
from eventlet.queue import Empty, LightQueue
from kombu import Connection, Exchange
from pymongo import ReturnDocument
from pymongo.database import Database as MongoDatabase
from pymongo.errors import CollectionInvalid, DuplicateKeyError, OperationFailure, PyMongoError

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
# How long a segment takes events; a transaction writes to the segment its clock is in.
SEGMENT_SECONDS = 60
# A segment is dropped only this long after the relay's position passed its end: longer than a transaction can stay
# open (60 s on SecantusDB and MongoDB by default) plus clock skew between replicas, so nothing commits into it after.
DROP_GRACE_SECONDS = 90.0
SEGMENT_PREFIX = "outbox_"
LEGACY_OUTBOX = "outbox"  # the outbox before segments: one document per event, marked ``published``
_SEGMENT = re.compile(r"^outbox_(\d{8}T\d{6})_(\d+)$")
# The stream's history no longer reaches the stored position (ChangeStreamHistoryLost), or cannot go on (fatal).
HISTORY_LOST_CODES = frozenset({286, 280, 260})
STREAM_MATCH = [{"$match": {"operationType": "insert",
                            "ns.coll": {"$gte": SEGMENT_PREFIX, "$lt": SEGMENT_PREFIX[:-1] + chr(ord("_") + 1)}}}]


class PublishFailed(Exception):
    """The broker did not confirm an event; it is retried."""


class LeaseLost(Exception):
    """Another relay took the lease over (its fencing token is newer): this one must not store its position."""


class Unroutable(PublishFailed):
    """The broker returned the event: no queue is bound for it. Apply the topology (`tasklinkr topology apply`)."""


def segment_name(now: datetime | None = None, seconds: int = SEGMENT_SECONDS) -> str:
    """The outbox segment a transaction writes to at ``now``: ``outbox_<UTC start>_<seconds>``."""
    now = now or utc_now()
    start = int(now.timestamp()) // seconds * seconds
    return f"{SEGMENT_PREFIX}{datetime.fromtimestamp(start, UTC):%Y%m%dT%H%M%S}_{seconds}"


def segment_end(name: str) -> datetime | None:
    """When the segment ``name`` stops taking events; None for a collection that is not a segment."""
    found = _SEGMENT.match(name)
    if not found:
        return None
    start = datetime.strptime(found.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return start + timedelta(seconds=int(found.group(2)))


def segments(db) -> list[str]:
    """The outbox segments present, oldest first."""
    return sorted((n for n in db.list_collection_names(filter={"name": {"$regex": "^outbox_"}}) if segment_end(n)),
                  key=lambda n: (segment_end(n), n))


def outbox_document(events: list[dict], created_at: datetime) -> dict:
    """One transaction's events (each ``event_id``, ``routing_key``, ``envelope``, ``headers``), in emit order."""
    return {"_id": ObjectId(), "created_at": created_at, "count": len(events), "events": events}


def outbox_events(db, match: dict | None = None) -> list[dict]:
    """The events still in the outbox (published or not), oldest segment first, each ``event_id``, ``routing_key``,
    ``envelope``, ``headers``; ``match`` keeps those whose dotted fields equal its values (``{"routing_key": ...}``)."""
    found = [event for name in segments(db) for doc in db[name].find({}).sort("_id", 1) for event in doc["events"]]
    found += [_event(doc) for doc in db[LEGACY_OUTBOX].find({"status": "pending"}).sort("_id", 1)]
    return [event for event in found if all(_field(event, path) == value for path, value in (match or {}).items())]


def _field(document: dict, path: str):
    for key in path.split("."):
        document = document.get(key) if isinstance(document, dict) else None
    return document


@dataclass
class _Change:
    """One outbox document read from the stream (or the start-up scan): its events, and the stream position after it
    (None for a scanned document but the last)."""
    token: dict | None
    wall: datetime | None
    doc_id: ObjectId | None
    events: list[dict]
    left: int = 0
    confirmed: set = field(default_factory=set)


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
                 operation_timeout: float = OPERATION_TIMEOUT_SECONDS, retention_seconds: float = 600.0,
                 drop_grace: float = DROP_GRACE_SECONDS):
        self.db = db
        self.amqp_uri = amqp_uri
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.read_ahead = max(read_ahead, batch_size)
        self.lease_seconds = lease_seconds
        self.operation_timeout = operation_timeout
        self.drop_grace = float(drop_grace)
        self.retention_seconds = max(float(retention_seconds), self.drop_grace)
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
        self._stream = None
        self._inflight: deque[_Change] = deque()  # read, not all confirmed yet, in stream order
        self._inflight_events = 0
        self._renewed_at = 0.0
        self._dropped_at = 0.0
        self._legacy_scanned = False
        self._prepared_at = 0.0

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
        self._close_stream()
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
                if time.monotonic() - self._prepared_at > SEGMENT_SECONDS / 4:
                    with pymongo.timeout(self.operation_timeout):
                        self.prepare_segments()
                if self.acquire_lease():
                    self.publish_pending()
                else:
                    self._forget()
            except Exception as exc:  # keep relaying whatever failed; the stored position has not passed anything
                failed = exc
                metrics.OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
                log.warning("outbox relay of %s failed, retrying in %.1fs: %s", self.service, backoff, exc)
                self._disconnect()
                self._forget()
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
                self._renewed_at = time.monotonic()
                return True
            try:
                taken = self.db["relay_lease"].find_one_and_update(
                    {"_id": LEASE_ID, "expires_at": {"$lt": now}},
                    {"$set": {"owner": self.owner, "expires_at": expires_at}, "$inc": {"token": 1}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                self.token = None
                return False
        self.token = taken["token"]
        self._renewed_at = time.monotonic()
        self._forget()  # a new holder starts from the stored position, not from what it read before
        return True

    def _forget(self) -> None:
        self._close_stream()
        self._inflight.clear()
        self._inflight_events = 0

    # -- following the stream --------------------------------------------------------------------------------

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def _open_stream(self) -> None:
        """Open the change stream at the stored position; without one (or past its history) start afresh with a
        snapshot of the segments not passed yet."""
        with pymongo.timeout(self.operation_timeout):
            lease = self.db["relay_lease"].find_one({"_id": LEASE_ID}) or {}
            position = lease.get("position")
            if position is not None:
                try:
                    self._stream = self._watch(resume_after=position)
                    return
                except OperationFailure as exc:
                    if exc.code not in HISTORY_LOST_CODES:
                        raise
                    log.warning("the outbox stream of %s cannot resume from its position (%s); reading the "
                                "segments not passed yet again", self.service, exc)
            self._stream = self._watch()
            start = self._stream.resume_token
            passed = lease.get("position_time")
            self._scan(_aware(passed) if passed else None, start)

    def _watch(self, **options):
        return self.db.watch(STREAM_MATCH, batch_size=self.batch_size * 2, max_await_time_ms=50, **options)

    def _scan(self, passed: datetime | None, start: dict) -> None:
        """Everything in the segments the position has not passed, in one snapshot, oldest first; the last document
        carries the new stream's start as its position (nothing read: the start is the position at once)."""
        changes = []
        with self.db.client.start_session(snapshot=True) as session:
            legacy = self.db[LEGACY_OUTBOX].find({"status": "pending"}, session=session).sort("_id", 1)
            changes += [_Change(None, None, None, [_event(doc)]) for doc in legacy]
            self._legacy_scanned = bool(changes)
            for name in segments(self.db):
                if passed is not None and segment_end(name) + timedelta(seconds=self.drop_grace) <= passed:
                    continue  # the stream passed it (and nothing commits into it any more)
                for doc in self.db[name].find({}, session=session).sort("_id", 1):
                    changes.append(_Change(None, doc.get("created_at"), doc["_id"], list(doc["events"])))
        if changes:
            changes[-1].token = start
        else:
            self._store_position(start, utc_now(), None)
        for change in changes:
            self._add(change)

    def _add(self, change: _Change) -> None:
        change.left = len(change.events)
        self._inflight.append(change)
        self._inflight_events += change.left

    def _read(self) -> bool:
        """Read what the stream has now into the in-flight window (up to ``read_ahead`` events), with at most one
        round trip to the server: under a steady trickle of commits every round trip finds something, and reading
        on until one comes back empty would never get to publishing. True if anything was read."""
        read = False
        with pymongo.timeout(self.operation_timeout):
            while self._inflight_events < self.read_ahead:
                change = self._stream.try_next()
                if change is None:
                    break
                if not self._buffered():
                    self._take(change)
                    return True
                read = self._take(change) or read
        return read

    def _buffered(self) -> bool:
        """Whether the stream holds changes it read already (the next ``try_next`` needs no round trip)."""
        cursor = getattr(self._stream, "_cursor", None)
        return bool(getattr(cursor, "_data", None))

    def _take(self, change: dict) -> bool:
        doc = change.get("fullDocument") or {}
        events = doc.get("events")
        if not events:
            return False
        wall = change.get("wallTime")
        self._add(_Change(change["_id"], _aware(wall) if wall else None, doc.get("_id"), list(events)))
        return True

    # -- publishing ------------------------------------------------------------------------------------------

    def publish_pending(self) -> int:
        """Publish what the outbox's stream holds until it holds nothing more that can go now. Returns how many
        events were published (confirmed and routed)."""
        if self._stream is None:
            self._open_stream()
        published = 0
        while self._running:
            quiet_since = utc_now()
            read = self._read()
            batch = self._next_batch()
            if not batch:
                if not read and not self._inflight:
                    self._store_idle(quiet_since)
                if not read:
                    break
                continue
            confirmed = self._publish_batch(batch)
            published += self._confirm(batch, confirmed)
            self._advance()
        return published

    def _next_batch(self) -> list[dict]:
        """Up to ``batch_size`` events, oldest first, at most one per aggregate: the earliest unconfirmed one, unless
        an earlier one of its aggregate is waiting out a back-off."""
        now = time.monotonic()
        batch: list[dict] = []
        seen: set = set()
        for change in self._inflight:
            for event in change.events:
                if event["event_id"] in change.confirmed:
                    continue
                subject = event["envelope"].get("subject")
                if subject in seen:
                    continue
                seen.add(subject)
                if self._refused.get(event["event_id"], (0.0, 0.0))[0] > now:
                    continue
                batch.append({**event, "_id": event["event_id"], "_change": change})
                if len(batch) >= self.batch_size:
                    return batch
        return batch

    def _confirm(self, batch: list[dict], confirmed: list) -> int:
        done = set(confirmed)
        for event in batch:
            change, event_id = event["_change"], event["event_id"]
            failure = self._failure.pop(event_id, None)
            if event_id in done:
                change.confirmed.add(event_id)
                change.left -= 1
                self._inflight_events -= 1
                self._refused.pop(event_id, None)
                continue
            if failure is None:
                continue
            backoff = min(self._refused.get(event_id, (0.0, REFUSED_RETRY_SECONDS[0] / 2))[1] * 2,
                          REFUSED_RETRY_SECONDS[1])
            self._refused[event_id] = (time.monotonic() + backoff, backoff)
            log.warning("%s; it stays in the outbox (next try in %.0f s), and later events of %s wait for it",
                        failure, backoff, event["envelope"].get("subject"))
        metrics.EVENTS_PUBLISHED.labels(self.service).inc(len(done))
        return len(done)

    def _advance(self) -> None:
        """Store the position after the longest fully confirmed prefix of what was read, then drop the segments
        it passed; otherwise keep the lease."""
        token, wall, newest = None, None, None
        while self._inflight and self._inflight[0].left == 0:
            change = self._inflight.popleft()
            if change.doc_id is not None and (newest is None or change.doc_id > newest):
                newest = change.doc_id
            if change.token is not None:
                token, wall = change.token, change.wall or utc_now()
        if token is not None:
            self._store_position(token, wall, newest)
            if self._legacy_scanned:  # the old outbox's pending events went out before this position
                with pymongo.timeout(self.operation_timeout):
                    self.db.drop_collection(LEGACY_OUTBOX)
                self._legacy_scanned = False
            self._drop_passed(wall)
        elif time.monotonic() - self._renewed_at > self.lease_seconds / 3 and not self.acquire_lease():
            raise LeaseLost(f"the outbox relay lease of {self.service} was taken over")

    def _store_idle(self, quiet_since: datetime) -> None:
        """Nothing in flight and the stream had nothing more: its current position covers everything committed
        before ``quiet_since``. Stored now and then, so segments are dropped on a quiet outbox too."""
        if self._stream is None or time.monotonic() - self._dropped_at < 1.0:
            return
        token = self._stream.resume_token
        if token is not None:
            self._store_position(token, quiet_since, None)
            self._drop_passed(quiet_since)

    def _store_position(self, token: dict, wall: datetime, newest: ObjectId | None) -> None:
        """The stream position after which events remain to publish; fenced by the lease's token (one write per
        published batch, which also extends the lease)."""
        update: dict = {"$set": {"position": token, "position_time": wall,
                                 "expires_at": utc_now() + timedelta(seconds=self.lease_seconds)}}
        if newest is not None:
            update["$max"] = {"published_id": newest}
        with pymongo.timeout(self.operation_timeout):
            held = self.db["relay_lease"].update_one({"_id": LEASE_ID, "owner": self.owner, "token": self.token},
                                                     update)
        if not held.matched_count:
            self.token = None
            self._forget()
            raise LeaseLost(f"the outbox relay lease of {self.service} was taken over; not storing its position")
        self._renewed_at = time.monotonic()

    def prepare_segments(self) -> list[str]:
        """Create the current and the next segment if missing; returns the segments present before.

        Made ahead, by every replica and whatever the broker does: a collection created inside a transaction holds
        up every other writer to it until that transaction ends (the first of each minute would otherwise)."""
        present = segments(self.db)
        now = utc_now()
        for name in {segment_name(now), segment_name(now + timedelta(seconds=SEGMENT_SECONDS))} - set(present):
            with contextlib.suppress(CollectionInvalid, OperationFailure):  # a writer made it meanwhile
                self.db.create_collection(name)
        self._prepared_at = time.monotonic()
        return present

    def _drop_passed(self, passed: datetime) -> None:
        """Drop every segment whose end the stored position passed ``retention_seconds`` ago (at most once a
        second)."""
        if time.monotonic() - self._dropped_at < 1.0:
            return
        self._dropped_at = time.monotonic()
        with pymongo.timeout(self.operation_timeout):
            present = self.prepare_segments()
            for name in present:
                if segment_end(name) + timedelta(seconds=self.retention_seconds) > passed:
                    break
                self.db.drop_collection(name)
                log.info("outbox segment %s of %s dropped: every event in it was published", name, self.service)

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
        """Seconds since the oldest event not yet published was committed; 0 when none is pending."""
        oldest = _oldest_pending(self.db)
        if oldest is None:
            return 0.0
        return max(0.0, (utc_now() - _aware(oldest)).total_seconds())

    def backlog(self) -> int:
        try:
            with pymongo.timeout(self.operation_timeout):
                return pending_count(self.db)
        except PyMongoError:
            return -1


def _event(doc: dict) -> dict:
    return {key: doc.get(key) for key in ("event_id", "routing_key", "envelope", "headers")}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _not_published(db) -> dict:
    """Outbox documents after the newest one the relay published (by id: a transaction that took its id earlier and
    committed later is counted published until the relay gets to it, at most a transaction's lifetime)."""
    lease = db["relay_lease"].find_one({"_id": LEASE_ID}, {"published_id": 1}) or {}
    after = lease.get("published_id")
    return {} if after is None else {"_id": {"$gt": after}}


def pending_count(db) -> int:
    """Events a service committed that the broker has not confirmed yet: its outbox backlog."""
    query = _not_published(db)
    total = db[LEGACY_OUTBOX].count_documents({"status": "pending"})
    for name in segments(db):
        total += sum(row["n"] for row in db[name].aggregate(
            [{"$match": query}, {"$group": {"_id": None, "n": {"$sum": "$count"}}}]))
    return total


def _oldest_pending(db) -> datetime | None:
    legacy = db[LEGACY_OUTBOX].find_one({"status": "pending"}, {"created_at": 1}, sort=[("_id", 1)])
    if legacy is not None:
        return legacy.get("created_at") or legacy["_id"].generation_time
    query = _not_published(db)
    for name in segments(db):
        oldest = db[name].find_one(query, {"created_at": 1}, sort=[("_id", 1)])
        if oldest is not None:
            return oldest.get("created_at") or oldest["_id"].generation_time
    return None


def outbox_size(db) -> int:
    """Events held in the outbox, published or not (what dropping segments bounds)."""
    return sum(row["n"] for name in segments(db)
               for row in db[name].aggregate([{"$group": {"_id": None, "n": {"$sum": "$count"}}}]))
