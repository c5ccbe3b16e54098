"""Consuming events reliably: idempotent handlers, retries with back-off, and a dead-letter queue.

    @subscribe("providers", events.PROVIDER_REGISTERED)   # a constant of the service's events.py
    def on_provider_registered(self, uow, envelope): ...

What nameko 2.14 does by default, and what this module does instead:

- A handler that raises is acked and its message is gone. Here the message is republished to a delay queue and
  comes back after 1 s, 5 s, 30 s, 120 s (``TASKLINKR_RETRY_DELAYS``); the attempt count travels in our own header
  ``x-tasklinkr-attempts`` (RabbitMQ >= 3.13 ignores client-set ``x-death``). After the last attempt the message is
  parked in the service's dead-letter queue ``dlq.<service>`` with the error, and other messages keep flowing.
- Only failures of the message itself spend those attempts. A transient infrastructure failure (the database down,
  not primary, a network error, a transaction conflict, a lost commit answer:
  ``shared.vocabulary.errors.is_transient``) sends the message back through the delay queues with its attempt count
  unchanged (counted in ``x-tasklinkr-deferrals``, its delay growing up to 30 s), however long the outage lasts: an
  outage parks nothing.
- A handler that hangs is cut off after ``TASKLINKR_HANDLER_TIMEOUT_SECONDS`` (its transaction aborted) and counts a
  failed attempt like one that raised.
- A message that cannot be decoded kills nameko's queue consumer (and, redelivered, kills it again). Here it is
  parked at once with the reason. So is an event that breaks its contract in ``contracts-schema/``.
- A redelivered or duplicated event is applied once: the handler runs in a transaction of the service's
  ``Database`` (attribute ``store``) together with the record that this consumer applied this event id.

The original message is acked only after its retry or dead-letter copy was confirmed by the broker; if that
publish fails, the original is requeued instead. Consumer queues are quorum queues, named as nameko names them
(``evt-<source>-<type>--<service>.<method>``) and declared before anyone publishes by ``shared.runtime.topology``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import eventlet
from kombu import Connection, Exchange, Queue, binding
from kombu.pools import producers
from nameko.events import SERVICE_POOL, EventHandler
from nameko.messaging import QueueConsumer
from pymongo.errors import DuplicateKeyError

from shared.runtime import contracts, metrics
from shared.runtime.envelope import cloudevents_type, event_exchange
from shared.runtime.inbox import APPLIED_EVENTS, applied_claims, claim_id
from shared.runtime.rpc import BROKER_GONE
from shared.vocabulary.errors import is_transient
from shared.vocabulary.terms import DEFAULT_LANE, LANES, known_lanes

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-tasklinkr-attempts"
DEFERRALS_HEADER = "x-tasklinkr-deferrals"
# Longest wait between two tries of a message deferred by an outage: once the outage ends, work resumes within it.
MAX_DEFERRAL_SECONDS = 30.0
DEFAULT_RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0)
# The default handler deadline (``TASKLINKR_HANDLER_TIMEOUT_SECONDS``), of event and inbound command handlers alike.
HANDLER_TIMEOUT_SECONDS = 30.0
CONSUMER_QUEUE_ARGUMENTS = {"x-queue-type": "quorum"}
DEFAULT_QUEUE_MAX_LENGTH = 500_000
# Longest a consumer waits to hand a message to the broker and for its confirm: a broker under a resource alarm
# holds confirms back, and a worker must not wait on it without end with its own delivery unacknowledged.
PUBLISH_TIMEOUT_SECONDS = 10.0


@contextlib.contextmanager
def confirming_producer(amqp_uri: str) -> Iterator[Any]:
    """A pooled producer with publisher confirms; give each publish ``timeout`` and ``confirm_timeout``.

    When a publish fails, its connection is dropped without the closing handshake before it goes back to the pool:
    a broker that confirms nothing (a resource alarm: it reads nothing more from its publishers) answers no close
    either, and the pool's graceful close held the worker without end.
    """
    connection = Connection(amqp_uri, transport_options={"confirm_publish": True})
    with producers[connection].acquire(block=True, timeout=10) as producer:
        try:
            yield producer
        except BaseException:  # an eventlet.Timeout of the caller's too
            producer.connection.collect()
            raise

MAX_ERROR_CHARS = 4000


def queue_name(source: str, routing_key: str, service: str, method: str, lane: str | None = None) -> str:
    """A handler's queue: nameko's name, ``--single`` for a consumer the catalog marks ``single_active`` (its
    queue's arguments differ, and a queue's arguments cannot change: a new name), and ``--<lane>`` for the queue of
    one workload lane."""
    base = f"evt-{source}-{routing_key}--{service}.{method}"
    if single_active(source, routing_key, service, method):
        base = f"{base}--single"
    return f"{base}--{lane}" if lane else base


# -- lanes in the topology ---------------------------------------------------------------------------------------
#
# The producer still publishes to its topic exchange ``<source>.events`` under the event type, with the headers
# ``ce-type`` and ``lane`` (shared.runtime.envelope.amqp_headers). That exchange forwards everything (``#``) to the
# headers exchange ``<source>.events.lanes``, where each lane's queue is bound by (ce-type, lane) — or by ce-type
# alone for an event the catalog marks ``every_lane``, so each lane's queue gets its own copy. A message without those
# headers (or with a lane this release does not know) goes to the alternate exchange ``<source>.events.unlaned``,
# a topic exchange where the default lane's queue is bound by the event type, as before lanes: it is handled (or
# parked) in the default lane, never dropped. Event types keep their names; a new lane is new bindings only.

LANE_HEADER = "lane"
TYPE_HEADER = "ce-type"


def lanes_exchange_name(source: str) -> str:
    return f"{event_exchange(source)}.lanes"


def unlaned_exchange_name(source: str) -> str:
    return f"{event_exchange(source)}.unlaned"


def lane_exchanges(source: str) -> tuple[Exchange, Exchange, Exchange]:
    """The producer's topic exchange, its lanes (headers) exchange and the latter's alternate exchange."""
    unlaned = Exchange(unlaned_exchange_name(source), type="topic", durable=True, auto_delete=False)
    lanes = Exchange(lanes_exchange_name(source), type="headers", durable=True, auto_delete=False,
                     arguments={"alternate-exchange": unlaned.name})
    return Exchange(event_exchange(source), type="topic", durable=True, auto_delete=False), lanes, unlaned


def forward_to_lanes(source: str) -> tuple[str, str, str]:
    """The exchange-to-exchange binding (source exchange, destination exchange, routing key) that hands every
    event of ``source`` to its lanes exchange."""
    return event_exchange(source), lanes_exchange_name(source), "#"


def declare_lane_routing(channel, source: str) -> None:
    for exchange in lane_exchanges(source):
        exchange(channel).declare()
    upstream, downstream, key = forward_to_lanes(source)
    channel.exchange_bind(destination=downstream, source=upstream, routing_key=key)


def lane_bindings(source: str, routing_key: str, lane: str, every_lane: bool = False) -> list[binding]:
    """How the ``lane`` queue of a handler of ``routing_key`` is bound (see above)."""
    _, lanes, unlaned = lane_exchanges(source)
    match = {"x-match": "all", TYPE_HEADER: cloudevents_type(source, routing_key)}
    if not every_lane:
        match[LANE_HEADER] = str(lane)
    bindings = [binding(lanes, routing_key="", arguments=match)]
    if lane == DEFAULT_LANE:
        bindings.append(binding(unlaned, routing_key=routing_key))
    return bindings


def event_queue(source: str, routing_key: str, service: str, method: str, lane: str, every_lane: bool = False,
                max_length: int = DEFAULT_QUEUE_MAX_LENGTH) -> Queue:
    """The durable quorum queue of one handler in one lane."""
    return consumer_queue(queue_name(source, routing_key, service, method, lane), max_length=max_length,
                          bindings=lane_bindings(source, routing_key, lane, every_lane),
                          single_active=single_active(source, routing_key, service, method))


@functools.cache
def _every_lane_types() -> frozenset[tuple[str, str, str | None, str | None]]:
    import json

    catalog = json.loads((contracts.ROOT / "catalog.json").read_text())
    return frozenset([*((event["producer"], event["type"], None, None) for event in catalog["events"]
                        if event.get("every_lane")),
                      *((event["producer"], event["type"], consumer["service"], consumer["handler"])
                        for event in catalog["events"] for consumer in event.get("consumers", [])
                        if consumer.get("every_lane"))])


def every_lane(source: str, routing_key: str, service: str | None = None, handler: str | None = None) -> bool:
    """Whether the catalog marks the event as concerning every lane (a copy for each lane's queue), or marks it so
    for one consumer, ``service.handler``, only: matching's cells each keep a provider's load and track record, so
    each lane's queue of matching's contract handlers gets a copy of every lane's contract events."""
    types = _every_lane_types()
    return (source, routing_key, None, None) in types or (source, routing_key, service, handler) in types


@functools.cache
def _single_active_consumers() -> frozenset[tuple[str, str, str, str]]:
    import json

    catalog = json.loads((contracts.ROOT / "catalog.json").read_text())
    return frozenset((event["producer"], event["type"], consumer["service"], consumer["handler"])
                     for event in catalog["events"] for consumer in event.get("consumers", [])
                     if consumer.get("single_active"))


def single_active(source: str, routing_key: str, service: str, handler: str) -> bool:
    """Whether the catalog marks ``service.handler``'s consumer of the event ``single_active``: of the processes
    consuming one of its queues, the broker delivers to one only (``x-single-active-consumer``) and, when that one
    goes, makes another active. Matching's provider and contract handlers are: only the active process of a lane
    re-ranks after provider changes and keeps the view of the open postings that takes."""
    return (source, routing_key, service, handler) in _single_active_consumers()


def envelope_lane(envelope: dict) -> str:
    """The lane an event counts in (its metrics' ``lane`` label): its envelope's, or the default lane for one that
    names none or a lane this release does not know."""
    return envelope.get("lane") if envelope.get("lane") in LANES else DEFAULT_LANE


def dead_letter_queue_name(service: str) -> str:
    return f"dlq.{service}"


def retry_queue_name(consumer_queue: str, delay_seconds: float) -> str:
    return f"{consumer_queue}.retry-{int(round(delay_seconds * 1000))}ms"


def parse_delays(value) -> tuple[float, ...]:
    if value in (None, ""):
        return DEFAULT_RETRY_DELAYS
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    delays = tuple(float(part) for part in value)
    if any(delay <= 0 for delay in delays):
        raise ValueError("retry delays must be positive")
    return delays


def consumer_queue(name: str, exchange=None, routing_key: str | None = None,
                   max_length: int = DEFAULT_QUEUE_MAX_LENGTH, bindings: list[binding] | None = None,
                   single_active: bool = False) -> Queue:
    """A consumer's durable quorum queue, bound to ``exchange`` under ``routing_key`` or by ``bindings``. When it
    is full the broker refuses (nacks) new messages instead of dropping old ones, so publishers are pushed back:
    the relay keeps the events pending and retries. ``single_active``: one consumer at a time gets its messages."""
    options = {"bindings": bindings} if bindings else {"exchange": exchange, "routing_key": routing_key}
    arguments = {**CONSUMER_QUEUE_ARGUMENTS, "x-max-length": int(max_length), "x-overflow": "reject-publish"}
    if single_active:
        arguments["x-single-active-consumer"] = True
    return Queue(name, durable=True, auto_delete=False, **options, queue_arguments=arguments)


def queue_bindings(queue: Queue) -> list[tuple[str, str, dict]]:
    """(exchange, routing key, arguments) of every binding of a declared queue."""
    if queue.bindings:
        return sorted(((b.exchange.name, b.routing_key or "", dict(b.arguments or {})) for b in queue.bindings),
                      key=lambda found: (found[0], found[1], sorted(found[2].items())))
    if queue.exchange is not None and queue.exchange.name:
        return [(queue.exchange.name, queue.routing_key or "", dict(queue.binding_arguments or {}))]
    return []


def retry_queue(consumer_queue_name: str, delay_seconds: float) -> Queue:
    """A delay queue: messages wait ``delay_seconds`` and are dead-lettered back to the consumer queue."""
    return Queue(
        retry_queue_name(consumer_queue_name, delay_seconds),
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-message-ttl": int(round(delay_seconds * 1000)),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": consumer_queue_name,
        },
    )


