"""Fixtures of matching's integration tests: a matching container on the session's broker, its own database, an RPC
proxy to it."""

import pytest
from amqp.exceptions import ChannelError
from kombu import Connection
from nameko.standalone.rpc import ServiceRpcProxy

from services.matching.service import MatchingService
from shared.runtime.messaging import queue_name
from shared.runtime.topology import load_catalog
from shared.vocabulary.terms import LANES


@pytest.fixture
def database(service_config, mongo_client):
    return mongo_client[service_config["MONGO_DATABASE"]]


@pytest.fixture
def config(service_config):
    return {**service_config, "MATCHING_TOP_K": 3}


@pytest.fixture
def quiet_queues(amqp_uri):
    """Matching's queues emptied first: other tests of the session publish real provider and posting events, which
    wait in these durable queues and would otherwise join this test's market."""
    for event in load_catalog()["events"]:
        for consumer in event["consumers"]:
            if consumer["service"] != "matching":
                continue
            for lane in LANES:
                name = queue_name(event["producer"], event["type"], "matching", consumer["handler"], lane)
                with Connection(amqp_uri) as connection:
                    try:
                        connection.channel().queue_purge(name)
                    except ChannelError:
                        pass  # not declared yet: nothing waits in it


@pytest.fixture
def matching(container_factory, config, quiet_queues):
    container = container_factory(MatchingService, config)
    container.start()
    return container


@pytest.fixture
def rpc(matching, amqp_uri):
    with ServiceRpcProxy("matching", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as proxy:
        yield proxy
