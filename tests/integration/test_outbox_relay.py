"""The outbox relay's read and mark paths against a real broker and database.

A batch is read with majority read concern, outside any transaction, and marked published by its confirmed ids in
a short transaction that checks the relay's lease; these tests prove the mark never touches an event it did not
publish, that the per-event fallback marks exactly what was published, that no transaction is open while the relay
publishes, and that a backlog larger than one read window still goes out complete and in order.
"""

import time
from datetime import timedelta

import eventlet
import pytest
from bson import ObjectId
from kombu import Connection, Exchange, Queue
from prometheus_client import REGISTRY
from pymongo import MongoClient, monitoring
from pymongo.errors import OperationFailure

from shared.runtime.envelope import amqp_headers, build, event_exchange
from shared.runtime.outbox import LeaseLost, OutboxRelay
from shared.runtime.persistence import ensure_platform_indexes
from shared.vocabulary.times import utc_now
from tests.support.infra import unique_name
from tests.support.outbox_marks import FailingMarks

pytestmark = pytest.mark.integration

EVENT = "relaytest.ticked.v1"


@pytest.fixture
def rig(amqp_uri, mongo_client):
    """A service of the test's own: its outbox (with the platform's indexes) and a queue bound to its events."""
    service = unique_name("relay").replace("_", "")[:40]
    db = mongo_client[service]
    ensure_platform_indexes(db)
    queue = Queue(f"{service}-sink", exchange=Exchange(event_exchange(service), type="topic", durable=True),
                  routing_key=EVENT, durable=True)
    with Connection(amqp_uri) as connection:
        queue(connection.channel()).declare()
    yield _Rig(service, db, amqp_uri, queue)
    with Connection(amqp_uri) as connection:
        queue(connection.channel()).delete()
    mongo_client.drop_database(service)


class _Rig:
    def __init__(self, service, db, amqp_uri, queue):
        self.service, self.db, self.amqp_uri, self.queue = service, db, amqp_uri, queue

    def document(self, seq: int, _id: ObjectId | None = None) -> dict:
        envelope = build(service=self.service, routing_key=EVENT, subject=f"tick-{seq}", data={"seq": seq},
                         lane="smb")
        return {"_id": _id or ObjectId(), "event_id": envelope["id"], "exchange": event_exchange(self.service),
                "routing_key": EVENT, "envelope": envelope, "headers": amqp_headers(envelope),
                "status": "pending", "created_at": utc_now()}

    def relay(self, db=None, **options) -> OutboxRelay:
        relay = OutboxRelay(db=db if db is not None else self.db, amqp_uri=self.amqp_uri, service=self.service,
                            **options)
        relay.subscribed_types = frozenset({EVENT})  # a returned event is a failure here
        assert relay.acquire_lease()
        return relay

    def delivered(self) -> list[str]:
        """Message ids in the queue, in the order the broker holds them."""
        ids = []
        with Connection(self.amqp_uri) as connection:
            queue = self.queue(connection.channel())
            while (message := queue.get(no_ack=True)) is not None:
                ids.append(message.properties["message_id"])
        return ids

    def statuses(self) -> dict[str, str]:
        return {doc["event_id"]: doc["status"] for doc in self.db.outbox.find({}, {"event_id": 1, "status": 1})}


def test_an_event_committing_late_into_a_batch_being_published_is_not_marked_with_it_and_goes_out_next(rig):
    ids = [ObjectId() for _ in range(30)]
    late = rig.document(15, ids[15])  # its id was taken before the batch's last ones, its commit comes after
    rig.db.outbox.insert_many([rig.document(seq, _id) for seq, _id in enumerate(ids) if seq != 15])
    relay = rig.relay(batch_size=100)
    publish = relay._publish_batch
    published_batches = []

    def publish_while_a_late_transaction_commits(batch):
        confirmed = publish(batch)
        published_batches.append([doc["event_id"] for doc in batch])
        if len(published_batches) == 1:
            rig.db.outbox.insert_one(late)  # commits between the batch's read and its mark
        return confirmed

    relay._publish_batch = publish_while_a_late_transaction_commits
    try:
        assert relay.publish_pending() == 30
    finally:
        relay.stop()

    assert late["event_id"] not in published_batches[0]  # the range update of that batch did not mark it ...
    assert published_batches[1] == [late["event_id"]]  # ... it stayed pending and went out in the next pass
    delivered = rig.delivered()
    assert sorted(delivered) == sorted(rig.statuses()) and len(delivered) == 30  # each once, none lost
    assert set(rig.statuses().values()) == {"published"}