def dead_letter_queue(service: str) -> Queue:
    return Queue(dead_letter_queue_name(service), durable=True, auto_delete=False,
                 queue_arguments=dict(CONSUMER_QUEUE_ARGUMENTS))


class HandlerTimedOut(Exception):
    """An event or command handler ran past its deadline (``TASKLINKR_HANDLER_TIMEOUT_SECONDS``): a failure of the
    message."""


class ParkingQueueConsumer(QueueConsumer):
    """nameko's queue consumer, but a message that cannot be decoded is parked instead of crashing it, and its
    prefetch covers what a batched handler (``shared.runtime.batches``) wants in flight."""

    @property
    def prefetch_count(self):
        # One channel, one prefetch for all its consumers: the largest any of them needs.
        return max([self.container.max_workers,
                    *(getattr(provider, "prefetch_wanted", 0) for provider in self._providers)])

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = functools.partial(self._on_decode_error, provider)
        return consumers

    def _on_decode_error(self, provider: ReliableDelivery, message, exc: Exception) -> None:
        provider.park(message, f"undecodable message: {exc}", attempts=0, kind="undecodable")


ORIGIN_USER_HEADER = "x-tasklinkr-user-id"
ORIGIN_ROUTING_KEY_HEADER = "x-tasklinkr-routing-key"


