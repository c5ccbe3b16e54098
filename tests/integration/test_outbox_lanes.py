"""The outbox relay per lane, against a real broker and database (issue 15): each lane's relay has its own lease and
position and follows the outbox's change stream filtered to its lane.

These tests prove that a backlog the large lane cannot publish does not hold up the small lane's events, that a
lane's relay never publishes another lane's events (a transaction's events are split by lane when written, and a
document written before lanes is split when read), that each lane resumes from its own position after a crash, that
a segment is dropped only once every lane has passed it (a lane that never ran holds up only segments with its own
events), that a lane's first start begins where the relay before lanes stopped, and that a process of one lane runs
only that lane's relay.
"""

import time
from datetime import timedelta

import pytest
from bson import ObjectId
from kombu import Connection
from nameko.testing.utils import get_extension
from prometheus_client import REGISTRY

from shared.runtime.outbox import (
    LEASE_ID,
    STREAM_MATCH,
    event_lane,
    lease_id,
    pending_count,
    relay_states,
    segment_name,
    segments,
)
from shared.runtime.persistence import Database, UnitOfWork
from shared.vocabulary.times import utc_now
from tests.support.relayrig import EVENT, publish_until_the_second_store, relay_rig, running
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

LARGE_EVENT = "relaytest.bulked.v1"  # the large lane's events, refused by their queue in the first test


@pytest.fixture
def rig(amqp_uri, mongo_client):
    with relay_rig(amqp_uri, mongo_client) as made:
        yield made


def _refused(service: str) -> float:
    return REGISTRY.get_sample_value("tasklinkr_events_refused_total",
                                     {"service": service, "reason": "nack", "lane": "enterprise"}) or 0.0


def _backlog(service: str, lane: str) -> float | None:
    return REGISTRY.get_sample_value("tasklinkr_outbox_backlog", {"service": service, "lane": lane})


def test_a_backlog_the_large_lane_cannot_publish_does_not_hold_up_the_small_lanes_events(rig):
    # The large lane's consumer queue is full and refuses everything (reject-publish): its relay's read window (100
    # events) fills with refused events and it cannot read further; one relay for both lanes would stop there too.
    full = rig.bind("large-full", LARGE_EVENT, **{"x-max-length": 0, "x-overflow": "reject-publish"})
    large = rig.commit_each(range(300), lane="enterprise", routing_key=LARGE_EVENT)
    enterprise = rig.relay("enterprise", batch_size=50, read_ahead=100, poll_seconds=0.05)
    smb = rig.relay("smb", batch_size=50, poll_seconds=0.05)
    with running(enterprise, smb):
        assert wait_for(lambda: _refused(rig.service) >= 100, timeout=20), "the large lane's events were refused"
        committed_at = time.monotonic()
        small = rig.commit_each(range(300, 320), lane="smb")
        delivered: list[str] = []
        assert wait_for(lambda: delivered.extend(rig.delivered()) or len(delivered) >= 20, timeout=10)
        took = time.monotonic() - committed_at
        assert delivered == small  # all of them, each once, in commit order, none of the large lane's
        assert took < 3.0, f"the small lane's events took {took:.1f} s behind the large lane's backlog"
        assert pending_count(rig.db, "enterprise") == 300
        assert wait_for(lambda: pending_count(rig.db, "smb") == 0, timeout=2)  # its position, stored within 0.25 s
        assert wait_for(lambda: (_backlog(rig.service, "enterprise"), _backlog(rig.service, "smb")) == (300, 0),
                        timeout=15)  # the gauges, exported every IDLE_CHORE_SECONDS

        # The queue makes room: the large lane's backlog goes out too, none of it lost.
        with Connection(rig.amqp_uri) as connection:
            full(connection.channel()).delete()
        drained = rig.bind("large-sink", LARGE_EVENT)
        got: list[str] = []
        assert wait_for(lambda: got.extend(rig.delivered(drained)) or set(got) >= set(large), timeout=60)
    assert pending_count(rig.db) == 0


