"""The outbox relay against a real broker and database: it follows the outbox's change stream, stores its position
once per published batch (no per-event mark), and drops the segments it passed.

These tests prove that a transaction committing late is never skipped, that a crash before the position is stored
publishes again rather than loses, that a relay that lost its lease stores nothing, that a backlog larger than the
read window goes out complete and in order, one event per aggregate per batch, that a refused event holds back only
its aggregate and its segment, and that the relay starts over from a snapshot when the stream's history is gone.
"""

import contextlib
import time
from datetime import timedelta

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from prometheus_client import REGISTRY
from pymongo.errors import CollectionInvalid

from shared.runtime.outbox import (
    LeaseLost,
    OutboxRelay,
    PublishFailed,
    event_subject,
    outbox_document,
    outbox_size,
    pending_count,
    segment_name,
    segments,
)
from shared.vocabulary.times import utc_now
from tests.support.infra import unique_name
from tests.support.relayrig import publish_until_the_second_store, relay_rig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig(amqp_uri, mongo_client):
    """A service of the test's own: its outbox and a queue bound to its events."""
    with relay_rig(amqp_uri, mongo_client) as made:
        yield made


def test_a_transaction_that_took_its_id_first_and_committed_last_is_published_after_the_others(rig):
    relay = rig.relay(batch_size=100)
    try:
        assert relay.publish_pending() == 0  # following the stream from here
        segment = segment_name()
        with contextlib.suppress(CollectionInvalid):
            rig.db.create_collection(segment)  # as the relay makes them ahead
        with rig.client.start_session() as session:
            session.start_transaction()
            rig.commit([rig.event(0)], session=session, segment=segment)  # its id taken first ...
            for seq in range(1, 30):  # ... 29 others commit meanwhile
                rig.commit([rig.event(seq)], segment=segment)
            assert relay.publish_pending() == 29  # the open transaction is not visible, nothing waits for it
            session.commit_transaction()  # ... then it commits, its id below every published one
        assert relay.publish_pending() == 1
        assert relay.publish_pending() == 0
    finally:
        relay.stop()
    assert rig.delivered() == rig.committed[1:] + rig.committed[:1]  # in commit order, each once
    assert pending_count(rig.db) == 0


def test_a_relay_that_dies_before_storing_its_position_is_followed_by_one_that_publishes_again(rig):
    relay = rig.relay(batch_size=10, position_interval=0)  # it stores its position after every batch
    relay.publish_pending()
    rig.commit_each(range(25))
    with pytest.raises(RuntimeError):
        publish_until_the_second_store(relay)
    relay.stop()
    rig.db.relay_lease.update_one({}, {"$set": {"expires_at": utc_now() - timedelta(seconds=1)}})
    survivor = rig.relay(batch_size=10)
    try:
        assert survivor.publish_pending() == 15  # the batch confirmed but not stored goes out again
    finally:
        survivor.stop()
    delivered = rig.delivered()
    # Up to the second batch went out, the third too when the relay had read it from its stream before the second
    # batch's confirms came back (the next batch goes out before a batch's confirms are taken; the stream hands the
    # relay twenty changes a read, so that is a matter of timing); then the second and third again. At-least-once:
    # nothing lost, order kept.
    before_the_crash = delivered[:-15]
    assert before_the_crash in (rig.committed[:20], rig.committed)
    assert delivered == before_the_crash + rig.committed[10:]
    assert pending_count(rig.db) == 0


def test_a_position_stored_less_often_means_more_published_again_after_a_crash_and_nothing_after_a_stop(rig):
    relay = rig.relay(batch_size=10, position_interval=60)
    relay.publish_pending()  # following the stream from here: its first store
    rig.commit_each(range(25))
    assert relay.publish_pending() == 25  # three batches confirmed, their position not stored yet (60 s)
    assert pending_count(rig.db) == 25
    relay._disconnect()  # it dies: no stop, no store
    rig.db.relay_lease.update_one({}, {"$set": {"expires_at": utc_now() - timedelta(seconds=1)}})
    successor = rig.relay(batch_size=10, position_interval=60)
    try:
        assert successor.publish_pending() == 25  # everything after the stored position goes out again
    finally:
        successor.stop()  # a stop stores the position it reached
    assert pending_count(rig.db) == 0
    rig.db.relay_lease.update_one({}, {"$set": {"expires_at": utc_now() - timedelta(seconds=1)}})
    assert rig.publish_once(batch_size=10) == 0  # from the position stored at the stop: nothing again
    assert rig.delivered() == rig.committed + rig.committed  # at-least-once, each copy in commit order


