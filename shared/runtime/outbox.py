"""The outbox relay: follows the outbox through a change stream and publishes every committed event to RabbitMQ, one
relay per workload lane.

The outbox is a series of time segments, collections named ``outbox_<UTC start>_<seconds>`` (``segment_name``): a
transaction writes all the events it emits as one document per lane (``outbox_documents``, the document's ``lane``
field; several in a row when they pass ``DOCUMENT_BYTES``) of the segment its clock is in, in the same transaction as
the change. Nothing marks an event published. Each lane has its own relay (``OutboxRelay(lane=...)``): its own lease
with its fencing token, its own stored position, and its own change stream that the database filters to its lane's
documents, so a backlog in one lane (a consumer that refuses, a flood) never holds back another's. An aggregate's
events are always in one lane (``shared.vocabulary.terms.lane_of``: the lane comes from the client's segment or the
provider's kind, neither of which ever changes, and a contract or invoice keeps the lane it was created in), so the
guarantees below hold per lane and per aggregate alike. Guarantees and why:

- Never skipped, never published uncommitted: a relay reads the database's change stream (inserts into
  ``outbox_*`` of its lane), which returns a transaction's writes only once it committed (majority-committed on a
  replica set), in commit order. An event whose id was taken early but whose transaction committed late comes out
  of the stream after the ones committed before it; no id or clock order is trusted.
- Never lost: a relay's position is its stream's resume token, stored (in its lane's lease document, fenced by the
  lease's token) only once every event up to it was confirmed and routed (publisher confirms, ``mandatory``). A
  crash anywhere before that store restarts the stream from the previous position: the events after it are
  published again (at-least-once; consumers deduplicate by event id). No write per event, and at most one per
  ``position_interval`` while publishing (and before a drop, when idle, at a stop): a position stored less often
  only means more events published again after a crash.
- In order per aggregate: changes are taken in stream order; a batch carries at most one event per aggregate
  (subject), the earliest unconfirmed one, and none of an aggregate whose event is at the broker in an earlier batch
  not confirmed yet (two batches are out at once); a later event of an aggregate whose event was refused waits for
  it.
- One full queue holds up only its own aggregates: a nacked event, or one returned (``mandatory``) whose type has
  declared consumers, stays in memory with a back-off of its own (1 s doubling to 30 s); the rest goes out; the
  stored position does not pass it, so after a crash it is published again from there. Its lane's read window can
  fill with such events; the other lanes' relays read and publish on regardless.
- Bounded: a segment is dropped whole once, for every lane, either that lane's stored position is past the segment's
  end by ``retention_seconds`` (at least ``DROP_GRACE_SECONDS``, longer than a transaction can stay open, so nothing
  can still commit into it), or the segment holds no document of that lane (looked at once nothing can commit into
  it any more). A lane whose relay has never run, or has stopped, blocks only the segments holding its own events:
  exactly those its (first) start will read.
- Without a position (a lane's first start: it starts from the position of the relay before lanes, if there was
  one) or when the stream's history no longer reaches it (the oplog was pruned meanwhile), the relay opens a new
  stream, reads its lane's documents in every segment not yet passed in one snapshot, publishes that, then follows
  the stream: events in both are published twice, none is missed, and an aggregate's events keep their order (a
  snapshot holding a later event holds the earlier one).
- One relay per lane at a time: replicas compete for the lane's lease; each takeover raises its fencing token, and
  a position is stored only by the holder of the token, so a relay that paused past its lease stores nothing. A
  relay that found the lease held asks again only once the expiry it read has passed, and only the holder exports
  the lane's backlog gauges (from its window, or counted when that does not hold the whole backlog): a second
  replica adds no database work of its relay.
- The tenant's copy: an event with a tenant is also published to ``tasklinkr.feed`` under
  ``<tenant>.<event type>`` and counts as confirmed when both were; a copy the tenant's own queues refuse is logged
  and not retried.
- Documents written before lanes (no ``lane`` field, events of any lane) are read by every lane's relay, each taking
  only its own lane's events (``event_lane``).
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
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import bson
import eventlet
import pymongo
from bson import ObjectId
from eventlet.queue import Empty, LightQueue
from kombu import Exchange
from pymongo import ReturnDocument
from pymongo.database import Database as MongoDatabase
from pymongo.errors import CollectionInvalid, DuplicateKeyError, OperationFailure, PyMongoError

from shared.runtime import envelope as envelopes
from shared.runtime import metrics
from shared.runtime.batchpublish import ACKED, NACKED, RETURNED, BatchPublisher, ConfirmTimeout, Outgoing, Sent
from shared.runtime.topology import FEED_EXCHANGE, load_catalog
from shared.vocabulary import jsontext
from shared.vocabulary.terms import DEFAULT_LANE, LANES, Lane
from shared.vocabulary.times import utc_now

log = logging.getLogger(__name__)

# The lease of the relay before lanes (one per service); its position is where a lane's relay that has none of
# its own starts. Each lane's lease is ``lease_id(lane)``.
LEASE_ID = "outbox"
RELAY_LEASES = "relay_lease"
# Longest one database call of the relay may take: a database that stops answering (a silent partition, a
# blackholed host) fails the pass after it, and the relay retries with back-off, instead of waiting until TCP gives up.
OPERATION_TIMEOUT_SECONDS = 10.0
# Back-off of one refused event (its queue full, or none bound): first wait, and the longest.
REFUSED_RETRY_SECONDS = (1.0, 30.0)
# How long a segment takes events; a transaction writes to the segment its clock is in.
SEGMENT_SECONDS = 60
# How often an idle relay stores its position and exports its backlog gauges: each is a few database calls per
# relay, and a process of every lane runs one relay per lane.
IDLE_CHORE_SECONDS = 5.0
# How long the change stream's read waits for a commit while the relay publishes (``max_await_time_ms``): a read that
# comes back empty ends the pass, so it must be short. An idle relay reopens its stream (from its resume token, about
# 1 ms) with a wait of up to its poll interval (``_idle_wait_ms``): the database answers that read as soon as a
# commit of the lane arrives, from whichever process, and an idle relay still sends one read per poll interval.
PUBLISHING_AWAIT_MS = 50
# How long a relay that has just taken changes of its lane keeps the short read wait between passes before it reopens
# its stream with the idle wait. Under a steady flow of commits reopening at every pass was two stream opens per
# outbox commit (in a profile of bench-matching, about 4 % of the embedded database's busy time and 2 % of the
# matching process's); an idle spell shorter than this costs a read per PUBLISHING_AWAIT_MS instead, one longer goes
# back to the idle wait.
QUIET_BEFORE_IDLE_WAIT_SECONDS = 1.0
# Batches a relay keeps at the broker at once: it writes the next batch before it waits for the confirms of the one
# before, so the broker always has the next batch to take while the relay takes in confirms and packs a batch.
# bench-relay's drain (batches of 500, 997 aggregates, one durable queue; interleaved runs at load 1.2-2): 7,500-9,900
# events/s with one batch at a time, 8,700-14,700/s with two (5,000 events: median 8,200 -> 10,800/s), the CPU per
# event of relay, database and broker unchanged. Three batches of 500, or three of 333, or four of 250 did no better:
# the broker, which takes 12,500-14,000/s into that queue from a publisher doing nothing else, is the limit.
IN_FLIGHT_BATCHES = 2
# How often, at most, a publishing relay stores its position (``TASKLINKR_OUTBOX_POSITION_INTERVAL_SECONDS``). Under a
# trickle of commits a store per (small) batch was the relay's main database write and much of an event's wait; a
# position stored less often only means more events published again after a crash, which consumers deduplicate.
POSITION_INTERVAL_SECONDS = 0.25
# The longest a stopping relay waits to store its position: a service stopping must not hang on a database that is
# gone (not storing it means publishing again, never losing).
STOP_STORE_TIMEOUT_SECONDS = 2.0
# A segment is dropped only this long after the relay's position passed its end: longer than a transaction can stay
# open (60 s on SecantusDB and MongoDB by default) plus clock skew between replicas, so nothing commits into it after.
DROP_GRACE_SECONDS = 90.0
SEGMENT_PREFIX = "outbox_"
LEGACY_OUTBOX = "outbox"  # the outbox before segments: one document per event, marked ``published``
# A segment's index: a lane's documents (``lane``), and of those the ones after a document id. With ``lane`` alone
# the embedded server read a segment whole for ``{"lane": ..., "_id": {"$gt": ...}}``; with both it reads only the
# documents after that id (3,000 documents, 10 after it: 2 ms instead of 370 ms). It answers ``lane`` alone too.
SEGMENT_INDEX = [("lane", 1), ("_id", 1)]
_SEGMENT = re.compile(r"^outbox_(\d{8}T\d{6})_(\d+)$")
# The stream's history no longer reaches the stored position (ChangeStreamHistoryLost), or cannot go on (fatal).
HISTORY_LOST_CODES = frozenset({286, 280, 260})
STREAM_MATCH = [{"$match": {"operationType": "insert",
                            "ns.coll": {"$gte": SEGMENT_PREFIX, "$lt": SEGMENT_PREFIX[:-1] + chr(ord("_") + 1)}}}]


def lease_id(lane: str) -> str:
    """The lease (and stored position) of ``lane``'s relay in the service's ``relay_lease`` collection."""
    return f"{LEASE_ID}.{Lane(lane).value}"


def lane_documents(lane: str, field_prefix: str = "") -> dict:
    """The filter of outbox documents a lane's relay reads: its lane's, and those written before lanes (no lane:
    ``None`` matches a missing field). One ``$in`` on ``lane``, which a segment's ``lane`` index answers (an ``$or``
    with ``$exists`` made the embedded server read the whole segment)."""
    return {f"{field_prefix}lane": {"$in": [Lane(lane).value, None]}}


# Outbox documents written before lanes (no ``lane``: ``None`` matches a missing field, and the index answers it;
# ``$exists`` made the embedded server read the segment whole). Their events are sorted out by lane (``event_lane``).
BEFORE_LANES = {"lane": None}


def stream_match(lane: str) -> list[dict]:
    """The change stream of ``lane``'s relay: inserts into the outbox segments of its lane (filtered by the server)."""
    return [*STREAM_MATCH, {"$match": lane_documents(lane, "fullDocument.")}]


