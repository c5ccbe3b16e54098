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