def test_a_backlog_larger_than_the_read_window_goes_out_complete_and_oldest_first(rig):
    relay = rig.relay(batch_size=10, read_ahead=30)
    try:
        relay.publish_pending()
        rig.commit_each(range(95))
        assert pending_count(rig.db) == 95
        assert relay.publish_pending() == 95
        assert relay.publish_pending() == 0  # nothing is left to publish again
    finally:
        relay.stop()
    assert rig.delivered() == rig.committed
    assert pending_count(rig.db) == 0


def test_the_first_relay_publishes_what_was_committed_before_it_started_from_a_snapshot(rig):
    rig.commit_each(range(40))
    rig.commit([rig.event(seq) for seq in range(40, 60)])  # one transaction with 20 events
    relay = rig.relay(batch_size=25)
    try:
        assert relay.publish_pending() == 60
        rig.commit_each(range(60, 65))
        assert relay.publish_pending() == 5  # then it follows the stream from where its snapshot began
    finally:
        relay.stop()
    assert rig.delivered() == rig.committed


def test_a_commit_between_the_streams_start_and_the_first_relays_snapshot_goes_out_once(rig):
    rig.commit_each(range(10))
    relay = rig.relay(batch_size=25)
    watch = relay._watch

    def watch_then_commit(*args, **kwargs):  # a service commits after the stream opened, before the snapshot
        stream = watch(*args, **kwargs)
        if not kwargs:
            rig.commit([rig.event(seq) for seq in range(10, 30)])
        return stream

    relay._watch = watch_then_commit
    try:
        assert relay.publish_pending() == 30  # in the snapshot and in the stream: published from the snapshot
        rig.commit_each(range(30, 35))
        assert relay.publish_pending() == 5
    finally:
        relay.stop()
    assert rig.delivered() == rig.committed  # each once, in order


def test_when_the_streams_history_is_gone_the_relay_reads_the_segments_again_and_loses_nothing(rig, caplog):
    relay = rig.relay(batch_size=50)
    try:
        relay.publish_pending()
        rig.commit_each(range(10))
        assert relay.publish_pending() == 10
        relay._forget()  # it stopped here ...
        rig.commit_each(range(10, 20))
        for _ in range(22):  # ... and the server's oplog (20,000 entries in the tests) moved past its position
            rig.db.filler.insert_many([{"n": n} for n in range(1000)])
        assert relay.publish_pending() >= 10
        assert "cannot resume from its position" in caplog.text
    finally:
        relay.stop()
    delivered = rig.delivered()
    assert set(delivered) == set(rig.committed) and delivered[-10:] == rig.committed[10:]