def origin_headers(message) -> dict:
    """Where a message first came from, kept in headers when it is copied to a retry or dead-letter queue.

    A copy travels through the default exchange, which loses the original routing key, and the platform's user
    cannot publish a ``user_id`` other than its own. Taken only from a first delivery (from a named exchange);
    a copy keeps the headers its first delivery set, so a publisher can never choose them.
    """
    info = message.delivery_info or {}
    if not info.get("exchange"):
        return {}
    return {ORIGIN_USER_HEADER: message.properties.get("user_id") or "",
            ORIGIN_ROUTING_KEY_HEADER: info.get("routing_key") or ""}


def raw_body(message) -> bytes:
    """The bytes that arrived: a client library may hand over a ``str`` (an empty body, or one it decoded), which
    cannot be published again under a content encoding such as ``binary``."""
    body = message.body
    if isinstance(body, str):
        try:
            return body.encode(message.content_encoding or "utf-8")
        except (LookupError, UnicodeError):  # no such codec ("binary"), or not encodable with it
            return body.encode("utf-8", errors="surrogateescape")
    return body


def attempts_of(headers: dict | None, header: str = ATTEMPTS_HEADER) -> int:
    """How many times a message was tried, from our own header, read defensively: a sender outside the platform
    (a tenant's system) may have set the header to anything."""
    try:
        return max(0, int((headers or {}).get(header, 0)))
    except (TypeError, ValueError):
        return 0