def test_when_the_range_mark_cannot_commit_each_published_event_is_marked_by_its_id(rig):
    rig.db.outbox.insert_many([rig.document(seq) for seq in range(25)])
    relay = rig.relay(db=FailingMarks(rig.db, write_conflict), batch_size=10)
    try:
        assert relay.publish_pending() == 25
    finally:
        relay.stop()
    assert set(rig.statuses().values()) == {"published"}
    assert sorted(rig.delivered()) == sorted(rig.statuses())  # each once: marked, so never published again


def write_conflict(*args, **kwargs):
    raise OperationFailure("WriteConflict (injected)", code=112)


def test_a_backlog_larger_than_the_read_window_goes_out_complete_and_oldest_first(rig):
    documents = [rig.document(seq) for seq in range(95)]
    rig.db.outbox.insert_many(documents)
    relay = rig.relay(batch_size=10, read_ahead=30)
    try:
        assert relay.publish_pending() == 95
        assert relay.publish_pending() == 0  # nothing is left to publish again
    finally:
        relay.stop()
    assert rig.delivered() == [doc["event_id"] for doc in sorted(documents, key=lambda d: d["_id"])]
    assert set(rig.statuses().values()) == {"published"}


def test_a_tenant_queue_that_refuses_its_copies_never_holds_up_the_services_events(rig):
    tenant = "ten_" + ObjectId().binary.hex().ljust(32, "0")[:32]
    full = Queue(f"{tenant}.full", exchange=Exchange("tasklinkr.feed", type="topic", durable=True),
                 routing_key=f"{tenant}.#", durable=True,
                 queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    with Connection(rig.amqp_uri) as connection:
        full(connection.channel()).declare()
    try:
        documents = []
        for seq in range(5):
            document = rig.document(seq)
            document["envelope"]["tenantid"] = tenant
            documents.append(document)
        rig.db.outbox.insert_many(documents)
        relay = rig.relay(batch_size=100)
        try:
            assert relay.publish_pending() == 5  # not stuck on the nacked copies
        finally:
            relay.stop()
        assert rig.delivered() == [d["event_id"] for d in documents]
        assert set(rig.statuses().values()) == {"published"}
        with Connection(rig.amqp_uri) as connection:  # the tenant's queue kept what it had room for
            assert full(connection.channel()).queue_declare(passive=True).message_count == 1
    finally:
        with Connection(rig.amqp_uri) as connection:
            full(connection.channel()).delete()


def test_a_batch_carries_one_event_per_aggregate_and_every_event_still_goes_out_in_order(rig):
    documents = []
    for seq in range(12):  # three aggregates, four events each, interleaved
        document = rig.document(seq)
        document["envelope"]["subject"] = f"agg-{seq % 3}"
        documents.append(document)
    rig.db.outbox.insert_many(documents)
    relay = rig.relay(batch_size=100)
    publish, batches = relay._publish_batch, []

    def recording(batch):
        batches.append([doc["envelope"]["subject"] for doc in batch])
        return publish(batch)

    relay._publish_batch = recording
    try:
        assert relay.publish_pending() == 12
    finally:
        relay.stop()
    assert all(len(subjects) == len(set(subjects)) for subjects in batches), batches
    assert rig.delivered() == [d["event_id"] for d in documents]
    assert set(rig.statuses().values()) == {"published"}


def _sample(name: str, service: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": service}) or 0.0


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
    oldest = rig.document(0)
    oldest["created_at"] = utc_now() - timedelta(seconds=120)
    rig.db.outbox.insert_many([oldest, rig.document(1)])
    failures = _sample("tasklinkr_outbox_publish_failures_total", rig.service)
    cut_off = OutboxRelay(db=rig.db, amqp_uri="amqp://guest:guest@127.0.0.1:1//", service=rig.service,
                          poll_seconds=0.05)
    _run_until(cut_off, lambda: _sample("tasklinkr_outbox_publish_failures_total", rig.service) > failures)
    assert 120 <= _sample("tasklinkr_outbox_oldest_pending_age_seconds", rig.service) < 180
    assert _sample("tasklinkr_outbox_backlog", rig.service) == 2

    # The broker is back (and the cut-off relay gone, its lease with it): the backlog goes out, its age falls to 0.
    rig.db.relay_lease.delete_many({})
    _run_until(rig.relay(poll_seconds=0.05), lambda: set(rig.statuses().values()) == {"published"})
    assert _sample("tasklinkr_outbox_oldest_pending_age_seconds", rig.service) == 0
    assert _sample("tasklinkr_outbox_backlog", rig.service) == 0
    assert len(rig.delivered()) == 2


def test_a_relay_that_paused_past_its_lease_marks_nothing_once_another_took_over(rig):
    documents = [rig.document(seq) for seq in range(10)]
    rig.db.outbox.insert_many(documents)
    paused = rig.relay(batch_size=100, lease_seconds=0.5)
    first_token = paused.token
    time.sleep(0.6)  # its pause (a long GC, a frozen VM): the lease runs out ...
    successor = rig.relay(batch_size=100, lease_seconds=30)  # ... and another relay takes it over
    try:
        assert successor.token == first_token + 1
        with pytest.raises(LeaseLost):
            paused.publish_pending()  # it wakes up mid-pass, unaware: its mark is fenced off
        assert set(rig.statuses().values()) == {"pending"}
        assert successor.publish_pending() == 10
        assert set(rig.statuses().values()) == {"published"}
    finally:
        paused.stop()
        successor.stop()


class _Commands(monitoring.CommandListener):
    """The commands a client sends, and which transactions (by session) are open at any moment."""

    def __init__(self):
        self.sent: list[dict] = []
        self.open_transactions: set = set()

    def started(self, event):
        command = dict(event.command)
        self.sent.append(command)
        session = repr(command.get("lsid"))
        if command.get("startTransaction"):
            self.open_transactions.add(session)
        if event.command_name in ("commitTransaction", "abortTransaction"):
            self.open_transactions.discard(session)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_the_relay_reads_only_majority_committed_events_and_publishes_with_no_transaction_open(rig, mongo_uri):
    """On a replica set a write the primary acknowledged can still be rolled back by a failover; the relay must not
    publish it. Its reads carry majority read concern outside any transaction (a snapshot transaction's reads are
    majority-committed only once it commits, after the publishing), and none of its transactions is open while it
    publishes. A single-node server cannot roll back, so what is checked is what the relay asks for."""
    commands = _Commands()
    client = MongoClient(mongo_uri, tz_aware=True, event_listeners=[commands])
    rig.db.outbox.insert_many([rig.document(seq) for seq in range(25)])
    relay = rig.relay(db=client[rig.service], batch_size=10)
    publish = relay._publish_batch
    open_while_publishing = []

    def publish_and_look(batch):
        open_while_publishing.append(set(commands.open_transactions))
        return publish(batch)

    relay._publish_batch = publish_and_look
    try:
        assert relay.publish_pending() == 25
    finally:
        relay.stop()
        client.close()
    reads = [c for c in commands.sent if (c.get("find") or c.get("aggregate")) == "outbox"]
    assert len(reads) >= 4  # the pending ids, then three batches
    assert all(c.get("readConcern", {}).get("level") == "majority" for c in reads), reads
    assert not any("txnNumber" in c for c in reads)  # read outside any transaction
    assert open_while_publishing == [set()] * 3
    assert set(rig.statuses().values()) == {"published"} and sorted(rig.delivered()) == sorted(rig.statuses())