def event_lane(event: dict) -> str:
    """The lane an outbox event travels in: its envelope's; one written before lanes, or naming a lane this release
    does not know, travels in the default lane (as consumers take it, ``shared.runtime.messaging``)."""
    lane = event.get("lane") if "body" in event else (event.get("envelope") or {}).get("lane")
    return lane if lane in LANES else DEFAULT_LANE.value


def outbox_event(envelope: dict, routing_key: str) -> dict:
    """An emitted event as the outbox keeps it: the envelope as the JSON text the relay publishes (``body``), with
    what the relay decides by beside it (id, routing key, subject, tenant, lane) and its AMQP headers.

    One string rather than the nested envelope: the database decodes every outbox document once per change stream
    that reads the oplog (each process follows several) and in every scan of a segment, and a string decodes in a
    fraction of the time of the document it holds (an outbox document of 30 shortlists: 1.2 ms of the embedded
    server's CPU to insert instead of 5, a scan 9x cheaper); the relay no longer encodes it either. An envelope
    that JSON cannot carry fails the transaction that emits it, not the relay afterwards. Documents of the nested
    form (``envelope``, written before) are read as ever (``event_subject``, ``event_body``, ``readable``)."""
    return {
        "event_id": envelope["id"],
        "routing_key": routing_key,
        "subject": envelope.get("subject"),
        "tenant": envelope.get("tenantid"),
        "lane": event_lane({"envelope": envelope}),
        "body": jsontext.compact(envelope),
        "headers": envelopes.amqp_headers(envelope),
    }


def event_subject(event: dict) -> str | None:
    """The aggregate an outbox event is about (its envelope's subject)."""
    return event.get("subject") if "body" in event else event["envelope"].get("subject")


def event_tenant(event: dict) -> str | None:
    return event.get("tenant") if "body" in event else event["envelope"].get("tenantid")


def event_body(event: dict) -> bytes:
    """The AMQP body the relay publishes: the envelope's JSON."""
    return (event["body"] if "body" in event else jsontext.compact(event["envelope"])).encode()


def readable(event: dict) -> dict:
    """An outbox event with its ``envelope`` decoded (``event_id``, ``routing_key``, ``envelope``, ``headers``)."""
    if "body" not in event:
        return event
    return {"event_id": event["event_id"], "routing_key": event["routing_key"], "envelope": json.loads(event["body"]),
            "headers": event.get("headers")}


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
    """One transaction's events of one lane (each ``outbox_event``; or, as written before, ``event_id``,
    ``routing_key``, ``envelope``, ``headers``), in emit order, with their ``lane``: what that lane's relay reads.
    Events of several lanes: ``outbox_documents``."""
    lanes = {event_lane(event) for event in events}
    if len(lanes) != 1:
        raise ValueError(f"an outbox document holds the events of one lane, not {sorted(lanes) or 'none'}")
    return {"_id": ObjectId(), "created_at": created_at, "lane": lanes.pop(), "count": len(events), "events": events}


