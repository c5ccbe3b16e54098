"""Each service's own MongoDB database, its transactions and its outbox.

``Database`` is the one DependencyProvider a service needs for persistence. At start-up it connects, creates
the platform's collections and indexes and those the service declares, and starts the service's outbox relay.
Each worker gets a ``Store``; ``store.transact(work)`` runs ``work(uow)`` in a MongoDB transaction, and every
event the work emits with ``uow.emit(...)`` is written to the outbox (its current time segment, ``outbox_*``, one
document per lane, more when a lane's events pass ``DOCUMENT_BYTES``) in that same transaction: a state change and
the events it causes commit together or not at all.
The relay of each lane the process runs (config ``LANES``, ``tasklinkr run --lane``) publishes its lane's events
afterwards, following the outbox's change stream (``shared/runtime/outbox.py``).

Why transactions: SecantusDB supports multi-document transactions as it ships; real MongoDB supports them on a
replica set, so docker compose runs every ``mongo`` as a single-node replica set.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Self, TypeVar

import pymongo
from nameko.extensions import DependencyProvider
from pymongo import ASCENDING, MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database as MongoDatabase
from pymongo.errors import DuplicateKeyError, ExecutionTimeout, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from shared.runtime import envelope as envelopes
from shared.runtime.inbox import APPLIED_EVENTS, applied_claims, claim_id, claim_record, ensure_claims_index
from shared.runtime.messaging import HANDLER_TIMEOUT_SECONDS
from shared.runtime.outbox import (
    POSITION_INTERVAL_SECONDS,
    OutboxRelay,
    event_lane,
    outbox_documents,
    outbox_event,
    prepare_segments,
    segment_name,
)
from shared.runtime.tracing import CORRELATION_KEY, handled_event
from shared.vocabulary.errors import OutcomeUnknown, Unavailable
from shared.vocabulary.terms import known_lanes

log = logging.getLogger(__name__)

T = TypeVar("T")


def connect(uri: str, *, app_name: str) -> MongoClient:
    if not uri:
        raise RuntimeError(
            "No MongoDB URI configured. Set TASKLINKR_MONGO_URI (or TASKLINKR_<SERVICE>_MONGO_URI), "
            "or start the stack with `make run`, which starts an embedded SecantusDB per service."
        )
    return MongoClient(
        uri,
        tz_aware=True,
        uuidRepresentation="standard",
        appname=app_name,
        serverSelectionTimeoutMS=10_000,
    )


DEFAULT_OUTBOX_RETENTION_SECONDS = 600
DEFAULT_INBOX_RETENTION_SECONDS = 604_800


def ensure_platform_indexes(db: MongoDatabase, *, outbox_retention_seconds: int = DEFAULT_OUTBOX_RETENTION_SECONDS,
                            inbox_retention_seconds: int = DEFAULT_INBOX_RETENTION_SECONDS) -> None:
    """The inbox's indexes: the unique one on its claims (``shared.runtime.inbox``), and the TTL index that prunes
    it: an applied event id leaves ``applied_events`` after ``inbox_retention_seconds``, after which a redelivery of
    it would be applied again.

    The outbox needs no index: its segments are read only through the change stream and dropped whole by the relay
    ``outbox_retention_seconds`` after it passed them (``OutboxRelay``); the argument is kept for callers' sake.
    """
    ensure_claims_index(db)
    ensure_ttl_index(db, APPLIED_EVENTS, "applied_at", inbox_retention_seconds)


def ensure_ttl_index(db: MongoDatabase, collection: str, field: str, seconds: int) -> None:
    """A TTL index on ``field``; a changed retention is applied to the existing index with ``collMod``."""
    name = f"{field}_ttl"
    current = db[collection].index_information().get(name)
    if current is None:
        db[collection].create_index([(field, ASCENDING)], name=name, expireAfterSeconds=int(seconds))
    elif current.get("expireAfterSeconds") != int(seconds):
        db.command("collMod", collection, index={"name": name, "expireAfterSeconds": int(seconds)})


class UnitOfWork:
    """One transaction: the session to pass to every read and write, and the events it emits.

    ``assume_new``: set on a batch's first try (``shared.runtime.batches``): its events were not applied before and
    what they bring is not stored yet, so nothing is read to check that. A write the assumption got wrong is refused
    by a unique index (``DuplicateKeyError``, or an ``insert_many``'s ``BulkWriteError`` of such errors, either of
    which aborts the transaction), and the batch is tried again without it (``batches.refused_as_duplicate``).
    """

    assume_new = False

    def __init__(self, db: MongoDatabase, session: ClientSession, service: str, correlation_id: str | None,
                 causation_id: str | None):
        self.db = db
        self.session = session
        self.service = service
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self.emitted: list[dict] = []
        self._unwritten: list[dict] = []  # emitted, not in the outbox yet (``write_outbox``)

    def emit(self, routing_key: str, *, subject: str, data: dict, lane: str, tenant: str | None = None,
             time: datetime | None = None) -> dict:
        """Record an event in the outbox, in this transaction. Returns the envelope."""
        return self.emit_many([dict(routing_key=routing_key, subject=subject, data=data, lane=lane, tenant=tenant,
                                    time=time)])[0]

    def emit_many(self, events: list[dict]) -> list[dict]:
        """Record several events (each the keyword arguments of ``emit``) in this transaction, in order. Returns
        their envelopes.

        Every event the transaction emits goes into one outbox document, written when the work is done
        (``write_outbox``, called by ``Store.transact`` before the commit): one write, and one change in the
        outbox's stream, however many events and calls."""
        if not events:
            return []
        built = [envelopes.build(service=self.service, routing_key=event["routing_key"], subject=event["subject"],
                                 data=event["data"], lane=event["lane"], tenant=event.get("tenant"),
                                 correlation_id=self.correlation_id, causation_id=self.causation_id,
                                 time=event.get("time")) for event in events]
        self._unwritten.extend(outbox_event(envelope, event["routing_key"])
                               for event, envelope in zip(events, built, strict=True))
        self.emitted.extend(built)
        return built

    @contextlib.contextmanager
    def caused_by(self, event: dict) -> Iterator[None]:
        """While the transaction handles ``event`` of several (a batch): what it emits meanwhile has the event as
        its cause (causation id) and carries its correlation id on."""
        saved = self.correlation_id, self.causation_id
        self.correlation_id = event.get("correlationid") or self.correlation_id
        self.causation_id = event.get("id") or self.causation_id
        try:
            yield
        finally:
            self.correlation_id, self.causation_id = saved

    def write_outbox(self) -> None:
        """Write the events emitted so far as one outbox document per lane (one change in the stream of each lane's
        relay; several in a row when a lane's events pass ``DOCUMENT_BYTES``), in the segment of this moment."""
        if self._unwritten:
            created_at = envelopes.utc_now()
            self.db[segment_name(created_at)].insert_many(outbox_documents(self._unwritten, created_at),
                                                         session=self.session)
            self._unwritten = []

    def claim_event(self, event_id: str, consumer: str) -> None:
        """Record that ``consumer`` applies ``event_id``, in this transaction, so the record commits exactly when
        the handler's changes do.

        One insert, no look-up first: when the event was applied before, the unique index on the claims refuses it
        with ``DuplicateKeyError``, which aborts the transaction (nothing written in it survives; verified on the
        embedded server), and ``subscribe`` answers the delivery as a duplicate.
        """
        self.db[APPLIED_EVENTS].insert_one(claim_record(consumer, [event_id], envelopes.utc_now()),
                                           session=self.session)

    def claim_events(self, event_ids: list[str], consumer: str) -> list[str]:
        """``claim_event`` for a batch: the ids ``consumer`` has not applied before, each once, in order, claimed in
        this transaction with one read and one record holding them all. A claim committed meanwhile by a concurrent
        delivery makes the insert fail (``DuplicateKeyError``, or a write conflict the transaction is retried on).
        With ``assume_new``, no read: every id is claimed, and one applied before fails the insert the same way."""
        wanted = {claim_id(consumer, event_id): event_id for event_id in event_ids}
        applied = set() if self.assume_new else applied_claims(self.db[APPLIED_EVENTS], wanted, self.session)
        fresh = [event_id for claim, event_id in wanted.items() if claim not in applied]
        if fresh:
            self.db[APPLIED_EVENTS].insert_one(claim_record(consumer, fresh, envelopes.utc_now()),
                                               session=self.session)
        return fresh


