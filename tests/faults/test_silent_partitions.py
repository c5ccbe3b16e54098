"""Silent partitions: traffic dropped and sockets left open (no reset, no close), between the services and the
broker, and between the services and their database, for longer than the client timeouts. Each counted with the
ledger (lost, doubled, unexpected must end at zero; nothing parked), and the services recover once it heals."""

import time

import pytest
from pymongo import MongoClient
from pymongo.errors import ServerSelectionTimeoutError

from shared.tools import embedded
from tests.faults.harness import CuttableProxy
from tests.faults.test_delivery_faults import assert_clean

pytestmark = pytest.mark.faults

# Longer than the publish and confirm timeouts (10 s), the transaction timeout (5 s), the relay's database operation
# timeout (10 s) and server selection (10 s); not longer than the AMQP heartbeat (60 s).
PARTITION_SECONDS = 15


def _host_port(uri: str) -> tuple[str, int]:
    host, port = uri.split("://", 1)[1].split("@")[-1].split("/", 1)[0].split(":")
    return host, int(port)


def test_a_silent_partition_between_the_services_and_the_broker(rig_factory, amqp_uri, mongo_uri):
    proxy = CuttableProxy(*_host_port(amqp_uri), cut_seconds=PARTITION_SECONDS)
    vhost = amqp_uri.rsplit("/", 1)[1]
    try:
        rig = rig_factory(f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}", mongo_uri, retry_delays="0.2,0.4")
        result = rig.under_load(proxy.blackhole, hold_seconds=PARTITION_SECONDS + 2)
        assert proxy.cuts == 1
        assert rig.parked == set()
        assert_clean(result, None)
    finally:
        proxy.close()


def test_a_silent_partition_between_the_services_and_their_database(rig_factory, amqp_uri, own_database):
    database = own_database()
    proxy = CuttableProxy("127.0.0.1", database.port, cut_seconds=PARTITION_SECONDS)
    proxied = embedded.uri_for(proxy.port)

    def partition():
        proxy.blackhole()
        time.sleep(0.2)  # the signal is handled
        started = time.monotonic()
        with MongoClient(proxied, serverSelectionTimeoutMS=2000) as client, \
                pytest.raises(ServerSelectionTimeoutError):
            client.admin.command("ping")
        assert time.monotonic() - started >= 2  # silence until the client's own timeout, not a refusal

    try:
        rig = rig_factory(amqp_uri, proxied, retry_delays="0.2,0.4")
        result = rig.under_load(partition, hold_seconds=PARTITION_SECONDS)
        assert proxy.cuts == 1
        assert rig.parked == set()
        assert_clean(result, None)
    finally:
        proxy.close()