# An outbox document's events stop at about this many bytes: MongoDB refuses a document over 16 MiB, and a change
# that enters a couple of thousand shortlists emits more than that (one shortlist event is about 8 KB).
DOCUMENT_BYTES = 8 * 1024 * 1024
_EVENT_OVERHEAD_BYTES = 512  # an event's id, routing key, subject, tenant, lane and headers beside its body


def outbox_documents(events: list[dict], created_at: datetime) -> list[dict]:
    """One transaction's events as outbox documents, per lane, each with its lane's events in emit order: one
    document a lane, or several in a row when its events pass ``DOCUMENT_BYTES`` (inserted in order, so its relay
    reads them in that order from the one transaction). The order between lanes does not matter: an aggregate's
    events are all in one lane."""
    by_lane: dict[str, list[list[dict]]] = {}
    sizes: dict[str, int] = {}
    for event in events:
        lane, size = event_lane(event), _event_bytes(event)
        chunks = by_lane.setdefault(lane, [[]])
        if chunks[-1] and sizes[lane] + size > DOCUMENT_BYTES:
            chunks.append([])
            sizes[lane] = 0
        chunks[-1].append(event)
        sizes[lane] = sizes.get(lane, 0) + size
    return [outbox_document(chunk, created_at) for chunks in by_lane.values() for chunk in chunks]


def _event_bytes(event: dict) -> int:
    """About what ``event`` takes in its outbox document (the nested form, written before: its BSON size)."""
    if "body" in event:
        return len(event["body"]) + _EVENT_OVERHEAD_BYTES
    return len(bson.encode(event))


def outbox_events(db, match: dict | None = None) -> list[dict]:
    """The events still in the outbox (published or not), oldest segment first, each ``event_id``, ``routing_key``,
    ``envelope``, ``headers``; ``match`` keeps those whose dotted fields equal its values (``{"routing_key": ...}``)."""
    found = [readable(event) for name in segments(db) for doc in db[name].find({}).sort("_id", 1)
             for event in doc["events"]]
    found += [_event(doc) for doc in db[LEGACY_OUTBOX].find({"status": "pending"}).sort("_id", 1)]
    return [event for event in found if all(_field(event, path) == value for path, value in (match or {}).items())]


def _field(document: dict, path: str):
    for key in path.split("."):
        document = document.get(key) if isinstance(document, dict) else None
    return document


class _Position(NamedTuple):
    """A stream position every event up to which was confirmed: its resume token, the commit time it reached, and
    the newest outbox document id it passed (None when it passed none)."""
    token: dict
    wall: datetime
    newest: ObjectId | None


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
    # Each event's id and subject, taken once: every batch looks at them again (``_next_batch``).
    keys: list[tuple[str, str | None]] = field(default_factory=list)