class Store:
    """What a worker gets from ``Database``: the database, and transactions that carry the outbox."""

    def __init__(self, dependency: Database, worker_ctx):
        self._dependency = dependency
        self._worker_ctx = worker_ctx
        self.db: MongoDatabase = dependency.db
        self.handler_timeout: float = dependency.handler_timeout

    def _causation_id(self) -> str | None:
        event = handled_event(self._worker_ctx)
        return event.get("id") if event else None

    @property
    def transaction_timeout(self) -> float:
        return self._dependency.transaction_timeout

    def transact(self, work: Callable[[UnitOfWork], T], *, seconds: float | None = None) -> T:
        """Run ``work(uow)`` in a transaction (retried on transient errors) and wake the relay after commit.

        ``seconds``: its time budget, retries included; default ``TASKLINKR_TRANSACTION_TIMEOUT_SECONDS`` (a batch
        of deliveries gets more, ``shared.runtime.batches``)."""
        data = getattr(self._worker_ctx, "data", {}) or {}
        attempt: dict[str, UnitOfWork] = {}

        def callback(session: ClientSession) -> T:
            uow = UnitOfWork(self.db, session, self._dependency.service_name, data.get(CORRELATION_KEY),
                             self._causation_id())
            attempt["uow"] = uow
            result = work(uow)
            uow.write_outbox()
            return result

        # A crashed writer's open transaction keeps its documents locked until the server's transaction lifetime
        # ends (60 s by default). Give up well before that and let the caller retry, instead of holding a worker.
        try:
            with self._dependency.client.start_session() as session:
                result = run_transaction(session, callback, seconds=seconds or self.transaction_timeout)
        except PyMongoError as exc:
            if exc.has_error_label(UNKNOWN_COMMIT):
                raise OutcomeUnknown(
                    "The change was sent to the database but its answer was lost: it may or may not have been "
                    "applied. Retrying is safe where the request carries an idempotency key.",
                ) from exc
            if getattr(exc, "timeout", False) or exc.has_error_label(TRANSIENT):
                raise Unavailable(
                    "The data is busy (another change to it has not finished); retry in a few seconds.",
                    {"retry_after_seconds": 5},
                ) from exc
            raise
        self._dependency.notify_relays(attempt["uow"].emitted)
        return result

    def transact_keyed(self, work: Callable[[UnitOfWork], T]) -> T:
        """``transact`` for a request carrying idempotency keys: when the same keys arrived twice at once and the
        other request committed first (a unique index refuses this one), run ``work`` once more, and it answers
        as for a retry."""
        try:
            return self.transact(work)
        except DuplicateKeyError:
            return self.transact(work)


