"""Database faults under load, each counted with the ledger (lost, doubled, unexpected must end at zero)."""

import time

import pytest

from tests.faults.harness import OwnDatabase, wait_for
from tests.faults.test_delivery_faults import assert_clean

pytestmark = pytest.mark.faults


def test_a_database_outage_longer_than_the_whole_retry_budget_parks_nothing(rig_factory, amqp_uri, tmp_path):
    database = OwnDatabase(tmp_path)
    database.start()
    try:
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
    finally:
        database.stop()


WRITE_CONCERN_TIMEOUT = {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out",
                         "errInfo": {"wtimeout": True}}


@pytest.mark.parametrize("failure", [{"closeConnection": True}, {"writeConcernError": WRITE_CONCERN_TIMEOUT}],
                         ids=["answer_lost", "write_concern_error"])
def test_commits_whose_answer_is_lost_or_fails_its_write_concern_apply_everything_once(
    rig_factory, amqp_uri, tmp_path, failure
):
    database = OwnDatabase(tmp_path, test_commands=True)
    database.start()
    try:
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
    finally:
        database.stop()


def test_the_primary_stepping_down_under_load_loses_parks_and_doubles_nothing(rig_factory, amqp_uri, tmp_path):
    database = OwnDatabase(tmp_path, test_commands=True)
    database.start()
    try:
        rig = rig_factory(amqp_uri, database.uri, retry_delays="0.2,0.4",
                          consumer_settings={"transaction_timeout_seconds": "2"})
        rig.start_producer()
        rig.start_consumer()
        with rig.steady_load({"slow_ms": 20}, pause=0.05) as accepted:
            assert wait_for(lambda: len(accepted) >= 200, timeout=60)
            in_flight = rig.busy()
            database.step_down(10)  # writes fail "not primary" for 10 s: longer than the retry budget, many times
            assert in_flight > 0, "the step-down must hit work in flight"
            time.sleep(12)
        result = rig.settled(timeout=180)
        assert set(accepted) <= result.committed
        assert rig.parked == set()
        assert_clean(result, len(result.committed))
    finally:
        database.stop()
