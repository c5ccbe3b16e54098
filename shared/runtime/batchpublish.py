"""Publishing a batch of messages with publisher confirms, pipelined: the batch goes to the socket in a few large
writes, then the broker's confirms (and returns) for it are collected.

Why not kombu's ``basic_publish`` per message: per message it runs a timeout context, a promise, py-amqp's generic
encoding of the method's arguments (the same for every message to one exchange and routing key) and of the
properties, and one system call. Profiled on the outbox relay's drain (``make bench-relay``, 5,000 events under a
load average of 12-16): 200 us of relay CPU per event, a third of the wall time in ``send``. Here every message of a
batch has the same shape (persistent JSON, string headers, a message id), so its three AMQP frames (method, content
header, body) are packed directly: the method's arguments once per exchange, routing key and ``mandatory``, the
properties with ``struct`` (py-amqp's encoder only for a header value that is not a string). The frames go to the
socket about 64 KB at a time, so the broker starts on a batch while the rest is being packed. The channel is in
confirm mode; delivery tags are counted here (one per message, in publish order).
"""

from __future__ import annotations

import time
from struct import pack
from typing import NamedTuple

from amqp.serialization import dumps
from kombu import Connection, Exchange

ACKED, NACKED, RETURNED = "acked", "nacked", "returned"


class ConfirmTimeout(Exception):
    """The broker did not confirm every message of a batch in time."""


class Outgoing(NamedTuple):
    """One message to publish: persistent JSON, with its AMQP headers and message id."""

    exchange: str
    routing_key: str
    body: bytes
    headers: dict
    message_id: str
    mandatory: bool = True


WRITE_BYTES = 64 * 1024  # frames are written to the socket in chunks of about this size
_METHOD, _HEADER, _BODY, _FRAME_END = 1, 2, 3, b"\xce"
_BASIC_PUBLISH = pack(">HH", 60, 40)  # class basic, method publish
# Content header properties, in the order AMQP 0-9-1 lays them out: content type, content encoding, headers,
# delivery mode, message id.
_PROPERTY_FLAGS = 0x8000 | 0x4000 | 0x2000 | 0x1000 | 0x0080
_PERSISTENT = b"\x02"


def _shortstr(text: str) -> bytes:
    data = text.encode()
    if len(data) > 255:
        raise ValueError(f"an AMQP short string holds at most 255 bytes: {text[:40]!r}...")
    return bytes((len(data),)) + data


_JSON_UTF8 = _shortstr("application/json") + _shortstr("utf-8")


def _table(headers: dict) -> bytes:
    """An AMQP field table: string values packed here (long strings, as py-amqp writes them), anything else by
    py-amqp's encoder."""
    if not all(isinstance(value, str) for value in headers.values()):
        return dumps("F", [headers])
    parts = []
    for key, value in headers.items():
        data = value.encode()
        parts += [_shortstr(key), b"S", pack(">I", len(data)), data]
    table = b"".join(parts)
    return pack(">I", len(table)) + table


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return b"".join((pack(">BHI", kind, channel, len(payload)), payload, _FRAME_END))


class BatchPublisher:
    """A connection and a confirm-mode channel that publish batches; ``exchanges`` are declared when it connects."""

    def __init__(self, amqp_uri: str, exchanges: list[Exchange], confirm_timeout: float = 30.0):
        self.amqp_uri = amqp_uri
        self.exchanges = exchanges
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._channel = None
        self._arguments: dict[tuple[str, str, bool], bytes] = {}
        self._next_tag = 0
        self._first_tag = 1
        self._last_multiple = 0
        self._acked: set[int] = set()
        self._nacked: set[int] = set()
        self._returned: set[str] = set()

    def publish(self, messages: list[Outgoing]) -> list[str]:
        """Publish ``messages`` and wait for the broker to confirm each: per message ``ACKED``, ``NACKED`` (the broker
        refused it, e.g. a full queue) or ``RETURNED`` (mandatory, and no queue was bound for it)."""
        channel = self._ensure_channel()
        self._acked.clear()
        self._nacked.clear()
        self._returned.clear()
        self._first_tag = self._next_tag + 1
        transport = self._connection.connection.transport
        number, body_max = channel.channel_id, self._connection.connection.frame_max - 8
        pending: list[bytes] = []
        size = 0
        for message in messages:
            frames = self._frames(number, body_max, message)
            pending += frames
            size += sum(len(frame) for frame in frames)
            if size >= WRITE_BYTES:
                transport.write(b"".join(pending))
                pending, size = [], 0
        if pending:
            transport.write(b"".join(pending))
        self._next_tag += len(messages)
        self._await_confirms(len(messages))
        return [NACKED if self._first_tag + n in self._nacked
                else RETURNED if message.mandatory and message.message_id in self._returned else ACKED
                for n, message in enumerate(messages)]

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken; nothing to release
                pass

    def _frames(self, channel: int, body_max: int, message: Outgoing) -> list[bytes]:
        """basic.publish, its content header and its body (in frames of at most ``body_max`` bytes)."""
        key = (message.exchange, message.routing_key, message.mandatory)
        method = self._arguments.get(key)
        if method is None:  # reserved short, exchange, routing key, mandatory and immediate bits
            method = self._arguments[key] = _frame(_METHOD, channel, _BASIC_PUBLISH + dumps("Bssbb", (0, *key, False)))
        body = message.body
        header = b"".join((pack(">HHQH", 60, 0, len(body), _PROPERTY_FLAGS), _JSON_UTF8, _table(message.headers),
                           _PERSISTENT, _shortstr(message.message_id)))
        return [method, _frame(_HEADER, channel, header),
                *(_frame(_BODY, channel, body[at:at + body_max]) for at in range(0, len(body), body_max))]

    def _await_confirms(self, count: int) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        while len(self._acked) + len(self._nacked) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfirmTimeout(f"no confirm from the broker within {self.confirm_timeout}s")
            try:
                self._connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._resolve(self._acked, delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._resolve(self._nacked, delivery_tag, multiple)

    def _resolve(self, into: set[int], delivery_tag: int, multiple: bool) -> None:
        """Count the tags of this batch the confirm covers (all up to ``delivery_tag`` when ``multiple``)."""
        if multiple:
            into.update(tag for tag in range(max(self._last_multiple + 1, self._first_tag), delivery_tag + 1)
                        if tag not in self._acked and tag not in self._nacked)
            self._last_multiple = max(self._last_multiple, delivery_tag)
        elif delivery_tag >= self._first_tag:
            into.add(delivery_tag)

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        message_id = message.properties.get("message_id")
        if message_id:
            self._returned.add(message_id)

    def _ensure_channel(self):
        if self._channel is None:
            self._connection = Connection(self.amqp_uri)
            self._connection.ensure_connection(max_retries=1)
            channel = self._connection.channel()
            channel.events["basic_return"].add(self._on_return)
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            for exchange in self.exchanges:
                exchange(channel).declare()
            channel.confirm_select()
            self._arguments.clear()  # the method frames carry the channel's number
            self._channel = channel
            self._next_tag = 0
            self._last_multiple = 0
        return self._channel