def test_a_tenant_queue_that_refuses_its_copies_never_holds_up_the_services_events(rig):
    tenant = "ten_" + unique_name("t").replace("_", "").ljust(32, "0")[:32]
    full = Queue(f"{tenant}.full", exchange=Exchange("tasklinkr.feed", type="topic", durable=True),
                 routing_key=f"{tenant}.#", durable=True,
                 queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    with Connection(rig.amqp_uri) as connection:
        full(connection.channel()).declare()
    try:
        for seq in range(5):
            rig.commit([rig.event(seq, tenant=tenant, nested=seq % 2 == 1)])  # either form: its copy too
        relay = rig.relay(batch_size=100)
        try:
            assert relay.publish_pending() == 5  # not stuck on the nacked copies
        finally:
            relay.stop()
        assert rig.delivered() == rig.committed
        with Connection(rig.amqp_uri) as connection:  # the tenant's queue kept what it had room for
            assert full(connection.channel()).queue_declare(passive=True).message_count == 1
    finally:
        with Connection(rig.amqp_uri) as connection:
            full(connection.channel()).delete()


def test_the_broker_never_holds_two_events_of_an_aggregate_and_every_event_still_goes_out_in_order(rig):
    rig.commit_each(range(18), subject=lambda seq: f"agg-{seq % 3}")  # three aggregates, interleaved
    relay = rig.relay(batch_size=2)  # the next batch has room for a later event of an aggregate at the broker
    send, confirmed, at_broker, batches = relay._send_batch, relay._confirmed, [], []

    def sending(batch):
        subjects = [event_subject(doc) for doc in batch]
        at_broker.append(subjects)
        batches.append((subjects, [subject for out in at_broker[:-1] for subject in out]))
        return send(batch)

    def confirming(batch, sent):
        at_broker.pop(0)  # the oldest batch at the broker
        return confirmed(batch, sent)

    relay._send_batch, relay._confirmed = sending, confirming
    try:
        assert relay.publish_pending() == 18
    finally:
        relay.stop()
    assert all(len(subjects) == len(set(subjects)) for subjects, _ in batches), batches
    assert all(not set(subjects) & set(out) for subjects, out in batches), batches  # none of an aggregate out
    assert any(out for _, out in batches)  # batches were at the broker together
    delivered = rig.delivered()
    assert sorted(delivered) == sorted(rig.committed)
    for aggregate in range(3):
        assert [e for e in delivered if e in rig.committed[aggregate::3]] == rig.committed[aggregate::3]


def test_a_refused_event_holds_back_its_aggregate_and_its_segment_and_goes_out_when_it_can(rig):
    rig.commit_each(range(6), subject=lambda seq: f"agg-{seq % 2}")
    relay = rig.relay(batch_size=100, retention_seconds=0, drop_grace=0)
    confirmed_of, refused = relay._confirmed, rig.committed[0]
    refusing = [True]

    def refuse_the_first(batch, sent):
        confirmed = confirmed_of(batch, sent)
        if refusing[0] and refused in confirmed:
            confirmed.remove(refused)
            relay._failure[refused] = PublishFailed("refused (injected)")
        return confirmed

    relay._confirmed = refuse_the_first
    try:
        assert relay.publish_pending() == 3  # agg-1's three; agg-0 waits behind its first event
        assert pending_count(rig.db) == 6  # the position has not passed the refused event
        refusing[0] = False
        relay._refused.clear()  # its back-off is over
        assert relay.publish_pending() == 3
    finally:
        relay.stop()
    delivered = rig.delivered()
    agg0 = [e for e in rig.committed if rig.committed.index(e) % 2 == 0]
    assert [e for e in delivered if e in agg0][-3:] == agg0  # agg-0 in order after its refused event
    assert pending_count(rig.db) == 0


def test_segments_the_relay_passed_are_dropped_whole_and_the_outbox_stays_bounded(rig):
    old = segment_name(utc_now() - timedelta(seconds=30), seconds=5)
    rig.commit([rig.event(0)], segment=old)
    relay = rig.relay(batch_size=100, retention_seconds=0, drop_grace=0)
    try:
        assert relay.publish_pending() == 1
        rig.commit_each(range(1, 4))
        assert relay.publish_pending() == 3
        time.sleep(1.1)  # the drop is looked at once a second
        relay.publish_pending()
    finally:
        relay.stop()
    assert old not in segments(rig.db)  # passed long ago: dropped whole
    assert segment_name() in segments(rig.db) or outbox_size(rig.db) == 0
    assert rig.delivered() == rig.committed


def _sample(name: str, service: str, lane: str = "smb") -> float:
    return REGISTRY.get_sample_value(name, {"service": service, "lane": lane}) or 0.0


def _run_until(relay: OutboxRelay, done, timeout: float = 20.0) -> None:
    runner = eventlet.spawn(relay.run)
    deadline = time.monotonic() + timeout
    try:
        while not done() and time.monotonic() < deadline:
            eventlet.sleep(0.05)
    finally:
        relay.stop()
        runner.wait()
    assert done(), "the relay did not get there in time"


def test_while_the_broker_is_away_the_relay_counts_its_failures_and_exports_the_age_of_its_oldest_pending_event(rig):
    oldest = outbox_document([rig.event(0)], utc_now() - timedelta(seconds=120))
    rig.db[segment_name()].insert_one(oldest)
    rig.commit([rig.event(1)])
    failures = _sample("tasklinkr_outbox_publish_failures_total", rig.service)
    cut_off = OutboxRelay(db=rig.db, amqp_uri="amqp://guest:guest@127.0.0.1:1//", service=rig.service, lane="smb",
                          poll_seconds=0.05)
    _run_until(cut_off, lambda: _sample("tasklinkr_outbox_publish_failures_total", rig.service) > failures)
    assert 120 <= _sample("tasklinkr_outbox_oldest_pending_age_seconds", rig.service) < 180
    assert _sample("tasklinkr_outbox_backlog", rig.service) == 2

    # The broker is back (and the cut-off relay gone, its lease with it): the backlog goes out, its age falls to 0.
    rig.db.relay_lease.delete_many({})
    _run_until(rig.relay(poll_seconds=0.05), lambda: pending_count(rig.db) == 0 and len(rig.delivered()) >= 0
               and _sample("tasklinkr_outbox_backlog", rig.service) == 0)
    assert _sample("tasklinkr_outbox_oldest_pending_age_seconds", rig.service) == 0


def test_a_relay_that_paused_past_its_lease_stores_nothing_once_another_took_over(rig):
    rig.commit_each(range(10))
    paused = rig.relay(batch_size=100, lease_seconds=0.5)
    first_token = paused.token
    time.sleep(0.6)  # its pause (a long GC, a frozen VM): the lease runs out ...
    successor = rig.relay(batch_size=100, lease_seconds=30)  # ... and another relay takes it over
    try:
        assert successor.token == first_token + 1
        with pytest.raises(LeaseLost):
            paused.publish_pending()  # it wakes up mid-pass, unaware: its position is fenced off
        assert "position" not in rig.db.relay_lease.find_one({})
        assert successor.publish_pending() == 10
        assert pending_count(rig.db) == 0
    finally:
        paused.stop()
        successor.stop()
    assert set(rig.delivered()) == set(rig.committed)


def test_a_transaction_emitting_more_than_a_document_can_hold_commits_and_its_events_go_out_in_order(rig):
    """A provider change that enters a couple of thousand shortlists emits more than MongoDB's 16 MiB document
    limit; its lane's events are split over several documents of the one transaction, read back in emit order."""
    filler = "x" * 8_000  # about a shortlist event's size
    events = [rig.event(seq) for seq in range(2_200)]
    for event in events:
        event["body"] = event["body"][:-1] + f',"filler":"{filler}"}}'
    segment = segment_name()  # named once: the transaction may end after its segment's time is over
    with rig.client.start_session() as session, session.start_transaction():
        rig.commit(events, session=session, segment=segment)
    documents = list(rig.db[segment].find({}, {"count": 1}))
    assert len(documents) >= 3 and sum(doc["count"] for doc in documents) == 2_200
    assert rig.publish_once(batch_size=500) == 2_200
    assert rig.delivered() == rig.committed


def test_a_replicas_relay_whose_lane_another_holds_asks_for_the_lease_again_only_once_it_could_have_run_out(rig):
    holder = rig.relay(lease_seconds=1.5)
    replica = OutboxRelay(db=rig.db, amqp_uri=rig.amqp_uri, service=rig.service, lane="smb", lease_seconds=1.5)
    try:
        assert not replica.acquire_lease()
        rig.db.relay_lease.delete_many({})  # a take-over would succeed now: the replica does not ask yet
        assert not replica.acquire_lease()
        eventlet.sleep(1.6)  # the expiry the replica read has passed
        assert replica.acquire_lease()
    finally:
        holder.stop()
        replica.stop()


def test_only_the_lanes_lease_holder_exports_the_backlog_gauges(rig):
    rig.commit_each(range(3))
    holder = rig.relay()
    replica = OutboxRelay(db=rig.db, amqp_uri=rig.amqp_uri, service=rig.service, lane="smb")
    try:
        holder.export_backlog()
        assert _sample("tasklinkr_outbox_backlog", rig.service) == 3
        assert not replica.acquire_lease()
        replica.export_backlog()  # (one registry here: in a replica's own process its series would be absent)
        assert REGISTRY.get_sample_value("tasklinkr_outbox_backlog", {"service": rig.service, "lane": "smb"}) is None
    finally:
        holder.stop()
        replica.stop()


def test_an_event_another_process_commits_goes_out_well_within_the_idle_relays_poll_interval(rig):
    """The relay hears of these commits only from the database, as of another replica's, the CLI's or another lane's
    process's (nobody calls ``notify``); with a poll interval of 10 s, each going out in under half of it is the
    idle relay's wait on its stream answering. While it waits, the process's other greenthreads run."""
    relay = rig.relay(poll_seconds=10, lease_seconds=60, operation_timeout=30)
    ticks: list[float] = []

    def tick() -> None:
        while True:
            eventlet.sleep(0.05)
            ticks.append(time.monotonic())

    runner, ticker = eventlet.spawn(relay.run), eventlet.spawn(tick)
    try:
        relay.notify()  # its first pass now, not after 10 s: it opens its stream, finds nothing, and waits on it
        for seq in range(3):
            eventlet.sleep(1.0)  # idle, waiting on its stream
            assert len([at for at in ticks if at > time.monotonic() - 1.0]) >= 5  # the hub was not blocked
            committed_at = time.monotonic()
            rig.commit([rig.event(seq)])
            arrived: list[str] = []
            while not arrived and time.monotonic() - committed_at < 5.0:
                eventlet.sleep(0.02)
                arrived = rig.delivered()
            assert arrived == rig.committed[seq:], f"event {seq} was not published within 5 s of its commit"
    finally:
        ticker.kill()
        relay.stop()
        runner.wait()
    assert pending_count(rig.db) == 0
