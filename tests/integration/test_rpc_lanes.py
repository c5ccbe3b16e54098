"""RPC in workload lanes over the real broker: each lane's requests have their own queue, a process run for one lane
serves only that lane's, and a backlog of one lane's requests does not delay the other lane's calls (issue 15)."""

import time

import eventlet
import pytest
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ServiceRpcProxy

from shared.runtime.rpc import lane_routing_prefix, rpc, rpc_queue_name

pytestmark = pytest.mark.integration

SLOW_SECONDS = 0.3
SERVED: list[tuple[str, str]] = []  # (the process's lanes, the request's label)


class LaneServer:
    name = "laneserver"
    lanes: list[str] = []

    @rpc
    def work(self, label: str, slow: bool = False) -> str:
        if slow:
            eventlet.sleep(SLOW_SECONDS)
        SERVED.append((",".join(self.lanes), label))
        return label


def server_for(container_factory, service_config, lanes):
    """A LaneServer process serving ``lanes`` only, with one worker; each its own class so it can say which it is."""
    cls = type("LaneServer", (LaneServer,), {"lanes": lanes})
    return container_factory(cls, dict(service_config, LANES=lanes, max_workers=1))


def call(amqp_uri, lane, label, timeout=10):
    with ServiceRpcProxy(lane_routing_prefix("laneserver", lane), {"AMQP_URI": amqp_uri}, timeout=timeout) as proxy:
        return proxy.work(label)


@pytest.fixture(autouse=True)
def fresh(amqp_uri):
    SERVED.clear()
    yield
    with Connection(amqp_uri) as connection:  # a test's backlog is not the next test's
        for lane in ("enterprise", "smb"):
            connection.default_channel.queue_delete(rpc_queue_name("laneserver", lane))


@pytest.fixture
def one_process_per_lane(container_factory, service_config):
    for lane in ("enterprise", "smb"):
        server_for(container_factory, service_config, [lane]).start()


def test_a_process_of_one_lane_serves_only_that_lanes_requests_and_a_lane_less_call_goes_to_the_default_lane(
        one_process_per_lane, amqp_uri):
    for n in range(3):
        assert call(amqp_uri, "enterprise", f"big-{n}") == f"big-{n}"
        assert call(amqp_uri, "smb", f"small-{n}") == f"small-{n}"
    with ServiceRpcProxy("laneserver", {"AMQP_URI": amqp_uri}, timeout=10) as proxy:
        assert proxy.work("no lane") == "no lane"
    assert sorted(label for lanes, label in SERVED if lanes == "enterprise") == ["big-0", "big-1", "big-2"]
    assert sorted(label for lanes, label in SERVED if lanes == "smb") == ["no lane", "small-0", "small-1", "small-2"]


def test_a_backlog_of_enterprise_requests_does_not_delay_the_small_lanes_calls(one_process_per_lane, amqp_uri):
    backlog = 30  # 9 s of enterprise requests for its one worker
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel())
        for n in range(backlog):
            producer.publish({"args": [f"big-{n}"], "kwargs": {"slow": True}},
                             exchange=Exchange("nameko-rpc", type="topic", durable=True),
                             routing_key=f"{lane_routing_prefix('laneserver', 'enterprise')}.work",
                             serializer="json", reply_to="nobody", correlation_id=f"big-{n}", mandatory=True)
        assert connection.default_channel.queue_declare(rpc_queue_name("laneserver", "enterprise"),
                                                        passive=True).message_count > backlog // 2
    started = time.monotonic()
    assert call(amqp_uri, "smb", "small-now") == "small-now"
    waited = time.monotonic() - started
    big_done = sum(1 for _, label in SERVED if label.startswith("big-"))
    assert waited < 2.0, f"the small lane's call waited {waited:.1f} s"
    assert big_done < backlog  # the enterprise backlog was still there when the small call was answered


def test_a_process_of_every_lane_serves_both_lanes_queues(container_factory, service_config, amqp_uri):
    both = server_for(container_factory, service_config, [])
    both.start()
    assert call(amqp_uri, "enterprise", "big") == "big"
    assert call(amqp_uri, "smb", "small") == "small"
    assert sorted(label for _, label in SERVED) == ["big", "small"]
