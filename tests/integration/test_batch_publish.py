"""The batch publisher against the real broker: the frames it packs itself arrive as kombu would have sent them, and
each message's confirm, nack or return is told apart (shared/runtime/batchpublish.py)."""

import json

import pytest
from kombu import Connection, Exchange, Queue

from shared.runtime.batchpublish import ACKED, NACKED, RETURNED, BatchPublisher, Outgoing
from tests.support.infra import unique_name

pytestmark = pytest.mark.integration


@pytest.fixture
def exchange(amqp_uri):
    made = Exchange(unique_name("batchpub"), type="topic", durable=True, auto_delete=False)
    queues = []

    def bind(routing_key: str, **arguments) -> Queue:
        queue = Queue(f"{made.name}-{routing_key}", exchange=made, routing_key=routing_key, durable=True,
                      queue_arguments=arguments or None)
        with Connection(amqp_uri) as connection:
            queue(connection.channel()).declare()
        queues.append(queue)
        return queue

    yield made, bind
    with Connection(amqp_uri) as connection:
        for queue in queues:
            queue(connection.channel()).delete()
        made(connection.channel()).delete()


def test_messages_arrive_with_their_body_headers_and_properties_whatever_their_size(amqp_uri, exchange):
    exchange, bind = exchange
    queue = bind("thing.made.v1")
    big = {"pad": "é" * 150_000}  # larger than a frame (128 KB): the body goes in several frames
    sent = [Outgoing(exchange.name, "thing.made.v1", json.dumps(body).encode(), headers, f"id-{n}")
            for n, (body, headers) in enumerate([
                ({"n": 0}, {"ce-type": "tasklinkr.x.thing.made.v1", "lane": "smb", "tenant": "t-1"}),
                (big, {"lane": "enterprise"}),
                ({"n": 2}, {"attempt": 3, "nothing": None, "lane": "smb"}),  # not only strings: py-amqp encodes it
                ({}, {}),
            ])]
    sent.append(Outgoing(exchange.name, "thing.made.v1", b"", {"lane": "smb"}, "id-empty"))  # no body frame at all
    publisher = BatchPublisher(amqp_uri, [exchange])
    try:
        assert publisher.publish(sent) == [ACKED] * 5
        assert publisher.publish(sent[:1]) == [ACKED]  # the next batch on the same channel
    finally:
        publisher.close()
    with Connection(amqp_uri) as connection:
        bound = queue(connection.channel())
        received = [bound.get(no_ack=True) for _ in range(6)]
        assert bound.get(no_ack=True) is None
    for message, original in zip(received, [*sent, sent[0]], strict=True):
        assert message.body.encode() == original.body  # kombu hands it over decoded (content encoding utf-8)
        assert message.headers == original.headers
        assert message.properties["message_id"] == original.message_id
        assert message.properties["delivery_mode"] == 2
        assert (message.content_type, message.content_encoding) == ("application/json", "utf-8")


def test_each_message_is_told_confirmed_refused_or_returned(amqp_uri, exchange):
    exchange, bind = exchange
    bind("thing.kept.v1")
    bind("thing.refused.v1", **{"x-max-length": 0, "x-overflow": "reject-publish"})
    publisher = BatchPublisher(amqp_uri, [exchange])
    try:
        outcomes = publisher.publish([
            Outgoing(exchange.name, "thing.kept.v1", b"{}", {}, "kept"),
            Outgoing(exchange.name, "thing.refused.v1", b"{}", {}, "refused"),
            Outgoing(exchange.name, "thing.unbound.v1", b"{}", {}, "unbound"),
            Outgoing(exchange.name, "thing.unbound.v1", b"{}", {}, "unbound-not-mandatory", mandatory=False),
            Outgoing(exchange.name, "thing.kept.v1", b"{}", {}, "kept-after"),
        ])
    finally:
        publisher.close()
    assert outcomes == [ACKED, NACKED, RETURNED, ACKED, ACKED]


def test_a_batch_written_before_the_last_ones_outcomes_were_taken_gets_its_own(amqp_uri, exchange):
    exchange, bind = exchange
    bind("thing.kept.v1")
    bind("thing.refused.v1", **{"x-max-length": 0, "x-overflow": "reject-publish"})

    def message(kind: str, message_id: str) -> Outgoing:
        return Outgoing(exchange.name, f"thing.{kind}.v1", b"{}", {}, message_id)

    publisher = BatchPublisher(amqp_uri, [exchange])
    try:
        first = publisher.send([message("kept", "a"), message("unbound", "b"), message("refused", "c")])
        second = publisher.send([message("refused", "d"), message("kept", "b"), message("unbound", "e")])
        assert publisher.outcomes(first) == [ACKED, RETURNED, NACKED]
        assert publisher.outcomes(second) == [NACKED, ACKED, RETURNED]  # "b" was returned in the first batch only
        assert publisher.publish([message("kept", "f"), message("refused", "g")]) == [ACKED, NACKED]
    finally:
        publisher.close()