def deferral_delay(retry_delays: tuple[float, ...], deferrals: int) -> float:
    """The wait before the ``deferrals``-th try of a message deferred by an outage: the retry delays in turn, up to
    the longest of them that is at most ``MAX_DEFERRAL_SECONDS`` (the shortest if none is)."""
    usable = [delay for delay in retry_delays if delay <= MAX_DEFERRAL_SECONDS] or [min(retry_delays)]
    return usable[min(deferrals, len(usable)) - 1]


class ReliableDelivery:
    """Retry with back-off, then park: what event handlers and inbound command handlers share.

    Mixed into a nameko consumer entrypoint that has ``queue`` set before ``declare_reliability`` runs.
    """

    queue_consumer = ParkingQueueConsumer()
    lane: str = DEFAULT_LANE

    def lane_enabled(self) -> bool:
        """Whether this process consumes the entrypoint's lane (config ``LANES``, ``tasklinkr run --lane``; all
        lanes when unset)."""
        return self.lane in known_lanes(self.container.config.get("LANES"))

    def stop(self):
        if getattr(self, "consuming", True):
            super().stop()

    def declare_reliability(self) -> None:
        config = self.container.config
        self.retry_delays = parse_delays(config.get("RETRY_DELAYS_SECONDS"))
        self.amqp_uri = config["AMQP_URI"]
        self.extra_declarations = [retry_queue(self.queue.name, d) for d in self.retry_delays]
        self.extra_declarations.append(dead_letter_queue(self.container.service_name))
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            for queue in self.extra_declarations:
                queue(channel).declare()

    def succeeded(self, message, result) -> None:
        """The handler returned: settle the message (commands first publish their outcome)."""
        self.settle(message, requeue=False)

    def settle(self, message, *, requeue: bool) -> None:
        """Ack (or requeue) ``message``. If the connection it came on is gone, the broker already put it back for
        another delivery (unacked messages of a closed channel are), which the idempotent handler absorbs; the
        failed ack must not kill the service's container, as an exception here would."""
        try:
            if requeue:
                self.queue_consumer.requeue_message(message)
            else:
                self.queue_consumer.ack_message(message)
        except BROKER_GONE as exc:
            log.warning("could not settle a message of %s (the connection is gone: %r); the broker delivers it "
                        "again", self.queue.name, exc)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            self.succeeded(message, result)
            return result, exc_info
        self.retry_or_park(message, exc_info)
        return result, exc_info

    def retry_or_park(self, message, exc_info) -> None:
        """A failed attempt: retried after the next back-off delay, or parked once the delays are used up. A
        transient infrastructure failure is not an attempt: the message is deferred instead."""
        if is_transient(exc_info[1]):
            self.defer(message, exc_info[1])
            return
        attempts = attempts_of(message.headers) + 1
        error = "".join(traceback.format_exception(*exc_info))[-MAX_ERROR_CHARS:]
        service = self.container.service_name
        if attempts <= len(self.retry_delays):
            delay = self.retry_delays[attempts - 1]
            metrics.EVENTS_RETRIED.labels(service, self.method_name, self.lane).inc()
            log.warning("%s failed (attempt %d), retrying in %.1fs: %s", self.method_name, attempts, delay,
                        exc_info[1])
            self._republish(message, retry_queue_name(self.queue.name, delay), {ATTEMPTS_HEADER: attempts})
        else:
            log.error("%s failed %d times, parking the message: %s", self.method_name, attempts, exc_info[1])
            self.park(message, error, attempts=attempts, kind="failed")

    def defer(self, message, exc: BaseException) -> None:
        """Try ``message`` again after a delay, its attempt count unchanged: the infrastructure failed, not it."""
        deferrals = attempts_of(message.headers, DEFERRALS_HEADER) + 1
        delay = deferral_delay(self.retry_delays, deferrals)
        metrics.EVENTS_DEFERRED.labels(self.container.service_name, self.method_name, self.lane).inc()
        log.warning("%s met a transient failure (deferral %d, attempts unchanged), trying again in %.1fs: %r",
                    self.method_name, deferrals, delay, exc)
        self._republish(message, retry_queue_name(self.queue.name, delay), {DEFERRALS_HEADER: deferrals})

    # -- retrying and parking --------------------------------------------------------------------------------

    def park(self, message, reason: str, attempts: int, kind: str) -> None:
        """Move ``message`` to the service's dead-letter queue; ``kind`` (failed, contract, undecodable) labels
        the metric."""
        metrics.EVENTS_DEAD_LETTERED.labels(self.container.service_name, self.method_name, kind, self.lane).inc()
        headers = {
            ATTEMPTS_HEADER: attempts,
            "x-tasklinkr-error": reason[-MAX_ERROR_CHARS:],
            "x-tasklinkr-original-queue": self.queue.name,
            "x-tasklinkr-consumer": f"{self.container.service_name}.{self.method_name}",
            "x-tasklinkr-parked-at": datetime.now(UTC).isoformat(),
        }
        self._republish(message, dead_letter_queue_name(self.container.service_name), headers)

    def _republish(self, message, queue: str, extra_headers: dict) -> None:
        """Copy ``message`` to ``queue`` (confirmed), then ack it; requeue it if the copy failed."""
        headers = {**(message.headers or {}), **origin_headers(message), **extra_headers}
        properties = {key: message.properties[key] for key in ("correlation_id", "reply_to")
                      if message.properties.get(key)}
        try:
            with confirming_producer(self.amqp_uri) as producer:
                producer.publish(
                    raw_body(message),
                    exchange="",
                    routing_key=queue,
                    headers=headers,
                    content_type=message.content_type or "application/octet-stream",
                    content_encoding=message.content_encoding or "binary",
                    delivery_mode=2,
                    mandatory=True,
                    retry=True,
                    retry_policy={"max_retries": 3},
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                    confirm_timeout=PUBLISH_TIMEOUT_SECONDS,
                    **properties,
                )
        except Exception:
            log.exception("could not move a message to %s; requeueing it", queue)
            self.settle(message, requeue=True)
            return
        self.settle(message, requeue=False)