TRANSIENT = "TransientTransactionError"
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"
# Time an abort or a commit gets on its own, even when the transaction's time is up: an abort that is never sent
# (pymongo refuses to send anything once an operation timeout has run out) leaves the transaction open on the
# server, its documents locked for every other writer, until the server's lifetime limit (60 s) ends it.
FINISH_SECONDS = 2.0


def ran_out_of_time(exc: BaseException) -> bool:
    """Whether ``exc`` is a time-out of the database or its driver (the transaction's or a statement's time ran
    out), as against an error of the request itself."""
    return isinstance(exc, PyMongoError) and exc.timeout


def run_transaction(session: ClientSession, callback: Callable[[ClientSession], T], *, seconds: float) -> T:
    """``session.with_transaction`` with its retries bounded by ``seconds``, and a short jittered pause between them.

    pymongo's ``with_transaction`` retries transient errors for 120 s whatever the operation timeout; once that
    timeout has run out every attempt fails at once with another transient error (server selection), so a worker
    waiting on a crashed writer's lock spun for two minutes instead of answering "busy" after ``seconds`` (and ten
    such retries took every worker of the service). Here the last error is raised when ``seconds`` are up; each
    attempt's statements get what is left of them, and an attempt that fails or runs out of time is aborted on the
    server (with ``FINISH_SECONDS`` of its own), so it does not keep its documents locked. Call it outside any
    ``pymongo.timeout``: an enclosing one would cut those budgets short (nested timeouts only shorten). Running out
    of time after an earlier try failed transiently carries that failure as its context; any other error is the
    request's own and carries nothing.
    """
    deadline = time.monotonic() + seconds
    pause = 0.005
    last_transient: list[BaseException] = []

    def retry(exc: BaseException) -> bool:
        nonlocal pause
        if not (isinstance(exc, PyMongoError) and exc.has_error_label(TRANSIENT)):
            if last_transient and ran_out_of_time(exc) and exc is not last_transient[-1] and exc.__context__ is None:
                # Out of time after the database failed an earlier try (a conflict, a lost connection): that is
                # what the caller must see as the cause (``shared.vocabulary.errors.is_transient``), not a slow request.
                # Only running out of time: a handler that raises in the try after a conflict failed on its own.
                exc.__context__ = last_transient[-1]
            return False
        last_transient[:] = [exc]
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, random.uniform(0, pause)))
        pause = min(pause * 2, 0.2)
        return True

    while True:
        session.start_transaction(read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority"))
        try:
            with pymongo.timeout(max(deadline - time.monotonic(), 0.001)):
                result = callback(session)
            if session.in_transaction and time.monotonic() >= deadline:
                raise ExecutionTimeout("The transaction ran out of time before its commit.", code=50)
        except BaseException as exc:
            if session.in_transaction:
                with pymongo.timeout(FINISH_SECONDS), contextlib.suppress(PyMongoError):
                    session.abort_transaction()
            if retry(exc):
                continue
            raise
        if not session.in_transaction:  # the callback ended it itself
            return result
        try:
            with pymongo.timeout(max(deadline - time.monotonic(), FINISH_SECONDS)):
                _commit(session, deadline)
        except PyMongoError as exc:
            if retry(exc):
                continue
            raise
        return result


def _commit(session: ClientSession, deadline: float) -> None:
    """Commit; a commit whose outcome is unknown (the answer was lost) is sent again, as the driver specifies."""
    while True:
        try:
            session.commit_transaction()
            return
        except PyMongoError as exc:
            max_time_expired = getattr(exc, "code", None) == 50
            if exc.has_error_label(UNKNOWN_COMMIT) and not max_time_expired and time.monotonic() < deadline:
                continue
            raise


class SessionRepository:
    """A service's collections, read and written inside a unit of work's transaction (``of``), or, for queries,
    outside any (``SessionRepository(db)``)."""

    def __init__(self, db: MongoDatabase, session: ClientSession | None = None):
        self.db = db
        self.session = session

    @classmethod
    def of(cls, uow: UnitOfWork) -> Self:
        return cls(uow.db, uow.session)


class Database(DependencyProvider):
    """A service's own database, with its indexes and the outbox relay of each lane the process runs.

    ``ensure_indexes(db)`` is the service's own (``repository.ensure_indexes``), run once at start-up.
    """

    def __init__(self, ensure_indexes: Callable[[MongoDatabase], Any] | None = None):
        self.ensure_indexes = ensure_indexes
        self.client: MongoClient | None = None
        self.db: MongoDatabase | None = None
        self.relays: dict[str, OutboxRelay] = {}

    @property
    def service_name(self) -> str:
        return self.container.service_name

    def setup(self) -> None:
        config = self.container.config
        self.client = connect(config.get("MONGO_URI", ""), app_name=f"tasklinkr-{self.service_name}")
        self.db = self.client[config.get("MONGO_DATABASE") or f"tasklinkr_{self.service_name}"]
        self.transaction_timeout = float(config.get("TRANSACTION_TIMEOUT_SECONDS") or 5.0)
        self.handler_timeout = float(config.get("HANDLER_TIMEOUT_SECONDS") or HANDLER_TIMEOUT_SECONDS)
        ensure_platform_indexes(
            self.db,
            outbox_retention_seconds=int(config.get("OUTBOX_RETENTION_SECONDS") or DEFAULT_OUTBOX_RETENTION_SECONDS),
            inbox_retention_seconds=int(config.get("INBOX_RETENTION_SECONDS") or DEFAULT_INBOX_RETENTION_SECONDS),
        )
        if self.ensure_indexes:
            self.ensure_indexes(self.db)
        # One relay per lane this process runs, each with its own lease and position: a backlog in one lane's
        # events never holds up another's. A process of one lane (`tasklinkr run --lane`) relays only that lane.
        self.relays = {lane.value: OutboxRelay(
            db=self.db,
            amqp_uri=config["AMQP_URI"],
            service=self.service_name,
            lane=lane,
            poll_seconds=float(config.get("OUTBOX_POLL_SECONDS", 1.0)),
            batch_size=int(config.get("OUTBOX_BATCH_SIZE", 200)),
            lease_seconds=float(config.get("OUTBOX_LEASE_SECONDS", 10.0)),
            position_interval=float(config.get("OUTBOX_POSITION_INTERVAL_SECONDS", POSITION_INTERVAL_SECONDS)),
            retention_seconds=float(config.get("OUTBOX_RETENTION_SECONDS") or DEFAULT_OUTBOX_RETENTION_SECONDS),
        ) for lane in known_lanes(config.get("LANES"))}
        # Before the first handler can commit: a transaction that had to create its outbox segment would hold up
        # every other writer to it (the relays keep making them ahead from then on).
        prepare_segments(self.db)

    def start(self) -> None:
        for lane, relay in self.relays.items():
            self.container.spawn_managed_thread(relay.run, identifier=f"{self.service_name}.outbox_relay.{lane}")

    def notify_relays(self, emitted: list[dict]) -> None:
        """Wake the relays of the lanes a committed transaction emitted events in (a lane this process does not
        run is published by its own process, which finds them at its next poll)."""
        for lane in {event_lane({"envelope": envelope}) for envelope in emitted}:
            relay = self.relays.get(lane)
            if relay is not None:
                relay.notify()

    def stop(self) -> None:
        for relay in self.relays.values():
            relay.stop()
        if self.client:
            self.client.close()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx) -> Store:
        return Store(self, worker_ctx)

    def ping(self) -> bool:
        self.db.command("ping")
        return True


def is_duplicate(exc: BaseException) -> bool:
    return isinstance(exc, DuplicateKeyError)
