"""Inbound commands from tenants' (and providers') own systems, and the outcome each one gets.

    @command(events.POSTING_CREATE)   # a constant of the service's events.py
    def create_posting_command(self, tenant_id, data, command_id): ...   # returns the result (resulting ids)

A tenant's system publishes a command to the inbound exchange (``shared.runtime.topology.INBOUND_EXCHANGE``) under
``<tenant id>.<command type>``, as the tenant's own broker user (``shared.tools.brokeradmin``). The message:

- body: JSON ``{"id": <command id>, "type": <command type>, "data": {...}}``, valid against
  ``contracts-schema/commands/<type>.schema.json``; at most ``TASKLINKR_MAX_COMMAND_BYTES``;
- ``user_id`` property: the tenant id. RabbitMQ refuses a ``user_id`` other than the authenticated user, and the
  user is named after the tenant, so the tenant is taken from there and never from the body nor the routing key
  (a provider sends its commands the same way, as the user named after its provider id, and is answered under
  that prefix);
- ``content_type`` ``application/json`` (parameters allowed);
- ``correlation_id`` (optional, default the command id: the worker's correlation id, so the events the command
  causes carry it) and ``reply_to`` (optional: one of the tenant's own queues, ``<tenant id>.<anything>``).

Every command gets exactly one kind of answer, an outcome event on the tenant feed
(``<tenant id>.command.accepted.v1`` or ``<tenant id>.command.rejected.v1``) and, when ``reply_to`` is set, the
same message in that queue: accepted with the resulting ids, or rejected with the reason and the errors per field.
A malformed message (not JSON, not ``application/json``, not a command, wrong schema, unknown type, oversized, a
routing key under another prefix) is rejected with the reason *and* parked in the service's dead-letter queue; a
message without a tenant's or provider's ``user_id``, or under an event type, is parked and answered to nobody.
Neither reaches the handler; the service records each (``record_refused_command``, the gateway's audit trail).

Delivery: the message is acked only after its outcome was confirmed by the broker. A crash before that redelivers
the command, and the handler runs again, so handlers must be idempotent on the command id (they pass it on as the
idempotency key of the operation, or the operation is idempotent by nature). A handler that fails unexpectedly (or
runs past ``TASKLINKR_HANDLER_TIMEOUT_SECONDS``) is retried with back-off and then parked, as event handlers are
(``shared.runtime.messaging``); a domain error (validation, not found, conflict) is an answer, a rejection, not a
failure.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from functools import cache, wraps

import eventlet
from amqp.exceptions import MessageNacked
from jsonschema import Draft202012Validator, FormatChecker
from nameko.messaging import Consumer

from shared.runtime import config as settings
from shared.runtime import contracts, events
from shared.runtime.envelope import build
from shared.runtime.messaging import (
    DEFAULT_QUEUE_MAX_LENGTH,
    HANDLER_TIMEOUT_SECONDS,
    ORIGIN_ROUTING_KEY_HEADER,
    ORIGIN_USER_HEADER,
    PUBLISH_TIMEOUT_SECONDS,
    HandlerTimedOut,
    ReliableDelivery,
    confirming_producer,
)
from shared.runtime.topology import FEED_EXCHANGE, INBOUND_EXCHANGE, UNKNOWN, command_queue, load_catalog
from shared.vocabulary import terms as vocabulary
from shared.vocabulary.errors import DomainError

log = logging.getLogger(__name__)

# nameko makes this header the worker's correlation id, which its RPC calls and the events they cause carry on.
CORRELATION_HEADER = "nameko.correlation_id"

# The routing keys of the outcome events (published under the sender's prefix), named in ``shared.runtime.events``.
ACCEPTED = events.COMMAND_ACCEPTED
REJECTED = events.COMMAND_REJECTED
# Who may send commands: a client organisation (tenant) or a provider, each as its own broker user named by its id.
SENDER_ID = re.compile(r"^(ten|prv)_[0-9a-f]{32}$")
CLIENT, PROVIDER = "client", "provider"
SENDER_PREFIX = {CLIENT: "ten_", PROVIDER: "prv_"}
# The lane of an outcome when the sender's lane is not known (an unknown sender, a malformed message).
DEFAULT_LANE = vocabulary.DEFAULT_LANE.value


@cache
def schema_validator(command_type: str) -> Draft202012Validator:
    schema = json.loads((contracts.ROOT / "commands" / f"{command_type}.schema.json").read_text())
    return Draft202012Validator(schema, registry=contracts.registry(), format_checker=FormatChecker())


def command_errors(body: dict, command_type: str) -> dict[str, list[str]]:
    """Field path -> messages, for a command body against its schema (empty when valid)."""
    found: dict[str, list[str]] = {}
    for error in schema_validator(command_type).iter_errors(body):
        found.setdefault("/".join(map(str, error.absolute_path)) or "(command)", []).append(error.message)
    return found


class Malformed(Exception):
    def __init__(self, reason: str, errors: dict | None = None):
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or {}


UNDECODABLE = object()  # the body of a message that is not valid JSON
MAX_CORRELATION_ID = 200


@cache
def event_types() -> frozenset[str]:
    """Every event type the platform publishes: fed back to the inbound exchange, such a message is no command."""
    return frozenset(event["type"] for event in load_catalog()["events"])


def json_content_type(content_type: str | None) -> bool:
    """``application/json``, with or without parameters (``; charset=utf-8``)."""
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def decoded_body(message):
    """The JSON the message carries (read from its bytes, whatever the client library made of them), or
    ``UNDECODABLE``."""
    try:
        return json.loads(message.body)
    except (TypeError, ValueError):
        return UNDECODABLE


def origin_of(message) -> tuple[str, object]:
    """(routing key, ``user_id``) where the message first came in. A retry or a replay travels through the default
    exchange: the platform copied both into headers of its own (shared.runtime.messaging.origin_headers)."""
    if (message.delivery_info or {}).get("exchange"):
        return message.delivery_info.get("routing_key") or "", (message.properties or {}).get("user_id")
    headers = message.headers or {}
    return headers.get(ORIGIN_ROUTING_KEY_HEADER) or "", headers.get(ORIGIN_USER_HEADER)


def route_of(message) -> dict[str, str]:
    """How a first delivery came in, when not straight to the inbound exchange: the exchange it was published to
    (kept through exchange-to-exchange bindings) and the queue it was dead-lettered from. It names whoever built
    the route, for the audit trail of a message that carries no ``user_id``."""
    info = message.delivery_info or {}
    if not info.get("exchange"):
        return {}
    route = {}
    if info["exchange"] != INBOUND_EXCHANGE:
        route["published_to"] = str(info["exchange"])[:MAX_CORRELATION_ID]
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], dict) and deaths[-1].get("queue"):
        route["dead_lettered_from"] = str(deaths[-1]["queue"])[:MAX_CORRELATION_ID]
    return route


def read_delivery(message, command_type: str | None, max_bytes: int) -> dict:
    """What the handler needs from a message: sender, command id and type, data, reply address.

    The sender is only ever the broker-validated ``user_id`` of a tenant's or provider's user, which must also be
    the routing key's prefix (which its topic permission enforces). A message with no such ``user_id`` (published
    without one, by a platform user, or routed in through a binding or a dead-letter route) and a platform event
    fed back in are parked and answered to nobody: whoever sent them cannot be told apart from whoever they name.
    Anything else wrong is ``Malformed``: rejected to the sender, then parked.
    """
    properties = message.properties or {}
    routing_key, user = origin_of(message)
    prefix, _, routed_type = routing_key.partition(".")
    sender = user if isinstance(user, str) and SENDER_ID.match(user) else None
    # Read whatever the content type (for the command id to answer under), unless it is too large to read at all.
    body = decoded_body(message) if len(message.body or b"") <= max_bytes else UNDECODABLE
    command_id = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
    correlation_id = properties.get("correlation_id")
    if not (isinstance(correlation_id, str) and 0 < len(correlation_id) <= MAX_CORRELATION_ID):
        correlation_id = command_id
    delivery = {
        "sender_id": sender,
        "user_id": str(user)[:MAX_CORRELATION_ID] if user else None,
        "routing_key": routing_key[:MAX_CORRELATION_ID],
        "answer": sender is not None and routed_type not in event_types(),
        "command_id": command_id,
        "command_type": routed_type or None,
        "correlation_id": correlation_id,
        "reply_to": properties.get("reply_to"),
        "data": None,
        "problem": None,
    }
    try:
        if not user:
            raise Malformed("no user_id property: publish as your own broker user with user_id set to it; "
                            "parked, not answered")
        if sender is None:
            raise Malformed(f"user_id {delivery['user_id']!r} is not a tenant's or provider's broker user; parked, "
                            "not answered")
        if not delivery["answer"]:
            raise Malformed(f"{routed_type!r} is an event the platform publishes, not a command; parked, not "
                            "answered")
        if sender != prefix:
            raise Malformed(f"user_id {sender!r} does not match the routing key's prefix {prefix!r}")
        if len(message.body or b"") > max_bytes:
            raise Malformed(f"the command is larger than {max_bytes} bytes")
        if not json_content_type(properties.get("content_type")):
            raise Malformed(f"content_type must be application/json, not {properties.get('content_type')!r}")
        if command_type is UNKNOWN:
            raise Malformed(f"unknown command type {routed_type!r}")
        if body is UNDECODABLE:
            raise Malformed("the body is not valid JSON")
        if not isinstance(body, dict):
            raise Malformed("the body is not a JSON object (a command is {\"id\", \"type\", \"data\"})")
        problems = command_errors(body, command_type)
        if problems:
            raise Malformed("the command breaks its schema", problems)
        if body["type"] != command_type:
            raise Malformed(f"the body's type {body['type']!r} is not the routing key's {command_type!r}")
    except Malformed as exc:
        delivery["problem"] = {"reason": exc.reason, "errors": exc.errors}
        return delivery
    delivery["data"] = body["data"]
    return delivery


def flat_errors(details: dict, prefix: str = "") -> dict[str, list[str]]:
    """``{"budget": {"amount": ["..."]}}`` (marshmallow's nesting) as ``{"budget/amount": ["..."]}``."""
    flat: dict[str, list[str]] = {}
    for key, value in (details or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_errors(value, f"{path}/"))
        elif isinstance(value, (list, tuple)):
            flat[path] = [str(item) for item in value]
        else:
            flat[path] = [str(value)]
    return flat


def outcome_envelope(service: str, delivery: dict, *, lane: str, result: dict | None = None,
                     reason: str | None = None, errors: dict | None = None) -> dict:
    accepted = delivery["problem"] is None and reason is None
    data = {"command_id": delivery["command_id"], "command_type": delivery["command_type"],
            "handled_by": service}
    if accepted:
        data["result"] = result or {}
    else:
        data.update(reason=reason or delivery["problem"]["reason"],
                    errors=flat_errors(errors if errors is not None else delivery["problem"]["errors"]))
    return build(service=service, routing_key=ACCEPTED if accepted else REJECTED,
                 subject=delivery["command_id"] or "unknown", data=data, lane=lane,
                 tenant=delivery["sender_id"] if delivery["answer"] else None,
                 correlation_id=delivery["correlation_id"],
                 causation_id=delivery["command_id"])


class CommandHandler(ReliableDelivery, Consumer):
    """The entrypoint behind ``@command``: a quorum queue per (command type, handler), retries, parking."""

    def __init__(self, command_type: str | None, lane: str | None = None, **kwargs):
        self.command_type = command_type
        self.laned = lane is not None  # the unknown-command handler serves every lane from one queue
        self.lane = str(lane or DEFAULT_LANE)
        super().__init__(queue=None, **kwargs)

    def setup(self):
        self.consuming = not self.laned or self.lane_enabled()
        if not self.consuming:
            return  # another process consumes this lane
        service = self.container.service_name
        max_length = int(self.container.config.get("QUEUE_MAX_LENGTH") or DEFAULT_QUEUE_MAX_LENGTH)
        self.queue = command_queue(self.command_type, service, self.method_name, max_length,
                                   self.lane if self.laned else None)
        self.max_bytes = int(settings.get("max_command_bytes"))
        self.handler_timeout = float(self.container.config.get("HANDLER_TIMEOUT_SECONDS") or HANDLER_TIMEOUT_SECONDS)
        self.declare_reliability()
        super().setup()

    def handle_message(self, body, message):
        self.deliver(message)

    def deliver(self, message) -> None:
        """Read the message (its body from its own bytes) and hand it to a worker whose correlation id is the
        command's, so every event the command causes carries it."""
        route = route_of(message)  # before the broker's x-death header goes with the sender's headers
        drop_foreign_headers(message)
        delivery = {**read_delivery(message, self.command_type, self.max_bytes), "route": route,
                    "deadline_seconds": self.handler_timeout}
        if delivery["correlation_id"]:
            message.headers[CORRELATION_HEADER] = delivery["correlation_id"]
        super().handle_message(delivery, message)

    def park(self, message, reason: str, attempts: int, kind: str) -> None:
        if kind == "undecodable":
            # Not JSON, or a content type the client library refuses: the handler still answers the tenant (a
            # rejection), then the message is parked. It comes here without passing handle_message.
            self.deliver(message)
            return
        if kind == "failed":
            self._answer_unconfirmed(message)
        super().park(message, reason, attempts, kind)

    def _answer_unconfirmed(self, message) -> None:
        """Every retry failed (a service it needs was down throughout, or its outcome could not be published): the
        sender still hears of it, then an operator can replay the parked command."""
        delivery = read_delivery(message, self.command_type, self.max_bytes)
        outcome = outcome_envelope(
            self.container.service_name, delivery, lane=DEFAULT_LANE, errors={},
            reason="The platform could not confirm this command: a service it needs stayed unavailable through "
                   "every retry. It may not have been applied. Send it again with the same id: a command is "
                   "applied once however often it is sent.")
        try:
            publish_outcome(self.amqp_uri, outcome, message.properties.get("reply_to"))
        except Exception:
            log.exception("could not answer command %s either; it is parked", delivery["command_id"])

    def succeeded(self, message, answer: tuple[dict, bool]) -> None:
        """Publish the outcome (confirmed), then ack the command; a malformed one is parked after its answer. An
        outcome that cannot be published is retried with back-off like a failed handler (the handler applies a
        command once, so running it again answers the same), then parked."""
        outcome, malformed = answer
        try:
            publish_outcome(self.amqp_uri, outcome, message.properties.get("reply_to"))
        except Exception:
            log.exception("could not publish the outcome of command %s", outcome["data"]["command_id"])
            self.retry_or_park(message, sys.exc_info())
            return
        if malformed:
            super().park(message, outcome["data"]["reason"], attempts=0, kind="malformed")
        else:
            self.settle(message, requeue=False)


def drop_foreign_headers(message) -> None:
    """Headers from outside the platform, dropped before nameko reads them. nameko turns every header (``nameko.``
    prefix or not) into worker context, and a malformed one (a call id stack of numbers) kills the whole container
    before any handler runs. A command needs none of a sender's headers (its correlation id is its ``correlation_id``
    property): only the platform's own ``x-tasklinkr-*`` headers are kept on its retry and replay copies (not
    from the inbound exchange)."""
    headers = message.headers
    if not headers:
        return
    first = bool((message.delivery_info or {}).get("exchange"))
    for name in list(headers):
        if not first and name.startswith("x-tasklinkr-"):
            continue
        del headers[name]


def publish_outcome(amqp_uri: str, outcome: dict, reply_to: str | None) -> None:
    """To the tenant feed under ``<tenant>.<outcome type>``, and to ``reply_to`` when it is the tenant's own
    queue; both persistent and confirmed. A refusal by the tenant's own queues (a full queue that rejects new
    messages, as its owner declared it) is the tenant's choice: logged and dropped, not retried, so it never holds
    up the platform."""
    tenant = outcome.get("tenantid")
    if tenant is None:
        log.warning("a message answered to nobody (%s); parked", outcome["data"]["reason"])
        return
    routing_key = f"{tenant}.{outcome['type'].split('.', 2)[2]}"
    # Not retried by kombu: it counts a nack as a lost connection and publishes again, so a full queue of the
    # tenant's would get the outcome again and again, and a healthy one beside it a copy each time. Any other
    # failure is retried with back-off by the caller, like a failed handler.
    common = dict(serializer="json", delivery_mode=2, retry=False,
                  timeout=PUBLISH_TIMEOUT_SECONDS, confirm_timeout=PUBLISH_TIMEOUT_SECONDS,
                  correlation_id=outcome["correlationid"], message_id=outcome["id"],
                  headers={"tenant": tenant, "lane": outcome["lane"], "ce-type": outcome["type"],
                           "ce-id": outcome["id"]})
    with confirming_producer(amqp_uri) as producer:
        for exchange, key in ((FEED_EXCHANGE, routing_key),
                              *((("", reply_to),) if reply_to and reply_to.startswith(f"{tenant}.") else ())):
            try:
                producer.publish(outcome, exchange=exchange, routing_key=key, **common)
            except MessageNacked:
                log.warning("the queues of %s refused the outcome of command %s (%s)", tenant,
                            outcome["data"]["command_id"], key)


def transient(error: DomainError) -> bool:
    """Unavailable, timed out (5xx): worth retrying, unlike a validation error, a missing resource or a conflict."""
    return error.status >= 500


def command(command_type: str | None, *, sender: str = CLIENT, lane_attr: str = "command_lane",
            refused_attr: str = "record_refused_command") -> Callable:
    """Register ``method(self, sender_id, data, command_id) -> result dict`` as the handler of a command type.

    ``sender`` says who may send it: a client organisation (``ten_…``, the default) or a provider (``prv_…``); the
    other is rejected. The service provides ``command_lane(sender_id) -> lane`` (raising a DomainError such as
    NotFound for a sender it does not know) and, when it keeps an audit trail,
    ``record_refused_command(delivery, reason)``, called for every message refused before its handler
    (malformed, unanswered, or from the wrong kind of sender). ``command(UNKNOWN)`` registers the handler that
    answers commands nobody handles.
    """

    def decorator(method: Callable) -> Callable:
        @wraps(method)
        def handle(self, delivery: dict) -> tuple[dict, bool]:
            """(the outcome event, whether the message is to be parked as malformed). A handler that hangs (its
            sender's lane, its audit record or its work) is cut off, a failed attempt like any other: retried, then
            parked and answered."""
            deadline = delivery.get("deadline_seconds") or HANDLER_TIMEOUT_SECONDS
            with eventlet.Timeout(deadline, HandlerTimedOut(
                    f"{self.name}.{method.__name__} ran longer than its {deadline:g} s deadline")):
                return answer(self, delivery)

        def answer(self, delivery: dict) -> tuple[dict, bool]:
            service = self.name
            lane = DEFAULT_LANE
            if delivery["answer"]:
                try:
                    lane = getattr(self, lane_attr)(delivery["sender_id"])
                except DomainError as exc:
                    if transient(exc):
                        raise
                    delivery = {**delivery, "problem": delivery["problem"] or {"reason": exc.message,
                                                                               "errors": exc.details}}
            record_refused = getattr(self, refused_attr, None) or (lambda delivery, reason: None)
            if delivery["problem"] is not None:
                # Unavailable (transient) when the record cannot be written: retried, then parked.
                record_refused(delivery, delivery["problem"]["reason"])
                return outcome_envelope(service, delivery, lane=lane), True
            if not delivery["sender_id"].startswith(SENDER_PREFIX[sender]):
                reason = f"only a {sender}'s system may send {command_type}"
                record_refused(delivery, reason)
                return outcome_envelope(service, delivery, lane=lane, reason=reason, errors={}), False
            try:
                result = method(self, delivery["sender_id"], delivery["data"], delivery["command_id"])
            except DomainError as exc:
                if transient(exc):
                    raise  # retried with back-off, then parked
                return outcome_envelope(service, delivery, lane=lane, reason=exc.message, errors=exc.details), False
            return outcome_envelope(service, delivery, lane=lane, result=result), False

        # One entrypoint per lane, each on its lane's queue (the unknown-command handler: one, of no lane).
        for lane in ((None,) if command_type is UNKNOWN else vocabulary.LANES):
            handle = CommandHandler.decorator(command_type, lane=lane)(handle)
        return handle

    return decorator