def test_a_lanes_relay_publishes_only_its_lanes_events_including_those_written_before_lanes(rig, mongo_client):
    # One transaction emits in both lanes, as a billing run can: the writer puts each lane's events in a document
    # of their own.
    with mongo_client.start_session() as session, session.start_transaction():
        uow = UnitOfWork(rig.db, session, rig.service, None, None)
        both = uow.emit_many([dict(routing_key=EVENT, subject=f"mixed-{n}", data={"n": n},
                                   lane=("smb", "enterprise")[n % 2]) for n in range(6)])
        uow.write_outbox()  # what ``Store.transact`` does when the work is done
    documents = [doc for name in segments(rig.db) for doc in rig.db[name].find({})]  # the minute may have turned
    assert sorted(doc["lane"] for doc in documents) == ["enterprise", "smb"]
    assert all(event_lane(event) == doc["lane"] for doc in documents for event in doc["events"])
    # A document from before lanes: no lane field, events of both lanes, one without a lane at all (default lane).
    old = [rig.event(10, lane="enterprise", nested=True), rig.event(11, lane="smb", nested=True),
           rig.event(12, lane="smb", nested=True)]
    del old[2]["envelope"]["lane"]
    rig.db[segment_name()].insert_one({"_id": ObjectId(), "created_at": utc_now(), "count": 3, "events": old})
    small = [e["id"] for e in both if e["lane"] == "smb"] + [old[1]["event_id"], old[2]["event_id"]]
    large = [e["id"] for e in both if e["lane"] == "enterprise"] + [old[0]["event_id"]]

    assert rig.publish_once("smb") == 5
    assert rig.delivered() == small
    assert pending_count(rig.db, "smb") == 0 and pending_count(rig.db, "enterprise") == 4
    assert rig.publish_once("enterprise") == 4
    assert rig.delivered() == large
    assert pending_count(rig.db) == 0


def test_each_lane_resumes_from_its_own_position_after_a_crash(rig):
    # The large lane's relay stores its position after every batch (the crash comes between two stores).
    smb, enterprise = rig.relay("smb", batch_size=5), rig.relay("enterprise", batch_size=5, position_interval=0)
    smb.publish_pending(), enterprise.publish_pending()  # both follow the stream from here
    small, large = [], []
    for seq in range(15):
        small += rig.commit_each([seq], lane="smb", subject=lambda n: f"s-{n}")
        large += rig.commit_each([100 + seq], lane="enterprise", subject=lambda n: f"e-{n}")
    assert smb.publish_pending() == 15
    smb.stop()

    with pytest.raises(RuntimeError):
        publish_until_the_second_store(enterprise)
    enterprise.stop()
    assert pending_count(rig.db, "enterprise") == 10 and pending_count(rig.db, "smb") == 0
    rig.db.relay_lease.update_many({}, {"$set": {"expires_at": utc_now() - timedelta(seconds=1)}})  # both gone

    smb_again, enterprise_again = rig.relay("smb", batch_size=5), rig.relay("enterprise", batch_size=5)
    try:
        assert smb_again.publish_pending() == 0  # from the small lane's own position: nothing again
        assert enterprise_again.publish_pending() == 10  # the batch confirmed but not stored goes out again
    finally:
        smb_again.stop(), enterprise_again.stop()
    delivered = rig.delivered()
    assert [e for e in delivered if e in small] == small
    # At-least-once, in order: everything up to the second batch went out, the third too when the relay had read it
    # from its stream before the second batch's confirms came back (it goes out before they are taken; the stream
    # hands the relay ten changes a read, so that is a matter of timing); then, from the position stored after the
    # first batch, the second and third again.
    before_the_crash = [e for e in delivered if e in large][:-10]
    assert before_the_crash in (large[:10], large)
    assert [e for e in delivered if e in large] == before_the_crash + large[5:]
    leases = {lease["_id"]: lease for lease in rig.db.relay_lease.find({})}
    assert set(leases) == {lease_id("smb"), lease_id("enterprise")}
    assert leases[lease_id("smb")]["position"] != leases[lease_id("enterprise")]["position"]
    assert pending_count(rig.db) == 0


