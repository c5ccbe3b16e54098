"""Workload lanes over the real broker: each lane has its own queue, a lane-specific consumer sees only its lane,
and a backlog in one lane does not hold back the other (issue 15)."""

import time

import eventlet
import pytest
from kombu import Connection, Exchange, Producer
from nameko.testing.services import entrypoint_waiter

from shared.runtime import topology
from shared.runtime.envelope import amqp_headers, build
from shared.runtime.messaging import queue_name, subscribe
from shared.runtime.persistence import Database
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SLOW_SECONDS = 0.3
HANDLED: list[tuple[str, str, float]] = []  # (service process, thing id, when)


class LaneConsumer:
    name = "laneconsumer"
    store = Database()

    @subscribe("laneproducer", "thing.made.v1", check_contract=False)
    def on_thing_made(self, uow, envelope):
        if envelope["data"].get("slow"):
            eventlet.sleep(SLOW_SECONDS)
        HANDLED.append((self.container_lanes(), envelope["data"]["thing_id"], time.monotonic()))

    def container_lanes(self) -> str:
        return ",".join(self.lanes)


CATALOG = {"events": [
    {"type": "thing.made.v1", "producer": "laneproducer",
     "consumers": [{"service": "laneconsumer", "handler": "on_thing_made"}]},
    {"type": "wide.made.v1", "producer": "laneproducer", "every_lane": True,
     "consumers": [{"service": "laneconsumer", "handler": "on_wide_made"}]},
]}


def consumer_for(container_factory, service_config, lanes):
    """A LaneConsumer process consuming ``lanes`` only; each process its own class so it can say which it is."""
    cls = type("LaneConsumer", (LaneConsumer,), {"lanes": lanes})
    config = dict(service_config, LANES=lanes, max_workers=1)
    return container_factory(cls, config)


def publish(amqp_uri, thing_id, lane, **data):
    event = build(service="laneproducer", routing_key="thing.made.v1", subject=thing_id,
                  data={"thing_id": thing_id, **data}, lane=lane)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        Producer(connection.channel()).publish(
            event, exchange=Exchange("laneproducer.events", type="topic", durable=True),
            routing_key="thing.made.v1", serializer="json", mandatory=True, headers=amqp_headers(event))
    return event


@pytest.fixture(autouse=True)
def fresh():
    HANDLED.clear()


def test_each_lane_of_a_handler_has_its_own_queue_and_a_lane_consumer_never_gets_the_other_lanes_work(
        container_factory, service_config, amqp_uri):
    topology.apply(amqp_uri, CATALOG)
    enterprise = consumer_for(container_factory, service_config, ["enterprise"])
    small = consumer_for(container_factory, service_config, ["smb"])
    enterprise.start()
    small.start()
    for n in range(5):
        publish(amqp_uri, f"big-{n}", "enterprise")
        publish(amqp_uri, f"small-{n}", "smb")
    assert wait_for(lambda: len(HANDLED) == 10, timeout=20)
    time.sleep(0.5)  # nothing more arrives
    assert len(HANDLED) == 10
    assert {thing for lanes, thing, _ in HANDLED if lanes == "enterprise"} == {f"big-{n}" for n in range(5)}
    assert {thing for lanes, thing, _ in HANDLED if lanes == "smb"} == {f"small-{n}" for n in range(5)}
    names = {q.name for q in topology.declarations(CATALOG)[1]}
    for lane in ("enterprise", "smb"):
        assert queue_name("laneproducer", "thing.made.v1", "laneconsumer", "on_thing_made", lane) in names


def test_a_backlog_in_the_enterprise_lane_does_not_delay_the_small_lane(
        container_factory, service_config, amqp_uri):
    topology.apply(amqp_uri, CATALOG)
    backlog = 30  # 9 s of enterprise work for its one worker
    for n in range(backlog):
        publish(amqp_uri, f"big-{n}", "enterprise", slow=True)
    enterprise = consumer_for(container_factory, service_config, ["enterprise"])
    small = consumer_for(container_factory, service_config, ["smb"])
    enterprise.start()
    small.start()
    assert wait_for(lambda: any(thing == "big-0" for _, thing, _ in HANDLED), timeout=20)
    sent = time.monotonic()
    with entrypoint_waiter(small, "on_thing_made", timeout=5):
        publish(amqp_uri, "small-now", "smb")
    waited = next(at for _, thing, at in HANDLED if thing == "small-now") - sent
    big_done = sum(1 for _, thing, _ in HANDLED if thing.startswith("big-"))
    assert waited < 2.0, f"the small lane waited {waited:.1f} s"
    assert big_done < backlog  # the enterprise backlog was still there when the small event was handled


def test_an_event_without_a_lane_is_handled_in_the_default_lane_not_dropped(
        container_factory, service_config, amqp_uri):
    topology.apply(amqp_uri, CATALOG)
    small = consumer_for(container_factory, service_config, ["smb"])
    small.start()
    event = build(service="laneproducer", routing_key="thing.made.v1", subject="bare", data={"thing_id": "bare"},
                  lane="enterprise")
    with entrypoint_waiter(small, "on_thing_made", timeout=10):
        with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
            Producer(connection.channel()).publish(  # no headers at all, as a plain nameko dispatch sends it
                event, exchange=Exchange("laneproducer.events", type="topic", durable=True),
                routing_key="thing.made.v1", serializer="json", mandatory=True)
    assert [thing for _, thing, _ in HANDLED] == ["bare"]


def test_an_event_that_concerns_every_lane_reaches_each_lanes_queue(amqp_uri):
    topology.apply(amqp_uri, CATALOG)
    event = build(service="laneproducer", routing_key="wide.made.v1", subject="w", data={}, lane="enterprise")
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        Producer(connection.channel()).publish(
            event, exchange=Exchange("laneproducer.events", type="topic", durable=True),
            routing_key="wide.made.v1", serializer="json", mandatory=True, headers=amqp_headers(event))
        channel = connection.channel()
        for lane in ("enterprise", "smb"):
            name = queue_name("laneproducer", "wide.made.v1", "laneconsumer", "on_wide_made", lane)
            assert wait_for(lambda name=name: channel.queue_declare(name, passive=True).message_count == 1)
