"""Operator tools behind ``tasklinkr dlq …`` and ``tasklinkr status``: dead letters, outbox backlog, queue depths."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from amqp.exceptions import NotFound as QueueNotFound
from kombu import Connection, Queue
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared.runtime import config as settings
from shared.runtime.messaging import ATTEMPTS_HEADER, dead_letter_queue, dead_letter_queue_name, raw_body
from shared.runtime.outbox import pending_count, relay_states
from shared.runtime.topology import declarations, load_catalog
from shared.tools.backup import database_uri
from shared.vocabulary.terms import LANES

# Set by the broker on delivery; a copy must not carry the original's count as its own.
BROKER_HEADERS = ("x-delivery-count",)
OPERATOR_HEADERS = ("x-tasklinkr-error", "x-tasklinkr-original-queue", "x-tasklinkr-consumer", "x-tasklinkr-parked-at")


@dataclass
class DeadLetter:
    position: int
    event_id: str | None
    event_type: str | None
    consumer: str
    attempts: int
    error: str
    parked_at: str
    original_queue: str
    body: bytes
    headers: dict

    @property
    def summary(self) -> str:
        return (self.error.strip().splitlines() or [""])[-1][:160]

    def pretty_body(self) -> str:
        try:
            return json.dumps(json.loads(self.body), indent=2)
        except ValueError:
            return repr(self.body[:2000])


def consumer_services(catalog: dict | None = None) -> list[str]:
    """The services with a dead-letter queue: every consumer of an event, and every handler of a command (the
    gateway parks tenants' commands)."""
    catalog = catalog or load_catalog()
    events = {c["service"] for e in catalog["events"] for c in e.get("consumers", [])}
    commands = {command["service"] for command in catalog.get("commands", [])}
    return sorted(events | commands)


def _to_dead_letter(position: int, message) -> DeadLetter:
    headers = dict(message.headers or {})
    event_id = message.properties.get("message_id") or headers.get("ce-id")
    event_type = headers.get("ce-type")
    if event_id is None or event_type is None:
        try:
            body = json.loads(message.body)
            event_id = event_id or body.get("id")
            event_type = event_type or body.get("type")
        except (ValueError, AttributeError):
            pass
    return DeadLetter(
        position=position,
        event_id=event_id,
        event_type=event_type,
        consumer=headers.get("x-tasklinkr-consumer", "?"),
        attempts=int(headers.get(ATTEMPTS_HEADER, 0)),
        error=str(headers.get("x-tasklinkr-error", "")),
        parked_at=str(headers.get("x-tasklinkr-parked-at", "")),
        original_queue=str(headers.get("x-tasklinkr-original-queue", "")),
        body=message.body if isinstance(message.body, bytes) else str(message.body).encode(),
        headers=headers,
    )


class DeadLetters:
    """The dead-letter queue of one service. Reading leaves every message parked, as it was."""

    def __init__(self, amqp_uri: str, service: str):
        self.amqp_uri = amqp_uri
        self.service = service

    def list(self) -> list[DeadLetter]:
        """Every parked message, oldest first, left parked as it was."""
        return self._pass(lambda letter: False)[0]

    def replay(self, event_id: str | None = None) -> list[DeadLetter]:
        """Send parked messages (one, or all when ``event_id`` is None) back to their queue, attempts reset."""
        return self._pass(lambda letter: bool(letter.original_queue) and event_id in (None, letter.event_id))[1]

    def _pass(self, replays: Callable[[DeadLetter], bool]) -> tuple[list[DeadLetter], list[DeadLetter]]:
        """One pass over the messages the queue holds: those ``replays`` picks go back to their original queue
        (attempts reset); every other goes back to the tail of the dead-letter queue as it was. Returns the
        letters read and those replayed.

        No message is ever requeued: a requeue counts as a failed delivery on a quorum queue (``x-delivery-count``),
        and past the queue's delivery limit (20 by default since RabbitMQ 4) the broker discards the message, so a
        browse that requeued lost parked messages after about 20 listings. Each message is copied with publisher
        confirms, and only then the original acknowledged: a crash in between leaves a duplicate parked (replay
        is idempotent: consumers recognise an applied event), never a loss. A pass keeps the order of what it reads;
        a message parked while it runs is not read and lands ahead of the copies published after it arrived.
        """
        read, replayed = [], []
        with Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as connection:
            queue = dead_letter_queue(self.service)(connection.channel())
            queue.declare()
            held = queue.queue_declare(passive=True).message_count
            producer = connection.Producer()
            for position in range(1, held + 1):
                message = queue.get(no_ack=False)
                if message is None:
                    break
                letter = _to_dead_letter(position, message)
                read.append(letter)
                headers = {k: v for k, v in letter.headers.items() if k not in BROKER_HEADERS}
                if replays(letter):
                    headers = {k: v for k, v in headers.items() if k not in OPERATOR_HEADERS}
                    headers[ATTEMPTS_HEADER] = 0
                    _publish_copy(producer, message, routing_key=letter.original_queue, headers=headers,
                                  message_id=letter.event_id)
                    replayed.append(letter)
                else:
                    _publish_copy(producer, message, routing_key=queue.name, headers=headers)
                message.ack()
        return read, replayed

    def count(self) -> int:
        """How many messages are parked, read without touching them."""
        with Connection(self.amqp_uri) as connection:
            queue = dead_letter_queue(self.service)(connection.channel())
            queue.declare()
            return queue.queue_declare(passive=True).message_count

    def purge(self) -> int:
        with Connection(self.amqp_uri) as connection:
            queue = dead_letter_queue(self.service)(connection.channel())
            queue.declare()
            return queue.purge() or 0


def _publish_copy(producer, message, *, routing_key: str, headers: dict, message_id: str | None = None) -> None:
    """Publish ``message`` again, persistent and confirmed, to one queue. A command's reply address and correlation
    id go with it, so a replayed command's outcome reaches the tenant as the first attempt's would have."""
    kept = {key: message.properties[key] for key in ("reply_to", "correlation_id", "message_id")
            if message.properties.get(key)}
    if message_id:
        kept["message_id"] = message_id
    producer.publish(
        raw_body(message), exchange="", routing_key=routing_key, headers=headers,
        content_type=message.content_type or "application/octet-stream",
        content_encoding=message.content_encoding or "binary", delivery_mode=2, mandatory=True, **kept,
    )


def _depth(connection: Connection, name: str) -> tuple[int, int]:
    """(messages, consumers) of a queue; (-1, 0) when the broker has no such queue."""
    channel = connection.channel()
    try:
        ok = Queue(name)(channel).queue_declare(passive=True)
        return ok.message_count, ok.consumer_count
    except QueueNotFound:
        return -1, 0
    finally:
        try:
            channel.close()
        except Exception:  # a passive declare of a missing queue closes the channel itself
            pass


def queue_lane(name: str) -> str | None:
    """The workload lane of a queue of the topology (``…--<lane>``, and its ``.retry-<ms>`` delay queues); None
    for a queue of no lane (a dead-letter queue, the unknown-command handler's)."""
    tail = name.rsplit("--", 1)[-1].split(".retry-", 1)[0] if "--" in name else ""
    return tail if tail in LANES else None


def queue_depths(amqp_uri: str) -> list[tuple[str, int, int]]:
    """(queue, messages, consumers) for every queue of the topology that exists on the broker."""
    _, queues = declarations(load_catalog())
    with Connection(amqp_uri) as connection:
        return [(queue.name, *_depth(connection, queue.name)) for queue in queues]


def dead_letter_counts(amqp_uri: str, services: list[str] | None = None) -> dict[str, int | None]:
    """Messages parked in each consuming service's dead-letter queue (None: the queue is not declared yet)."""
    with Connection(amqp_uri) as connection:
        depths = {service: _depth(connection, dead_letter_queue_name(service))[0]
                  for service in services or consumer_services()}
    return {service: (None if depth < 0 else depth) for service, depth in depths.items()}


def _from_database(service: str, environ: dict | None, read: Callable):
    """``read(db)`` on ``service``'s own database; None when its database is unknown or not answering."""
    try:
        with MongoClient(database_uri(service, environ), serverSelectionTimeoutMS=3000) as client:
            return read(client[settings.get("mongo_database", service, environ)])
    except PyMongoError:
        return None


def outbox_backlog(service: str, environ: dict | None = None) -> int | None:
    """Events committed by ``service`` and not yet confirmed by the broker; None when its database is unknown."""
    return _from_database(service, environ, pending_count)


def outbox_relays(service: str, environ: dict | None = None) -> list[dict] | None:
    """The relay of each lane of ``service`` (``shared.runtime.outbox.relay_states``: holder, the commit time its
    position reached, backlog); None when its database is unknown."""
    return _from_database(service, environ, relay_states)


__all__ = ["DeadLetters", "DeadLetter", "consumer_services", "dead_letter_counts", "dead_letter_queue_name",
           "outbox_backlog", "outbox_relays", "queue_depths", "queue_lane"]