class ReliableEventHandler(ReliableDelivery, EventHandler):
    """One handler's consumer of one lane's queue (``subscribe`` registers one per lane)."""

    def __init__(self, *args, lane: str = DEFAULT_LANE, check_contract: bool = True, **kwargs):
        self.check_contract = check_contract
        self.lane = str(lane)
        super().__init__(*args, **kwargs)

    def setup(self):
        self.consuming = self.lane_enabled()
        if not self.consuming:
            return  # another process consumes this lane: no queue, no consumer
        config = self.container.config
        self.queue = event_queue(self.source_service, self.event_type, self.container.service_name,
                                 self.method_name, self.lane,
                                 every_lane(self.source_service, self.event_type, self.container.service_name,
                                            self.method_name),
                                 int(config.get("QUEUE_MAX_LENGTH") or DEFAULT_QUEUE_MAX_LENGTH))
        with Connection(config["AMQP_URI"]) as connection:
            declare_lane_routing(connection.channel(), self.source_service)
        self.declare_reliability()
        self.queue_consumer.register_provider(self)

    # -- receiving -------------------------------------------------------------------------------------------

    def handle_message(self, body, message):
        reason = self.contract_violation(body)
        if reason:
            self.park(message, reason, attempts=0, kind="contract")
            return
        super().handle_message(body, message)

    def contract_violation(self, body) -> str | None:
        if not isinstance(body, dict) or "id" not in body or "data" not in body or "type" not in body:
            return "not an event envelope"
        if not self.check_contract:
            return None
        problems = contracts.errors(body)
        if problems:
            return "breaks its contract: " + "; ".join(problems[:10])
        return None


