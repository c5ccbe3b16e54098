"""Database faults under load, each counted with the ledger (lost, doubled, unexpected must end at zero)."""

import time

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared.runtime.outbox import OutboxRelay
from shared.runtime.persistence import ensure_platform_indexes
from tests.faults import ledger
from tests.faults.harness import wait_for
from tests.faults.test_delivery_faults import assert_clean

pytestmark = pytest.mark.faults


def test_a_database_outage_longer_than_the_whole_retry_budget_parks_nothing(rig_factory, amqp_uri, own_database):
    database = own_database()
    # A retry budget of 0.6 s, and consumer attempts that give up after 3 s: three failed attempts of each of
    # the 50 messages a consumer holds at once (about 10 s) would park them. The outage lasts 30 s.
    rig = rig_factory(amqp_uri, database.uri, retry_delays="0.2,0.4",
                      consumer_settings={"transaction_timeout_seconds": "3", "max_workers": "50"})
    rig.start_producer()
    rig.start_consumer()
    rig.emit(0, 150, {"slow_ms": 500})  # three rounds of 50 handlers, at least half a second each
    assert wait_for(lambda: len(rig.ledger().applied) >= 1, timeout=60)
    in_flight = rig.in_flight()
    database.stop()
    assert in_flight > 0, "the outage must hit work in flight"
    time.sleep(30)
    database.start()
    result = rig.settled(timeout=180)
    assert rig.parked == set(), f"{len(rig.parked)} events parked because the database was down"
    assert_clean(result, 150)


WRITE_CONCERN_TIMEOUT = {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out",
                         "errInfo": {"wtimeout": True}}


@pytest.mark.parametrize("failure", [{"closeConnection": True}, {"writeConcernError": WRITE_CONCERN_TIMEOUT}],
                         ids=["answer_lost", "write_concern_error"])
def test_commits_whose_answer_is_lost_or_fails_its_write_concern_apply_everything_once(
    rig_factory, amqp_uri, own_database, failure
):
    database = own_database(test_commands=True)
    rig = rig_factory(amqp_uri, database.uri, retry_delays="0.2,0.4")
    rig.start_producer()
    rig.start_consumer()
    for first in range(0, 300, 50):
        rig.emit(first, 50, {"slow_ms": 20})
    assert wait_for(lambda: len(rig.ledger().applied) >= 20, timeout=60)
    in_flight = rig.in_flight()
    # The next 40 commits of anyone (the consumer's handlers, the relay marking a batch) get no answer, or a
    # write concern error: the driver cannot know whether they committed.
    database.fail_commands(["commitTransaction"], times=40, **failure)
    assert in_flight > 0, "the failures must hit work in flight"
    result = rig.settled(timeout=180)
    assert database.fail_point_spent()
    assert rig.parked == set()
    assert_clean(result, 300)


def test_the_primary_stepping_down_under_load_loses_parks_and_doubles_nothing(rig_factory, amqp_uri, own_database):
    database = own_database(test_commands=True)
    rig = rig_factory(amqp_uri, database.uri, retry_delays="0.2,0.4",
                      consumer_settings={"transaction_timeout_seconds": "2"})
    # Writes fail "not primary" for 10 s: longer than the retry budget, many times over.
    result = rig.under_load(lambda: database.step_down(10), hold_seconds=12)
    assert rig.parked == set()
    assert_clean(result, None)


# What the services send: every read and write, transactions' ends, and the relay's and the lease's commands.
EVERY_COMMAND = ["insert", "update", "delete", "find", "getMore", "aggregate", "count", "findAndModify",
                 "commitTransaction", "abortTransaction", "createIndexes", "listIndexes"]


def test_a_database_slowed_to_200_ms_a_command_under_load_loses_parks_and_doubles_nothing(
    rig_factory, amqp_uri, own_database
):
    database = own_database(test_commands=True)
    rig = rig_factory(amqp_uri, database.uri, retry_delays="0.2,0.4")

    def slow_down():
        database.fail_commands(EVERY_COMMAND, None, blockConnection=True, blockTimeMS=200)
        with MongoClient(database.uri) as client:  # the slowdown is real
            started = time.monotonic()
            client.faultprobe.probe.find_one({})
            assert time.monotonic() - started >= 0.2

    result = rig.under_load(slow_down, hold_seconds=15, recover=database.heal)
    assert rig.parked == set()
    assert_clean(result, None)


def test_the_database_killed_with_sigkill_under_load_and_restarted(rig_factory, amqp_uri, own_database):
    database = own_database()
    rig = rig_factory(amqp_uri, database.uri, retry_delays="0.2,0.4")

    def restart():
        time.sleep(3)
        database.start()

    result = rig.under_load(database.kill, hold_seconds=3, recover=restart)
    assert rig.parked == set()
    assert_clean(result, None)


def test_the_relay_gives_up_on_a_database_that_stops_answering_after_its_operation_timeout(own_database, amqp_uri):
    database = own_database(test_commands=True)
    with MongoClient(database.uri, tz_aware=True) as client:
        db = client["relay_blackholed"]
        ensure_platform_indexes(db)
        relay = OutboxRelay(db=db, amqp_uri=amqp_uri, service=ledger.PRODUCER, lane="smb", operation_timeout=1.0)
        # The database takes every command and answers none of them for a minute, as a blackholed host would.
        database.fail_commands(EVERY_COMMAND, None, blockConnection=True, blockTimeMS=60_000)
        started = time.monotonic()
        with pytest.raises(PyMongoError):
            if relay.acquire_lease():
                relay.publish_pending()
        took = time.monotonic() - started
        database.heal()
        relay.stop()
    print(f"the relay gave up after {took:.1f} s")
    assert took < 10  # a pass fails and is retried with back-off, instead of waiting on the database for minutes