def one_per_aggregate(batch: list[dict]) -> tuple[list[dict], list[dict]]:
    """The longest prefix of ``batch`` with one event per subject, and the rest (for the next batch)."""
    subjects: set = set()
    for position, doc in enumerate(batch):
        subject = event_subject(doc)
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
    """The relay of one service's events of one lane (module docstring)."""

    def __init__(self, *, db: MongoDatabase, amqp_uri: str, service: str, lane: str, poll_seconds: float = 1.0,
                 batch_size: int = 200, lease_seconds: float = 10.0, read_ahead: int = 10_000,
                 operation_timeout: float = OPERATION_TIMEOUT_SECONDS, retention_seconds: float = 600.0,
                 drop_grace: float = DROP_GRACE_SECONDS, position_interval: float = POSITION_INTERVAL_SECONDS,
                 segment_seconds: int = SEGMENT_SECONDS):
        self.db = db
        self.amqp_uri = amqp_uri
        self.service = service
        self.lane = Lane(lane).value
        self.lease_id = lease_id(self.lane)
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.read_ahead = max(read_ahead, batch_size)
        self.lease_seconds = lease_seconds
        self.operation_timeout = operation_timeout
        self.drop_grace = float(drop_grace)
        self.retention_seconds = max(float(retention_seconds), self.drop_grace)
        self.position_interval = float(position_interval)
        self.segment_seconds = segment_seconds  # the segments it makes ahead: those its service's writers use
        self.token: int | None = None  # the lease's fencing token when this relay took it
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.exchange = Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False)
        self.feed = Exchange(FEED_EXCHANGE, type="topic", durable=True, auto_delete=False)
        self._wake: LightQueue = LightQueue(maxsize=1)
        self._running = True
        self._publisher = BatchPublisher(amqp_uri, [self.exchange, self.feed])
        self._failure: dict[str, PublishFailed] = {}
        self.subscribed_types = subscribed_types(service)
        self._refused: dict[str, tuple[float, float]] = {}  # event id -> (monotonic time to try again, back-off)
        self._stream = None
        self._inflight: deque[_Change] = deque()  # read, not all confirmed yet, in stream order
        self._inflight_events = 0
        self._pending_subjects: Counter = Counter()  # the window's unconfirmed events by aggregate (subject)
        self._renewed_at = 0.0
        self._held_elsewhere_until = 0.0  # (monotonic) the lease another relay holds is not asked for before then
        self._dropped_at = 0.0
        self._legacy_scanned = False
        self._prepared_at = 0.0
        self._exported_at = 0.0
        self._stored_idle_at = 0.0
        self._stored_at = 0.0  # when this relay last stored its position (the first store is never deferred)
        self._unstored: _Position | None = None  # confirmed, not stored yet (``position_interval``)
        self._read_to_end = False  # the last read of the stream reached its end, with room in the window
        self._stream_await_ms = PUBLISHING_AWAIT_MS  # how long the open stream's reads wait for a commit
        self._took_at = 0.0  # when this relay last took a change of its lane from its stream
        self._out: set[str] = set()  # ids of the events written to the broker whose confirms were not taken yet
        self._holds_lane: dict[tuple[str, str], bool] = {}  # (closed segment, lane): whether it has its documents
        # The documents the start-up snapshot read (``_scan``): the stream opened before the snapshot, so one that
        # committed in between comes in both, and the stream's copy is skipped.
        self._scanned: set[ObjectId] = set()

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
        self._store_quietly()  # what was confirmed need not go out again from the next holder
        self._close_stream()
        self._disconnect()

    def run(self) -> None:
        backoff = 0.5
        while self._running:
            if not self._idle():  # an idle holder of the lease waits on its stream instead (``_pass``)
                try:
                    self._wake.get(timeout=self.poll_seconds)
                except Empty:
                    pass
            if not self._running:
                break
            failed: Exception | None = None
            try:
                self._pass()
            except Exception as exc:  # keep relaying whatever failed; the stored position has not passed anything
                if not self._running:
                    break  # stopped while it waited on its stream (``stop`` closed it)
                failed = exc
                metrics.OUTBOX_PUBLISH_FAILURES.labels(self.service, self.lane).inc()
                log.warning("outbox relay of %s (lane %s) failed, retrying in %.1fs: %s", self.service, self.lane,
                            backoff, exc)
                self._disconnect()
                if not isinstance(exc, PyMongoError | LeaseLost):  # the broker failed: keep what it confirmed
                    self._store_quietly()
                self._forget()
            # After a failed pass too: a backlog that ages while the broker is away is what operators must see.
            # Not when the database itself failed: asking it again would only wait out its timeout twice more. At
            # most every IDLE_CHORE_SECONDS: a busy outbox wakes the relay at every commit, and counting reads every
            # segment.
            if not isinstance(failed, PyMongoError) and time.monotonic() - self._exported_at >= IDLE_CHORE_SECONDS:
                self.export_backlog()
            if failed:
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            else:
                backoff = 0.5

    def _pass(self) -> None:
        """One turn of the relay: make the segments ahead, hold the lease, and publish what the stream has. An idle
        holder first waits on its stream for a commit (``_await_commit``) and, when none came, does only its idle
        chores."""
        if time.monotonic() - self._prepared_at > self.segment_seconds / 4:
            with pymongo.timeout(self.operation_timeout):
                self.prepare_segments()
        if not self.acquire_lease():
            self._forget()
            return
        if self._idle():
            quiet_since = self._await_commit()
            if not self._running:  # stopped while it waited: the next holder publishes what it took
                return
            if quiet_since is not None:
                self._store_idle(quiet_since)
                return
        self.publish_pending()

    def _idle(self) -> bool:
        """It holds the lease, follows its stream, and its last pass published everything it read and read to the
        end of the stream: nothing to do until something commits."""
        return (self._running and self.token is not None and self._stream is not None and self._read_to_end
                and not self._inflight and self._stream.resume_token is not None)

    def _idle_wait_ms(self) -> int:
        """How long an idle relay's read waits for a commit: its poll interval, but short enough that it renews its
        lease in time (a third of it) and well within the operation timeout (a wait as long as the timeout fails)."""
        seconds = min(self.poll_seconds, self.lease_seconds / 3, self.operation_timeout / 2)
        return max(PUBLISHING_AWAIT_MS, int(1000 * seconds))

    def _await_commit(self) -> datetime | None:
        """Wait on the stream until a commit of the lane arrives or the wait ends; the database answers at once
        when one commits, from any process, and an in-process commit needs no ``notify``. The stream keeps its short
        wait while changes keep coming (``QUIET_BEFORE_IDLE_WAIT_SECONDS``) and is reopened from its resume token
        with the idle wait once per idle spell. Returns when the read began if nothing came (the stream's position
        then covers every commit before it), None after taking what came into the window."""
        quiet = time.monotonic() - self._took_at >= QUIET_BEFORE_IDLE_WAIT_SECONDS
        wait_ms = self._idle_wait_ms() if quiet else PUBLISHING_AWAIT_MS
        if self._stream_await_ms != wait_ms:
            self._reopen_stream(wait_ms)
        began = utc_now()
        with pymongo.timeout(self.operation_timeout):
            change = self._stream.try_next()
        if change is None:
            return began
        self._read_to_end = False
        self._take(change)  # the next pass publishes it before it reads the stream again
        return None

    def export_backlog(self) -> None:
        """Set the backlog gauges of this service's lane; they keep their last values while the database is away.
        Only the lane's lease holder exports them (every replica runs its lanes' relays): the others drop their
        series, so a replica that held the lease before shows no stale figure, and count nothing. The holder takes
        them from its window when that holds the whole backlog (``_window_backlog``), otherwise counts in the
        database: that reads every segment (the embedded server scans each whole, 0.1 ms per document), and the
        relay publishes nothing meanwhile."""
        self._exported_at = time.monotonic()
        if self.token is None:
            for gauge in (metrics.OUTBOX_BACKLOG, metrics.OUTBOX_OLDEST_PENDING_AGE):
                with contextlib.suppress(KeyError):  # never exported by this relay
                    gauge.remove(self.service, self.lane)
            return
        window = self._window_backlog()
        try:
            backlog, age = window if window is not None else (self.backlog(), self.oldest_pending_age())
            metrics.OUTBOX_BACKLOG.labels(self.service, self.lane).set(backlog)
            metrics.OUTBOX_OLDEST_PENDING_AGE.labels(self.service, self.lane).set(age)
        except PyMongoError as exc:
            log.warning("outbox backlog of %s (lane %s) unknown: %s", self.service, self.lane, exc)

    def _window_backlog(self) -> tuple[int, float] | None:
        """The lane's unpublished events and the age of the oldest, as this relay's window holds them, when that is
        all of them: it holds the lease and its last read reached the end of the stream with room in the window, so
        everything committed before that read is either confirmed or in the window. None when the database must
        count (no stream, a failed pass, a full window, another replica holding the lease)."""
        if self.token is None or self._stream is None or not self._read_to_end:
            return None
        if not self._inflight:
            return 0, 0.0
        oldest = self._inflight[0].wall  # the window is in commit order, its head the oldest unconfirmed change
        if oldest is None:
            return None
        return self._inflight_events, max(0.0, (utc_now() - _aware(oldest)).total_seconds())

    # -- leadership ------------------------------------------------------------------------------------------

    def acquire_lease(self) -> bool:
        """Hold the lane's lease: extend it while this relay holds it with its token (once a third of it has passed:
        an idle relay polling often writes no more often than that), or take it over once it expired (raising the
        fencing token). False while another relay holds it."""
        if self.token is not None and time.monotonic() - self._renewed_at < self.lease_seconds / 3:
            return True
        if self.token is None and time.monotonic() < self._held_elsewhere_until:
            return False
        now = utc_now()
        expires_at = now + timedelta(seconds=self.lease_seconds)
        with pymongo.timeout(self.operation_timeout):
            if self.token is not None and self.db[RELAY_LEASES].update_one(
                    {"_id": self.lease_id, "owner": self.owner, "token": self.token},
                    {"$set": {"expires_at": expires_at}}).matched_count:
                self._renewed_at = time.monotonic()
                return True
            try:
                taken = self.db[RELAY_LEASES].find_one_and_update(
                    {"_id": self.lease_id, "expires_at": {"$lt": now}},
                    {"$set": {"owner": self.owner, "lane": self.lane, "expires_at": expires_at},
                     "$inc": {"token": 1}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # held by another relay
                self.token = None
                self._wait_for_expiry()
                return False
        self.token = taken["token"]
        self._renewed_at = time.monotonic()
        self._forget()  # a new holder starts from the stored position, not from what it read before
        return True

    def _wait_for_expiry(self) -> None:
        """Ask for the lease held by another relay again only once it could have run out (at most ``lease_seconds``
        from now): a replica's relay is woken at each of its commits, and a failed take-over at each of them is a
        database write that competes with the service's transactions for nothing."""
        with pymongo.timeout(self.operation_timeout):
            lease = self.db[RELAY_LEASES].find_one({"_id": self.lease_id}, {"expires_at": 1}) or {}
        expires_at = lease.get("expires_at")
        left = 0.0 if expires_at is None else (_aware(expires_at) - utc_now()).total_seconds()
        self._held_elsewhere_until = time.monotonic() + min(max(left, 0.0), self.lease_seconds)

    def _forget(self) -> None:
        self._close_stream()
        self._inflight.clear()
        self._inflight_events = 0
        self._pending_subjects.clear()
        self._unstored = None
        self._read_to_end = False
        self._scanned.clear()
        self._out.clear()

    # -- following the stream --------------------------------------------------------------------------------

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def _open_stream(self) -> None:
        """Open the change stream at the lane's stored position (its first time: the position of the relay before
        lanes, which had published every lane's events before it); without one (or past its history) start afresh
        with a snapshot of the lane's documents in the segments not passed yet."""
        with pymongo.timeout(self.operation_timeout):
            lease = self.db[RELAY_LEASES].find_one({"_id": self.lease_id}) or {}
            if lease.get("position") is None:
                lease = self.db[RELAY_LEASES].find_one({"_id": LEASE_ID}) or {}
            position = lease.get("position")
            if position is not None:
                try:
                    self._stream = self._watch(resume_after=position)
                    return
                except OperationFailure as exc:
                    if exc.code not in HISTORY_LOST_CODES:
                        raise
                    log.warning("the outbox stream of %s (lane %s) cannot resume from its position (%s); reading "
                                "the segments not passed yet again", self.service, self.lane, exc)
            self._stream = self._watch()
            start = self._stream.resume_token
            passed = lease.get("position_time")
            self._scan(_aware(passed) if passed else None, start)

    def _watch(self, await_ms: int = PUBLISHING_AWAIT_MS, **options):
        self._stream_await_ms = await_ms
        return self.db.watch(stream_match(self.lane), batch_size=self.batch_size * 2, max_await_time_ms=await_ms,
                             **options)

    def _reopen_stream(self, await_ms: int) -> None:
        """The same stream, from its resume token (after the last change it returned), with another read wait: the
        idle wait, or the short one of publishing. Nothing it read is lost: what it buffered is read again."""
        token = self._stream.resume_token
        self._close_stream()
        with pymongo.timeout(self.operation_timeout):
            self._stream = self._watch(await_ms, resume_after=token)

    def _scan(self, passed: datetime | None, start: dict) -> None:
        """The lane's events in the segments the position has not passed, in one snapshot, oldest first; the last
        document carries the new stream's start as its position (nothing read: the start is the position at once)."""
        changes = []
        with self.db.client.start_session(snapshot=True) as session:
            legacy = [_event(doc) for doc in self.db[LEGACY_OUTBOX].find({"status": "pending"}, session=session)
                      .sort("_id", 1)]
            self._legacy_scanned = bool(legacy)
            changes += [_Change(None, None, None, [event]) for event in legacy if event_lane(event) == self.lane]
            for name in segments(self.db):
                if passed is not None and segment_end(name) + timedelta(seconds=self.drop_grace) <= passed:
                    continue  # the stream passed it (and nothing commits into it any more)
                for doc in self.db[name].find(lane_documents(self.lane), session=session).sort("_id", 1):
                    events = self._events_of(doc)
                    if events:
                        changes.append(_Change(None, doc.get("created_at"), doc["_id"], events))
                        self._scanned.add(doc["_id"])
        if changes:
            changes[-1].token = start
        else:
            self._store_position(start, utc_now(), None)
        for change in changes:
            self._add(change)

    def _add(self, change: _Change) -> None:
        change.left = len(change.events)
        change.keys = [(event["event_id"], event_subject(event)) for event in change.events]
        self._pending_subjects.update(subject for _, subject in change.keys)
        self._inflight.append(change)
        self._inflight_events += change.left

    def _read(self) -> bool:
        """Read what the stream has now into the in-flight window (up to ``read_ahead`` events), with at most one
        round trip to the server: under a steady trickle of commits every round trip finds something, and reading
        on until one comes back empty would never get to publishing. True if anything was read."""
        read = self._read_to_end = False
        with pymongo.timeout(self.operation_timeout):
            while self._inflight_events < self.read_ahead:
                change = self._stream.try_next()
                if change is None:
                    self._read_to_end = True
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
        if doc.get("_id") in self._scanned:  # committed after the stream opened and before the snapshot: read there
            return False
        events = self._events_of(doc)
        if not events:
            return False
        wall = change.get("wallTime")
        self._add(_Change(change["_id"], _aware(wall) if wall else None, doc.get("_id"), events))
        self._took_at = time.monotonic()
        return True

    def _events_of(self, doc: dict) -> list[dict]:
        """The events of an outbox document this lane's relay publishes: all of a document of its lane, those of its
        lane in a document written before lanes."""
        events = doc.get("events") or []
        if doc.get("lane") is not None:
            return list(events) if doc["lane"] == self.lane else []
        return [event for event in events if event_lane(event) == self.lane]

    # -- publishing ------------------------------------------------------------------------------------------

    def publish_pending(self) -> int:
        """Publish what the outbox's stream holds until it holds nothing more that can go now. Returns how many
        events were published (confirmed and routed)."""
        if self._stream is None:
            self._open_stream()
        elif self._stream_await_ms != PUBLISHING_AWAIT_MS:  # after the idle wait: an empty read ends the pass
            self._reopen_stream(PUBLISHING_AWAIT_MS)
        published = 0
        reading = None  # the read of the stream under way (a greenthread) while batches are out at the broker
        out: deque[tuple[list[dict], Sent]] = deque()  # batches written to the broker, oldest first
        try:
            while self._running:
                batch = self._next_batch()
                if batch:
                    out.append((batch, self._send_batch(batch)))
                    # The database reads the next changes while the broker takes the batches out. A read only appends
                    # to the window, after the changes read before; one at a time.
                    if reading is not None and reading.dead:
                        reading.wait()  # a read that failed fails the pass
                        reading = None
                    if reading is None:
                        reading = eventlet.spawn(self._read_from_now)
                if out and (len(out) >= IN_FLIGHT_BATCHES or not batch):
                    oldest, sent = out.popleft()
                    published += self._confirm(oldest, self._confirmed(oldest, sent))
                    self._advance()
                    continue
                if batch:
                    continue
                # Nothing to publish now and nothing at the broker: whether the stream had more decides.
                (quiet_since, read), reading = (self._read_from_now() if reading is None else reading.wait()), None
                if not read and not self._inflight:
                    self._store_idle(quiet_since)
                if not read:
                    break
        finally:
            if reading is not None:  # a failed pass: let the read end before the window is forgotten
                with contextlib.suppress(Exception):
                    reading.wait()
        return published

    def _read_from_now(self) -> tuple[datetime, bool]:
        """When the read began (everything committed before it is in the stream), and whether it read anything."""
        return utc_now(), self._read()

    def _next_batch(self) -> list[dict]:
        """Up to ``batch_size`` events, oldest first, at most one per aggregate: the earliest unconfirmed one, unless
        it is at the broker already (in a batch written before) or waiting out a back-off. So the broker never holds
        two events of an aggregate unconfirmed at once, and one it refuses never lets a later one go ahead of it."""
        now = time.monotonic()
        batch: list[dict] = []
        seen: set = set()
        for change in self._inflight:
            if len(seen) == len(self._pending_subjects):
                break  # every aggregate with an unconfirmed event was looked at: nothing later can go
            if not change.left:
                continue  # all confirmed (a change before it is not yet)
            for event, (event_id, subject) in zip(change.events, change.keys, strict=True):
                if event_id in change.confirmed or subject in seen:
                    continue
                seen.add(subject)
                if event_id in self._out or self._refused.get(event_id, (0.0, 0.0))[0] > now:
                    continue
                batch.append({**event, "_id": event_id, "_change": change})
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
                subject = event_subject(event)
                if self._pending_subjects[subject] > 1:
                    self._pending_subjects[subject] -= 1
                else:  # its aggregate has no unconfirmed event left
                    del self._pending_subjects[subject]
                continue
            if failure is None:
                continue
            backoff = min(self._refused.get(event_id, (0.0, REFUSED_RETRY_SECONDS[0] / 2))[1] * 2,
                          REFUSED_RETRY_SECONDS[1])
            self._refused[event_id] = (time.monotonic() + backoff, backoff)
            log.warning("%s; it stays in the outbox (next try in %.0f s), and later events of %s wait for it",
                        failure, backoff, event_subject(event))
        metrics.EVENTS_PUBLISHED.labels(self.service, self.lane).inc(len(done))
        return len(done)

    def _advance(self) -> None:
        """Take the position after the longest fully confirmed prefix of what was read; store it once
        ``position_interval`` passed since the last store (otherwise keep the lease), then drop the segments the
        stored positions passed."""
        token, wall, newest = None, None, None
        while self._inflight and self._inflight[0].left == 0:
            change = self._inflight.popleft()
            if change.doc_id is not None and (newest is None or change.doc_id > newest):
                newest = change.doc_id
            if change.token is not None:
                token, wall = change.token, change.wall or utc_now()
        if token is not None:
            self._passed(token, wall, newest)
        if self._unstored is not None and self._store_due():
            self._store_unstored()
        elif time.monotonic() - self._renewed_at > self.lease_seconds / 3 and not self.acquire_lease():
            raise LeaseLost(f"the outbox relay lease of {self.service} (lane {self.lane}) was taken over")
        self._drop_passed()

    def _passed(self, token: dict, wall: datetime, newest: ObjectId | None) -> None:
        """Everything up to ``token`` was confirmed: the position to store next (with the newest document passed)."""
        if self._unstored is not None and self._unstored.newest is not None:
            newest = self._unstored.newest if newest is None else max(newest, self._unstored.newest)
        self._unstored = _Position(token, wall, newest)

    def _store_due(self) -> bool:
        return time.monotonic() - self._stored_at >= self.position_interval

    def _store_unstored(self) -> None:
        position, self._unstored = self._unstored, None  # a failed store is not retried: it publishes again
        if position is not None:
            self._store_position(*position)

    def _store_quietly(self) -> None:
        """Store the confirmed position not stored yet, if this relay still holds the lease: at a stop and when the
        broker failed, so the next pass or holder does not publish it all again. A failure is only logged."""
        if self._unstored is None or self.token is None:
            return
        try:
            with pymongo.timeout(STOP_STORE_TIMEOUT_SECONDS):
                self._store_unstored()
        except (PyMongoError, LeaseLost) as exc:
            log.warning("outbox relay of %s (lane %s) could not store its position; the events after the stored "
                        "one go out again: %s", self.service, self.lane, exc)

    def _store_idle(self, quiet_since: datetime) -> None:
        """Nothing in flight and the stream had nothing more: its current position covers everything committed
        before ``quiet_since``. Stored once ``position_interval`` passed when a confirmed position waits to be stored,
        and every IDLE_CHORE_SECONDS anyway (segments are dropped on a quiet outbox too)."""
        if self._stream is None:
            return
        token, now = self._stream.resume_token, time.monotonic()
        waiting = self._unstored is not None and self._store_due()
        if token is not None and (waiting or now - self._stored_idle_at >= IDLE_CHORE_SECONDS):
            self._stored_idle_at = now
            waited, self._unstored = self._unstored, None
            self._store_position(token, quiet_since, waited.newest if waited else None)
        self._drop_passed()

    def _store_position(self, token: dict, wall: datetime, newest: ObjectId | None) -> None:
        """The stream position after which events of the lane remain to publish; fenced by the lease's token (at
        most one write per ``position_interval`` while publishing, which also extends the lease). Any position
        stored after a snapshot is past all of it, so the old outbox's pending events of the lane (read in the
        snapshot) went out before it."""
        update: dict = {"$set": {"position": token, "position_time": wall,
                                 "expires_at": utc_now() + timedelta(seconds=self.lease_seconds)}}
        if newest is not None:
            update["$max"] = {"published_id": newest}
        legacy_passed = self._legacy_scanned
        if legacy_passed:
            update["$set"]["legacy_published"] = True
        with pymongo.timeout(self.operation_timeout):
            held = self.db[RELAY_LEASES].update_one({"_id": self.lease_id, "owner": self.owner, "token": self.token},
                                                    update)
        if not held.matched_count:
            self.token = None
            self._forget()
            raise LeaseLost(f"the outbox relay lease of {self.service} (lane {self.lane}) was taken over; not "
                            "storing its position")
        self._renewed_at = self._stored_at = time.monotonic()
        if legacy_passed:
            self._legacy_scanned = False
            with pymongo.timeout(self.operation_timeout):
                published = {lease["_id"] for lease in self.db[RELAY_LEASES].find({"legacy_published": True})}
                if published >= {lease_id(lane) for lane in LANES}:  # every lane's pending events went out
                    self.db.drop_collection(LEGACY_OUTBOX)

    def prepare_segments(self) -> list[str]:
        """Create the current and the next segment if missing; returns the segments present before.

        Made ahead, by every replica and whatever the broker does: a collection created inside a transaction holds
        up every other writer to it until that transaction ends (the first of each minute would otherwise)."""
        present = prepare_segments(self.db, self.segment_seconds)
        self._prepared_at = time.monotonic()
        return present

    def _drop_passed(self) -> None:
        """Drop every segment that no lane needs any more (at most once a second): for each lane, its stored
        position (read from its lease; a lane that never stored one: the position of the relay before lanes, where
        its first start begins) passed the segment's end ``retention_seconds`` ago, or the segment holds no
        document of the lane. The second is looked at only once nothing can commit into the segment (its end is
        ``drop_grace`` ago), and remembered: a lane whose relay has not run, or has stopped, holds up only the
        segments with its own events, which are the ones its (first) start reads."""
        if time.monotonic() - self._dropped_at < 1.0:
            return
        self._dropped_at = time.monotonic()
        self._store_unstored()  # the drop goes by the stored positions: this relay's is stored first
        with pymongo.timeout(self.operation_timeout):
            present = self.prepare_segments()
            passed = lane_positions(self.db)
            closed_before = utc_now() - timedelta(seconds=self.drop_grace)
            for name in present:
                if segment_end(name) > closed_before:
                    break  # a transaction may still commit into it, and into every later one
                if all(self._no_longer_needed(name, lane, passed[lane]) for lane in LANES):
                    self.db.drop_collection(name)
                    for lane in LANES:
                        self._holds_lane.pop((name, lane), None)
                    log.info("outbox segment %s of %s dropped: every lane published its events", name, self.service)

    def _no_longer_needed(self, name: str, lane: str, passed: datetime | None) -> bool:
        if passed is not None and segment_end(name) + timedelta(seconds=self.retention_seconds) <= passed:
            return True
        if (name, lane) not in self._holds_lane:  # final: nothing commits into a closed segment any more
            # Two lookups the index answers with one document each (one ``$in`` fetched every match first).
            self._holds_lane[name, lane] = any(self.db[name].find_one(query, {"_id": 1}) is not None
                                               for query in ({"lane": lane}, BEFORE_LANES))
        return not self._holds_lane[name, lane]

    def _send_batch(self, batch: list[dict]) -> Sent:
        """Write a batch to the broker in a few large writes (its confirms are taken by ``_confirmed``: pipelined, not
        a round trip per event)."""
        messages = []
        for doc in batch:
            body, headers = event_body(doc), doc.get("headers") or {}
            messages.append(Outgoing(self.exchange.name, doc["routing_key"], body, headers, doc["event_id"]))
            tenant = event_tenant(doc)
            if tenant:
                # The tenant's copy: not mandatory, a tenant need not listen; confirmed like the first.
                messages.append(Outgoing(FEED_EXCHANGE, f"{tenant}.{doc['routing_key']}", body, headers,
                                         doc["event_id"], mandatory=False))
        sent = self._publisher.send(messages)
        self._out.update(doc["event_id"] for doc in batch)
        return sent

    def _confirmed(self, batch: list[dict], sent: Sent) -> list:
        """Wait for the confirms of a batch ``_send_batch`` wrote (the oldest at the broker).

        Returns the ids of the events the broker both routed and confirmed, in batch order; each refused one's
        failure is left in ``_failure``. No other event of a batch's aggregates was at the broker with it
        (``_next_batch``), so a refused event never lets a later one of its aggregate go ahead of it.
        """
        self._failure.clear()
        try:
            outcomes = iter(self._publisher.outcomes(sent))
        except ConfirmTimeout as exc:
            raise PublishFailed(str(exc)) from exc
        self._out.difference_update(doc["event_id"] for doc in batch)
        confirmed = []
        for doc in batch:
            outcome = next(outcomes)
            feed = next(outcomes) if event_tenant(doc) else ACKED
            if outcome == NACKED:
                metrics.EVENTS_REFUSED.labels(self.service, "nack", self.lane).inc()
                self._failure[doc["event_id"]] = PublishFailed(f"the broker refused {doc['routing_key']} (nack)")
                continue
            if feed == NACKED:
                # Only the tenant's own queues are bound to its feed key: one that refuses (full, and declared to
                # reject new messages) is its owner's choice, and must not hold up every other event.
                log.warning("the feed queues of %s refused %s %s", event_tenant(doc),
                            doc["routing_key"], doc["event_id"])
            if outcome == RETURNED and doc["routing_key"] in self.subscribed_types:
                # Someone is declared to consume it, so its queue must exist: keep it until the topology does.
                metrics.EVENTS_REFUSED.labels(self.service, "unroutable", self.lane).inc()
                self._failure[doc["event_id"]] = Unroutable(
                    f"{doc['routing_key']} from {self.service} has no queue bound; run `tasklinkr topology apply`"
                )
                continue
            # An event no service subscribes to (yet) is confirmed with nobody to route it to: that is delivered.
            confirmed.append(doc["_id"])
        return confirmed

    def _disconnect(self) -> None:
        self._publisher.close()

    def oldest_pending_age(self) -> float:
        """Seconds since the lane's oldest event not yet published was committed; 0 when none is pending."""
        oldest = _oldest_pending(self.db, self.lane)
        if oldest is None:
            return 0.0
        return max(0.0, (utc_now() - _aware(oldest)).total_seconds())

    def backlog(self) -> int:
        try:
            with pymongo.timeout(self.operation_timeout):
                return pending_count(self.db, self.lane)
        except PyMongoError:
            return -1


def prepare_segments(db, seconds: int = SEGMENT_SECONDS) -> list[str]:
    """Create the current and the next segment (of ``seconds``) if missing, each with an index on ``lane`` and
    ``_id`` (``SEGMENT_INDEX``: what a lane's start-up scan and the drop's look for a lane's documents ask for, and
    the lane's documents after the newest it published, which ``pending_count`` reads); returns the segments present
    before. An index on ``lane`` cost a writer nothing measurable (300 inserts: 0.59 s with it, 0.62 s without)."""
    present = segments(db)
    now = utc_now()
    for name in {segment_name(now, seconds), segment_name(now + timedelta(seconds=seconds), seconds)} - set(present):
        try:
            db.create_collection(name)
        except (CollectionInvalid, OperationFailure):
            continue  # a writer made it meanwhile, without the index: looking in it reads it whole, only slower
        with contextlib.suppress(OperationFailure):  # the index only makes looking in it faster
            db[name].create_index(SEGMENT_INDEX)
    return present


def _event(doc: dict) -> dict:
    return {key: doc.get(key) for key in ("event_id", "routing_key", "envelope", "headers")}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _leases(db) -> dict[str, dict]:
    """The relay lease documents by id: each lane's (``lease_id``) and the one from before lanes (``LEASE_ID``)."""
    return {lease["_id"]: lease for lease in db[RELAY_LEASES].find({})}


def _lanes(lane: str | None) -> tuple[str, ...]:
    return (Lane(lane).value,) if lane else tuple(item.value for item in LANES)


def lane_positions(db, leases: dict[str, dict] | None = None) -> dict[str, datetime | None]:
    """The commit time each lane's relay stored its position at; for a lane whose relay stored none yet, that of
    the relay before lanes (where its first start begins); None when neither."""
    leases = _leases(db) if leases is None else leases
    before = leases.get(LEASE_ID, {}).get("position_time")
    found = {lane: leases.get(lease_id(lane), {}).get("position_time") or before for lane in _lanes(None)}
    return {lane: _aware(moment) if moment else None for lane, moment in found.items()}


def _published_up_to(leases: dict[str, dict], lane: str) -> ObjectId | None:
    """The newest outbox document id the lane's relay (or the relay before lanes) published: by id, so a transaction
    that took its id earlier and committed later is counted published until the relay gets to it (at most a
    transaction's lifetime)."""
    ids = [lease["published_id"] for lease in (leases.get(lease_id(lane)), leases.get(LEASE_ID))
           if lease and lease.get("published_id") is not None]
    return max(ids) if ids else None


def _pending_of(leases: dict[str, dict], lane: str) -> dict:
    """The lane's outbox documents not published yet: those after the newest it published (``SEGMENT_INDEX``
    answers it, reading only those)."""
    after = _published_up_to(leases, lane)
    return {"lane": lane, **({} if after is None else {"_id": {"$gt": after}})}


def _unpassed(name: str, lanes: tuple[str, ...], positions: dict[str, datetime | None]) -> tuple[str, ...]:
    """Of ``lanes``, those whose stored position has not passed segment ``name``: a position ``DROP_GRACE_SECONDS``
    past its end passed every document of it (nothing commits into it later), so none of them is pending."""
    return tuple(lane for lane in lanes if positions[lane] is None
                 or segment_end(name) + timedelta(seconds=DROP_GRACE_SECONDS) > positions[lane])


def _pending_in(doc: dict, leases: dict[str, dict], lanes: tuple[str, ...]) -> int:
    """How many events of a document written before lanes are pending in ``lanes``."""
    def pending(lane: str) -> bool:
        after = _published_up_to(leases, lane)
        return lane in lanes and (after is None or doc["_id"] > after)
    return sum(1 for event in doc.get("events") or [] if pending(event_lane(event)))


def _legacy_pending(db, leases: dict[str, dict], lanes: tuple[str, ...]) -> list[dict]:
    """The old outbox's (before segments) pending events of ``lanes`` that their lane's relay has not published."""
    open_lanes = {lane for lane in lanes if not leases.get(lease_id(lane), {}).get("legacy_published")}
    if not open_lanes:
        return []
    return [doc for doc in db[LEGACY_OUTBOX].find({"status": "pending"}, {"created_at": 1, "envelope.lane": 1})
            .sort("_id", 1) if event_lane(doc) in open_lanes]


def pending_count(db, lane: str | None = None) -> int:
    """Events a service committed that the broker has not confirmed yet, of one lane or of all: its outbox backlog.

    Read from what the index gives: in each segment the lane's position has not passed, the ``count`` of each of the
    lane's documents after the newest it published, and the documents written before lanes (none, after an
    upgrade's first minutes). The documents before the published one are never read: a count under load costs what
    the backlog holds, not what the outbox holds."""
    lanes, leases = _lanes(lane), _leases(db)
    positions = lane_positions(db, leases)
    total = len(_legacy_pending(db, leases, lanes))
    for name in segments(db):
        unpassed = _unpassed(name, lanes, positions)
        for each in unpassed:
            total += sum(row["n"] for row in db[name].aggregate([{"$match": _pending_of(leases, each)},
                                                                 {"$group": {"_id": None, "n": {"$sum": "$count"}}}]))
        if unpassed:
            total += sum(_pending_in(doc, leases, unpassed) for doc in db[name].find(BEFORE_LANES, {"events": 1}))
    return total


def _oldest_pending(db, lane: str | None = None) -> datetime | None:
    lanes, leases = _lanes(lane), _leases(db)
    legacy = _legacy_pending(db, leases, lanes)
    if legacy:
        return legacy[0].get("created_at") or legacy[0]["_id"].generation_time
    positions = lane_positions(db, leases)
    for name in segments(db):
        unpassed = _unpassed(name, lanes, positions)
        if not unpassed:
            continue
        first = [doc for each in unpassed
                 for doc in db[name].find(_pending_of(leases, each), {"created_at": 1}).sort("_id", 1).limit(1)]
        first += [doc for doc in db[name].find(BEFORE_LANES, {"created_at": 1, "events": 1})
                  if _pending_in(doc, leases, unpassed)]
        if first:
            oldest = min(first, key=lambda doc: doc["_id"])
            return oldest.get("created_at") or oldest["_id"].generation_time
    return None


def relay_states(db) -> list[dict]:
    """Each lane's relay as its lease document tells: ``lane``, ``holder`` (None when nobody holds the lease),
    ``position_time`` (the commit time its stored position reached), ``backlog`` (its unpublished events)."""
    leases, positions, now = _leases(db), lane_positions(db), utc_now()
    states = []
    for lane in _lanes(None):
        lease = leases.get(lease_id(lane), {})
        held = lease.get("expires_at") is not None and _aware(lease["expires_at"]) > now
        states.append({"lane": lane, "holder": lease.get("owner") if held else None,
                       "position_time": positions[lane], "backlog": pending_count(db, lane)})
    return states


def outbox_size(db) -> int:
    """Events held in the outbox, published or not (what dropping segments bounds)."""
    return sum(row["n"] for name in segments(db)
               for row in db[name].aggregate([{"$group": {"_id": None, "n": {"$sum": "$count"}}}]))