def subscribe(source: str, routing_key: str, *, store_attr: str = "store", check_contract: bool = True,
              before: Callable[[Any], None] | None = None) -> Callable:
    """A handler of the event, applied once (inbox) in one transaction; ``before(service)``, if given, runs first,
    outside the transaction (matching builds its view of the open postings there)."""

    def decorator(method: Callable) -> Callable:
        @functools.wraps(method)
        def handle(self, envelope: dict):
            store = getattr(self, store_attr)
            consumer = f"{self.name}.{method.__name__}"
            if before is not None:
                before(self)

            outcome = {"value": "failed"}

            def work(uow):
                uow.claim_event(envelope["id"], consumer)
                result = method(self, uow, envelope)
                outcome["value"] = "applied"
                return result

            started = time.perf_counter()
            try:
                # A handler that hangs is cut off (its transaction aborted) and counts a failed attempt.
                with eventlet.Timeout(store.handler_timeout, HandlerTimedOut(
                        f"{consumer} ran longer than its {store.handler_timeout:g} s deadline")):
                    return store.transact(work)
            except DuplicateKeyError:
                # Applied before (claim_event's insert refused it), or a concurrent delivery committed first. A
                # duplicate from one of the handler's own unique indexes is a failure like any other: retried, then
                # parked, never acknowledged as if the event had been applied.
                if not applied_claims(store.db[APPLIED_EVENTS], [claim_id(consumer, envelope["id"])]):
                    outcome["value"] = "failed"
                    raise
                log.info("event %s already applied by %s", envelope["id"], consumer)
                outcome["value"] = "duplicate"
                return None
            except Exception:
                outcome["value"] = "failed"
                raise
            finally:
                lane = envelope_lane(envelope)
                metrics.HANDLER_SECONDS.labels(self.name, method.__name__, lane).observe(
                    time.perf_counter() - started)
                metrics.EVENTS_CONSUMED.labels(self.name, method.__name__, outcome["value"], lane).inc()

        # One entrypoint per lane, each on its lane's queue. The claim (consumer = service.handler) is shared by
        # the lanes: an every_lane event reaches each lane's queue and is applied once per service, by whichever
        # copy comes first (the other is answered as a duplicate), so neither lane waits for the other's backlog.
        for lane in LANES:
            handle = ReliableEventHandler.decorator(
                source, routing_key, handler_type=SERVICE_POOL, reliable_delivery=True,
                check_contract=check_contract, lane=lane)(handle)
        return handle

    return decorator

