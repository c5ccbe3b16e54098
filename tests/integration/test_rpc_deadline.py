"""RPC requests whose caller stopped waiting are dropped by the service, not run late."""

import time

import pytest
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ServiceRpcProxy

from shared.runtime.rpc import DEADLINE_HEADER, rpc

pytestmark = pytest.mark.integration

RAN: list[str] = []


class Recorder:
    name = "deadlined"

    @rpc
    def record(self, label: str) -> str:
        RAN.append(label)
        return label


def test_a_request_arriving_after_its_callers_deadline_is_dropped_and_one_in_time_runs(container_factory,
                                                                                       service_config, amqp_uri):
    RAN.clear()
    container_factory(Recorder, service_config).start()
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel())
        exchange = Exchange("nameko-rpc", type="topic", durable=True)
        for label, deadline in (("late", time.time() - 1), ("malformed", "soon")):
            producer.publish({"args": [label], "kwargs": {}}, exchange=exchange, routing_key="deadlined.record",
                             serializer="json", headers={DEADLINE_HEADER: deadline}, reply_to="nobody",
                             correlation_id=label, mandatory=True)
    with ServiceRpcProxy("deadlined", {"AMQP_URI": amqp_uri}) as proxy:
        assert proxy.record("in time") == "in time"  # after the two in the queue
    # The late one was dropped unrun; a deadline that is not a time does not drop a request.
    assert RAN == ["malformed", "in time"]