def test_a_segment_is_dropped_only_once_every_lane_passed_it(rig):
    mixed = segment_name(utc_now() - timedelta(seconds=40), seconds=5)
    small_only = segment_name(utc_now() - timedelta(seconds=30), seconds=5)
    rig.commit([rig.event(0, lane="smb"), rig.event(1, lane="enterprise")], segment=mixed)
    rig.commit([rig.event(2, lane="smb")], segment=small_only)
    options = dict(retention_seconds=0, drop_grace=0)
    smb = rig.relay("smb", **options)
    try:
        assert smb.publish_pending() == 2
        time.sleep(1.1)  # the drop is looked at once a second
        smb.publish_pending()
    finally:
        smb.stop()
    present = segments(rig.db)
    assert mixed in present, "the large lane has not published its event in it"
    assert small_only not in present, "the large lane never ran, but this segment holds none of its events"

    enterprise = rig.relay("enterprise", **options)
    try:
        assert enterprise.publish_pending() == 1
        time.sleep(1.1)
        enterprise.publish_pending()
    finally:
        enterprise.stop()
    assert mixed not in segments(rig.db)
    assert len(rig.delivered()) == 3


def test_a_lanes_first_start_begins_where_the_relay_before_lanes_stopped(rig):
    stream = rig.db.watch(STREAM_MATCH, max_await_time_ms=50)
    for seq in range(4):  # published by the relay before lanes, which stored its position after them
        rig.commit([rig.event(seq, lane=("smb", "enterprise")[seq % 2])])
    while stream.try_next() is not None:
        pass
    rig.db.relay_lease.insert_one({"_id": LEASE_ID, "position": stream.resume_token, "position_time": utc_now(),
                                   "published_id": rig.db[segment_name()].find_one(sort=[("_id", -1)])["_id"],
                                   "expires_at": utc_now() - timedelta(seconds=1), "token": 7})
    stream.close()
    assert pending_count(rig.db) == 0
    small = rig.commit_each(range(4, 7), lane="smb")
    large = rig.commit_each(range(7, 9), lane="enterprise")
    assert pending_count(rig.db, "smb") == 3 and pending_count(rig.db, "enterprise") == 2
    for lane, expected in (("smb", small), ("enterprise", large)):
        assert rig.publish_once(lane) == len(expected)
        assert rig.delivered() == expected


def test_a_process_of_one_lane_runs_only_that_lanes_relay(rig, container_factory, service_config):
    service = type("LaneRelayService", (), {"name": rig.service, "store": Database()})
    container = container_factory(service, dict(service_config, MONGO_DATABASE=rig.service, LANES=["enterprise"],
                                                OUTBOX_POLL_SECONDS=0.05))
    container.start()
    assert set(get_extension(container, Database).relays) == {"enterprise"}
    small = rig.commit_each(range(3), lane="smb")
    large = rig.commit_each(range(3, 6), lane="enterprise")
    assert wait_for(lambda: pending_count(rig.db, "enterprise") == 0, timeout=10)
    time.sleep(0.5)
    # The relay's first start (no position yet) reads the segments in a snapshot and follows the stream opened just
    # before it: an event committed in between is published by both (at-least-once, documented; consumers
    # deduplicate). What this test holds: every enterprise event, in order, and no smb event.
    delivered = rig.delivered()
    assert list(dict.fromkeys(delivered)) == large and not set(delivered) & set(small)
    assert pending_count(rig.db, "smb") == len(small)
    states = {state["lane"]: state for state in relay_states(rig.db)}
    assert states["enterprise"]["holder"] and states["enterprise"]["backlog"] == 0
    assert states["smb"] == {"lane": "smb", "holder": None, "position_time": None, "backlog": 3}
