"""The messaging topology, declared before anything publishes.

``contracts-schema/catalog.json`` lists every event type with its producer and its consumers. From it we declare
each producer's topic exchange and each consumer's durable queue and binding, named exactly as nameko's event
handlers name them, so an event published before its consumer process ever started waits in its queue.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from kombu import Connection, Exchange, Queue

from shared.runtime import config as settings
from shared.runtime.envelope import event_exchange
from shared.runtime.messaging import (
    consumer_queue,
    dead_letter_queue,
    event_queue,
    forward_to_lanes,
    lane_exchanges,
    parse_delays,
    retry_queue,
)
from shared.vocabulary.terms import DEFAULT_LANE, LANES

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "contracts-schema" / "catalog.json"

# Enterprise integration (see shared/tools/brokeradmin.py): every event that concerns a tenant is also published to the
# feed under ``<tenant>.<event type>``; tenants' systems publish commands to the inbound exchange.
FEED_EXCHANGE = "tasklinkr.feed"
INBOUND_EXCHANGE = "tasklinkr.inbound"
# What the inbound exchange routes nowhere (an unknown command type) goes here, to be answered with a rejection.
UNROUTED_COMMANDS_EXCHANGE = "tasklinkr.inbound.unrouted"


UNKNOWN = None  # the command type of the handler that answers commands nobody handles


# Inbound commands travel in their sender's lane. Senders publish to the inbound exchange as before; the broker
# routes the commands of a sender granted access in another lane than the default (``shared.tools.brokeradmin.grant``
# binds ``<sender>.#`` from the inbound exchange to ``tasklinkr.inbound.<lane>``), and everything else falls to the
# inbound exchange's alternate exchange, the default lane's ``tasklinkr.inbound.<default lane>``. Each lane's
# exchange binds that lane's command queues under ``*.<type>``; what it routes nowhere goes to the unrouted exchange.


def inbound_exchange() -> Exchange:
    return Exchange(INBOUND_EXCHANGE, type="topic", durable=True, auto_delete=False,
                    arguments={"alternate-exchange": inbound_lane_exchange_name(DEFAULT_LANE)})


def inbound_lane_exchange_name(lane: str) -> str:
    return f"{INBOUND_EXCHANGE}.{lane}"


def inbound_lane_exchange(lane: str) -> Exchange:
    return Exchange(inbound_lane_exchange_name(lane), type="topic", durable=True, auto_delete=False,
                    arguments={"alternate-exchange": UNROUTED_COMMANDS_EXCHANGE})


def sender_lane_binding(sender_id: str, lane: str) -> tuple[str, str, str] | None:
    """The exchange-to-exchange binding (source, destination, routing key) that takes a sender's commands to its
    lane; None for the default lane, which needs none."""
    if str(lane) == DEFAULT_LANE:
        return None
    return INBOUND_EXCHANGE, inbound_lane_exchange_name(lane), f"{sender_id}.#"


def command_queue_name(command_type: str | None, service: str, method: str, lane: str | None = None) -> str:
    base = f"cmd-{command_type or 'unknown'}--{service}.{method}"
    return f"{base}--{lane}" if lane else base


def command_queue(command_type: str | None, service: str, method: str, max_length: int,
                  lane: str | None = None) -> Queue:
    """A command handler's durable quorum queue in ``lane``: bound to the lane's inbound exchange under
    ``*.<type>`` (any sender), or, for the unknown-command handler (of no lane), to the exchange that receives
    what nothing else routed."""
    if command_type is UNKNOWN:
        exchange, key, lane = Exchange(UNROUTED_COMMANDS_EXCHANGE, type="fanout", durable=True,
                                       auto_delete=False), "", None
    else:
        lane = str(lane or DEFAULT_LANE)
        exchange, key = inbound_lane_exchange(lane), f"*.{command_type}"
    return consumer_queue(command_queue_name(command_type, service, method, lane), exchange, key, max_length)


def load_catalog(path: Path = CATALOG) -> dict:
    with path.open() as fh:
        return json.load(fh)


def consumed_producers(catalog: dict) -> list[str]:
    """The producers whose events some service consumes (their events are routed by lane)."""
    return list(dict.fromkeys(event["producer"] for event in catalog["events"]
                              if not event.get("feed_only") and event.get("consumers")))


def exchange_bindings(catalog: dict) -> list[tuple[str, str, str]]:
    """(source exchange, destination exchange, routing key): each consumed producer's exchange forwards everything
    to its lanes exchange (``shared.runtime.messaging``, lanes in the topology)."""
    return [forward_to_lanes(producer) for producer in consumed_producers(catalog)]


def declarations(catalog: dict, environ: dict | None = None) -> tuple[list[Exchange], list[Queue]]:
    """The tenant feed and inbound exchanges; each producer's exchange (with its lanes and unlaned exchanges when
    its events are consumed); each consumer's queue per lane, their retry (delay) queues, and its service's DLQ.
    The exchange-to-exchange bindings are ``exchange_bindings``."""
    exchanges: dict[str, Exchange] = {
        FEED_EXCHANGE: Exchange(FEED_EXCHANGE, type="topic", durable=True, auto_delete=False),
        UNROUTED_COMMANDS_EXCHANGE: Exchange(UNROUTED_COMMANDS_EXCHANGE, type="fanout", durable=True,
                                             auto_delete=False),
        INBOUND_EXCHANGE: inbound_exchange(),
        **{inbound_lane_exchange_name(lane): inbound_lane_exchange(lane) for lane in LANES},
    }
    queues: list[Queue] = []
    dead_letter_queues: dict[str, Queue] = {}
    for event in catalog["events"]:
        if event.get("feed_only"):
            continue  # published straight to the tenant feed, which is declared above
        name = event_exchange(event["producer"])
        exchanges.setdefault(name, Exchange(name, type="topic", durable=True, auto_delete=False))
        if event.get("consumers"):
            for exchange in lane_exchanges(event["producer"])[1:]:
                exchanges.setdefault(exchange.name, exchange)
        for consumer in event.get("consumers", []):
            service = consumer["service"]
            delays = parse_delays(settings.get("retry_delays", service, environ))
            for lane in LANES:
                queue = event_queue(event["producer"], event["type"], service, consumer["handler"], lane,
                                    bool(event.get("every_lane") or consumer.get("every_lane")),
                                    settings.get("queue_max_length", service, environ))
                queues.append(queue)
                queues.extend(retry_queue(queue.name, delay) for delay in delays)
            dead_letter_queues.setdefault(service, dead_letter_queue(service))
    for handler in catalog.get("commands", []):
        service = handler["service"]
        delays = parse_delays(settings.get("retry_delays", service, environ))
        for lane in ((None,) if handler["type"] is UNKNOWN else LANES):
            queue = command_queue(handler["type"], service, handler["handler"],
                                  settings.get("queue_max_length", service, environ), lane)
            queues.append(queue)
            queues.extend(retry_queue(queue.name, delay) for delay in delays)
        dead_letter_queues.setdefault(service, dead_letter_queue(service))
    return list(exchanges.values()), queues + list(dead_letter_queues.values())


def apply(amqp_uri: str, catalog: dict | None = None, environ: dict | None = None) -> dict:
    """Declare exchanges, queues and bindings (idempotent). Returns what was declared."""
    catalog = catalog or load_catalog()
    exchanges, queues = declarations(catalog, environ)
    with Connection(amqp_uri, connect_timeout=10) as connection:
        channel = connection.channel()
        for exchange in exchanges:
            exchange(channel).declare()
        for queue in queues:
            queue(channel).declare()
        for source, destination, key in exchange_bindings(catalog):
            channel.exchange_bind(destination=destination, source=source, routing_key=key)
    return {"exchanges": [e.name for e in exchanges], "queues": [q.name for q in queues]}


def apply_when_reachable(amqp_uri: str, wait_seconds: float, *, apply_once: Callable[[str], dict] | None = None,
                         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                         ) -> dict:
    """``apply``, tried again (1 s, 2 s, … 5 s apart) while the broker cannot be reached, for up to
    ``wait_seconds``: a deployment's topology job may start before the broker takes connections. An error of
    the topology itself (a queue declared with other arguments) is raised at once; refused credentials look like
    an unreachable broker to kombu, and fail once the wait is over."""
    from kombu.exceptions import OperationalError

    apply_once = apply_once or apply
    deadline = clock() + wait_seconds
    pause = 1.0
    while True:
        try:
            return apply_once(amqp_uri)
        except (OperationalError, ConnectionError, TimeoutError) as exc:
            if clock() + pause > deadline:
                raise
            log.warning("broker not reachable yet (%s); trying again in %.0f s", exc, pause)
            sleep(pause)
            pause = min(pause * 2, 5.0)


def missing(amqp_uri: str, catalog: dict | None = None, environ: dict | None = None) -> list[str]:
    """The exchanges and queues of the topology the broker does not have yet (checked without declaring)."""
    from amqp.exceptions import NotFound

    exchanges, queues = declarations(catalog or load_catalog(), environ)
    absent: list[str] = []
    with Connection(amqp_uri, connect_timeout=10) as connection:
        channel = connection.channel()
        checks = [(f"exchange {e.name}", lambda c, e=e: c.exchange_declare(e.name, e.type, passive=True))
                  for e in exchanges]
        checks += [(f"queue {q.name}", lambda c, q=q: c.queue_declare(q.name, passive=True)) for q in queues]
        for label, check in checks:
            try:
                check(channel)
            except NotFound:
                absent.append(label)
                channel = connection.channel()  # the broker closes a channel whose passive declare fails
    return absent
