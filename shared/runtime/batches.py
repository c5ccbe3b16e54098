"""Consuming a hot event in batches: many deliveries, one handler call, one transaction, one outbox document.

    @subscribe_batch("postings", events.POSTING_PUBLISHED)
    def on_postings_published(self, uow, envelopes): ...   # a list, in delivery order, each applied once

Everything ``shared.runtime.messaging`` promises for ``subscribe`` holds, per message:

- Collecting: a delivery is decoded and contract-checked on arrival (a bad one is parked alone, as ever) and joins
  the batch being collected; the batch is complete when it holds the handler's batch size (``max_batch``, 50
  unless it names one; ``TASKLINKR_BATCH_MAX_SIZE`` when an operator sets it) or its wait (5 ms;
  ``TASKLINKR_BATCH_MAX_WAIT_MS``) has passed since its first arrived, whichever comes first, and goes to a worker
  once a slot is free, topped up with what arrived meanwhile. A handler has one slot per lane and process unless it
  asks for more (``in_flight``): one batch is handled while the next one fills. The consumer's prefetch is raised to the
  batch size times one more than the slots (``ParkingQueueConsumer.prefetch_count``), so a full batch is waiting
  whenever a slot frees.
- Applying: one transaction claims every event id in the inbox with one record holding them all
  (``shared.runtime.inbox``; an id applied before, or twice in the batch, is dropped: applied once), calls the
  handler once with the rest, writes every event it emits as one outbox document (``Store.transact``), and commits
  (its time budget: one transaction's, ``TASKLINKR_TRANSACTION_TIMEOUT_SECONDS``, per ten deliveries, within the
  handler's deadline). All the deliveries are acknowledged only after that commit: a process that dies before
  redelivers them all, and the inbox answers them as duplicates.
- Assuming new: the first try of a batch reads nothing to check that its events and what they bring are new
  (``UnitOfWork.assume_new``: the inbox claims every id, a handler may skip its own reads, as matching's
  publications do). Where that was wrong, a unique index refuses a write (an id applied before, a document already
  stored), the transaction aborts with nothing written, and the batch is tried again at once reading what is
  there (``tasklinkr_batches_retried_total``). Two reads a batch fewer cost the embedded server 0.05-0.18 ms of CPU
  per delivery less (issue 16); a redelivery after a crash costs one aborted transaction more.
- Failing: a transient failure (``shared.vocabulary.errors.is_transient``) defers every delivery of the batch, as a
  single delivery is deferred, its attempts unchanged. Any other failure (the handler raised, ran past the deadline,
  a unique index refused a write) is not charged to the batch: each delivery is tried again alone, at once, in a
  transaction of its own (a batch of one), so a poison message never fails its neighbours; it alone spends attempts,
  goes through the delay queues and is parked. A delivery that comes back from a delay queue (attempts > 0) is
  handled alone too, never batched again.

What a batch did shows in ``tasklinkr_batch_size`` (deliveries per handler call), ``tasklinkr_batches_retried_total``
(first tries that met something stored) and ``tasklinkr_batches_split_total`` (batches tried again one by one) beside
the per-message series of ``messaging``.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import eventlet
from eventlet.queue import Empty, LightQueue
from eventlet.semaphore import Semaphore
from nameko.events import SERVICE_POOL
from nameko.exceptions import ContainerBeingKilled
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.runtime import metrics
from shared.runtime.inbox import APPLIED_EVENTS, applied_claims, claim_id
from shared.runtime.messaging import (
    ATTEMPTS_HEADER,
    MAX_ERROR_CHARS,
    HandlerTimedOut,
    ReliableEventHandler,
    attempts_of,
    envelope_lane,
)
from shared.vocabulary.errors import is_transient
from shared.vocabulary.terms import DEFAULT_LANE, LANES

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 50
DEFAULT_MAX_WAIT_MS = 5.0
# Batches of one handler (and lane) a process handles at once, unless the handler asks for more: one batch being
# handled while the next one fills (the prefetch holds one batch more than are in flight).
BATCHES_IN_FLIGHT = 1
DELIVERIES_PER_BUDGET = 10


def batch_settings(config: dict, max_batch: int | None, max_wait_ms: float | None) -> tuple[int, float]:
    """The batch size and the longest wait (seconds): the service's settings where an operator set them, else the
    handler's own (the decorator's), else ``DEFAULT_MAX_BATCH`` and ``DEFAULT_MAX_WAIT_MS``."""
    def chosen(own, key: str, default):
        return config[key] if config.get(key) not in (None, "") else own if own is not None else default

    size = int(chosen(max_batch, "BATCH_MAX_SIZE", DEFAULT_MAX_BATCH))
    wait = float(chosen(max_wait_ms, "BATCH_MAX_WAIT_MS", DEFAULT_MAX_WAIT_MS))
    if size < 1 or wait < 0:
        raise ValueError("a batch holds at least one delivery and waits no negative time")
    return size, wait / 1000


def collect(inbox: LightQueue, max_batch: int, max_wait: float) -> list:
    """The next batch from ``inbox``: waits for a first delivery, then takes what arrives within ``max_wait`` of it,
    up to ``max_batch``."""
    batch = [inbox.get()]
    deadline = time.monotonic() + max_wait
    while len(batch) < max_batch:
        left = deadline - time.monotonic()
        try:
            batch.append(inbox.get(timeout=left) if left > 0 else inbox.get_nowait())
        except Empty:
            break
    return batch


def top_up(inbox: LightQueue, batch: list, max_batch: int) -> list:
    """``batch`` with whatever else has arrived meanwhile, up to ``max_batch``."""
    while len(batch) < max_batch:
        try:
            batch.append(inbox.get_nowait())
        except Empty:
            break
    return batch


class BatchedEventHandler(ReliableEventHandler):
    """One lane's consumer of a batched handler (``subscribe_batch`` registers one per lane).

    Deliveries that pass their checks go to an inbox; one dispatcher (a managed thread) makes batches of them
    (``collect``) and hands each to a worker, ``in_flight`` at a time: while they are handled the next one fills
    (``top_up``), so batches grow when the consumer falls behind and stay small, and quick, when it keeps up.

    One at a time (the default) keeps a batch's transaction short on a busy machine and applies a queue's
    deliveries in their order. A handler whose deliveries are independent of each other (matching's
    ``posting.published``: one posting each, guarded by its version and its document's id) takes two: while one
    batch waits on the database (its writes, its commit) the process works out the next one, instead of idling."""

    def __init__(self, *args, max_batch: int | None = None, max_wait_ms: float | None = None,
                 in_flight: int = BATCHES_IN_FLIGHT, **kwargs):
        if in_flight < 1:
            raise ValueError("a batched handler takes at least one batch at a time")
        self._max_batch, self._max_wait_ms, self.in_flight = max_batch, max_wait_ms, in_flight
        super().__init__(*args, **kwargs)

    def setup(self):
        self.configure_batching()
        super().setup()

    def configure_batching(self) -> None:
        self.max_batch, self.max_wait = batch_settings(self.container.config, self._max_batch, self._max_wait_ms)
        self.prefetch_wanted = self.max_batch * (self.in_flight + 1)
        self.inbox: LightQueue = LightQueue()
        self.slots = Semaphore(self.in_flight)

    def start(self):
        if getattr(self, "consuming", True):
            self.container.spawn_managed_thread(self.dispatch, identifier=f"{self.method_name}.{self.lane}.batches")
        super().start()

    # -- collecting --------------------------------------------------------------------------------------------

    def handle_message(self, body, message):
        reason = self.contract_violation(body)
        if reason:
            self.park(message, reason, attempts=0, kind="contract")
            return
        if attempts_of(message.headers, ATTEMPTS_HEADER) > 0:
            self.spawn([(body, message)])  # back from a delay queue: it failed alone, it is retried alone
            return
        self.inbox.put((body, message))

    def dispatch(self) -> None:
        """For ever: the next batch, once a slot is free, topped up with what arrived while it waited for it."""
        while True:
            batch = collect(self.inbox, self.max_batch, self.max_wait)
            self.slots.acquire()
            self.spawn(top_up(self.inbox, batch, self.max_batch), slot=True)

    def spawn(self, batch: list, slot: bool = False) -> None:
        """One worker for the batch (blocks while every worker is busy), acknowledged by ``handle_batch_result``;
        ``slot``: the batch holds one of the dispatcher's slots, freed when it is settled."""
        envelopes = [body for body, _ in batch]
        context_data = self.unpack_message_headers(batch[0][1])
        try:
            self.container.spawn_worker(self, (envelopes,), {}, context_data=context_data,
                                        handle_result=functools.partial(self.handle_batch_result, batch, slot))
        except ContainerBeingKilled:
            if slot:
                self.slots.release()
            for _, message in batch:
                self.settle(message, requeue=True)

    # -- settling ----------------------------------------------------------------------------------------------

    def handle_batch_result(self, batch: list, slot: bool, worker_ctx, result=None, exc_info=None):
        try:
            self.settle_batch(batch, exc_info)
        finally:
            if slot:
                self.slots.release()
        return result, exc_info

    def settle_batch(self, batch: list, exc_info) -> None:
        messages = [message for _, message in batch]
        if exc_info is None:
            for message in messages:
                self.settle(message, requeue=False)
        elif len(batch) == 1:
            self.retry_or_park(messages[0], exc_info)
        elif is_transient(exc_info[1]):
            for message in messages:
                self.defer(message, exc_info[1])
        else:
            metrics.BATCHES_SPLIT.labels(self.container.service_name, self.method_name, self.lane).inc()
            log.warning("a batch of %d for %s failed (%s); each is tried again alone", len(batch), self.method_name,
                        "".join(traceback.format_exception_only(exc_info[1])).strip()[:MAX_ERROR_CHARS])
            # Not from this worker: it still holds its place in the pool the singles need.
            self.container.spawn_managed_thread(lambda: [self.spawn([one]) for one in batch],
                                                identifier=f"{self.method_name}.one_by_one")


DUPLICATE_KEY = 11000


def refused_as_duplicate(exc: Exception) -> bool:
    """Whether a unique index refused the write: a ``DuplicateKeyError``, or a bulk write (``insert_many``) whose
    every error is one."""
    if isinstance(exc, DuplicateKeyError):
        return True
    errors = exc.details.get("writeErrors") if isinstance(exc, BulkWriteError) else None
    return bool(errors) and all(error.get("code") == DUPLICATE_KEY for error in errors)


def transaction_budget(store, deliveries: int) -> float:
    """A batch's transaction gets the time of one (``TASKLINKR_TRANSACTION_TIMEOUT_SECONDS``) per
    ``DELIVERIES_PER_BUDGET`` deliveries, within the handler's deadline: a batch of 50 on a busy machine takes
    longer than one delivery, and running out of time splits it into singles, which costs far more."""
    return min(store.handler_timeout, store.transaction_timeout * max(1.0, deliveries / DELIVERIES_PER_BUDGET))


def count_outcomes(service: str, handler: str, consumer: str, envelopes: list[dict], applied: list[str]) -> None:
    """One ``tasklinkr_events_consumed_total`` per delivery: applied (the first copy of an id claimed here), or
    duplicate."""
    left = list(applied)
    for envelope in envelopes:
        if envelope["id"] in left:
            left.remove(envelope["id"])
            outcome = "applied"
        else:
            log.info("event %s already applied by %s", envelope["id"], consumer)
            outcome = "duplicate"
        metrics.EVENTS_CONSUMED.labels(service, handler, outcome, envelope_lane(envelope)).inc()


def subscribe_batch(source: str, routing_key: str, *, store_attr: str = "store", check_contract: bool = True,
                    max_batch: int | None = None, max_wait_ms: float | None = None,
                    in_flight: int = BATCHES_IN_FLIGHT, before: Callable[[Any], None] | None = None) -> Callable:
    """``subscribe`` for a handler taking a list of envelopes (see the module's docstring); ``max_batch`` and
    ``max_wait_ms``: the handler's own batch size and wait (``DEFAULT_MAX_BATCH``, ``DEFAULT_MAX_WAIT_MS`` when not
    given), which the service's ``TASKLINKR_BATCH_MAX_SIZE`` and ``TASKLINKR_BATCH_MAX_WAIT_MS`` override when set;
    ``in_flight``: batches of a lane one process handles at once (more than one only for deliveries that do not
    depend on each other's order); ``before(service)``, if given, runs before the batch's transaction, outside
    it."""

    def decorator(method: Callable) -> Callable:
        @functools.wraps(method)
        def handle(self, envelopes: list[dict]):
            store = getattr(self, store_attr)
            consumer = f"{self.name}.{method.__name__}"
            applied: list[str] = []
            if before is not None:
                before(self)

            def work(uow, assume_new: bool):
                uow.assume_new = assume_new
                fresh = set(uow.claim_events([envelope["id"] for envelope in envelopes], consumer))
                todo = []
                for envelope in envelopes:
                    if envelope["id"] in fresh:
                        fresh.discard(envelope["id"])  # the first copy of an id delivered twice
                        todo.append(envelope)
                applied[:] = [envelope["id"] for envelope in todo]
                return method(self, uow, todo) if todo else None

            started = time.perf_counter()
            failed = True
            try:
                with eventlet.Timeout(store.handler_timeout, HandlerTimedOut(
                        f"{consumer} ran longer than its {store.handler_timeout:g} s deadline")):
                    budget = transaction_budget(store, len(envelopes))
                    try:  # first as if everything were new; a unique index refusing a write says it was not
                        result = store.transact(functools.partial(work, assume_new=True), seconds=budget)
                    except (DuplicateKeyError, BulkWriteError) as exc:
                        if not refused_as_duplicate(exc):
                            raise
                        metrics.BATCHES_RETRIED.labels(self.name, method.__name__).inc()
                        result = store.transact(functools.partial(work, assume_new=False), seconds=budget)
                failed = False
            except DuplicateKeyError:
                # Every one applied meanwhile by a concurrent delivery: duplicates. Otherwise a unique index of the
                # handler's own refused a write: a failure (the batch is tried one by one, a single one retried).
                ids = {claim_id(consumer, envelope["id"]) for envelope in envelopes}
                if len(applied_claims(store.db[APPLIED_EVENTS], ids)) < len(ids):
                    raise
                applied.clear()
                result, failed = None, False
            finally:
                lane = envelope_lane(envelopes[0]) if envelopes else DEFAULT_LANE
                metrics.HANDLER_SECONDS.labels(self.name, method.__name__, lane).observe(time.perf_counter() - started)
                metrics.BATCH_SIZE.labels(self.name, method.__name__).observe(len(envelopes))
                if failed and len(envelopes) == 1:  # a batch's failure is counted as split, not per message
                    metrics.EVENTS_CONSUMED.labels(self.name, method.__name__, "failed", lane).inc()
            count_outcomes(self.name, method.__name__, consumer, envelopes, applied)
            return result

        for lane in LANES:
            handle = BatchedEventHandler.decorator(
                source, routing_key, handler_type=SERVICE_POOL, reliable_delivery=True, check_contract=check_contract,
                lane=lane, max_batch=max_batch, max_wait_ms=max_wait_ms, in_flight=in_flight)(handle)
        return handle

    return decorator
