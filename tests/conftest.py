# nameko >= 2.14 no longer monkey-patches in its pytest plugin: patch before anything opens a socket.
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import pytest  # noqa: E402

from tests.support.infra import (  # noqa: E402
    broker,
    database_server,
)


@pytest.fixture(scope="session")
def amqp_uri():
    """A RabbitMQ vhost of this test session's own (or a RabbitMQ container when Docker is reachable)."""
    with broker() as uri:
        yield uri


@pytest.fixture(scope="session")
def mongo_uri():
    """A MongoDB-compatible server: a mongo container when Docker is reachable, an embedded SecantusDB otherwise."""
    with database_server() as uri:
        yield uri


@pytest.fixture
def service_config(amqp_uri, mongo_uri, request):
    """nameko config for one service under test, with a database of the test's own."""
    from tests.support.infra import unique_name

    return {
        "AMQP_URI": amqp_uri,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": unique_name(request.node.name),
        "serializer": "json",
        "max_workers": 10,
        "OUTBOX_POLL_SECONDS": 0.2,
        "OUTBOX_LEASE_SECONDS": 5,
        "OPERATOR_KEY": "test-operator-key",
        "RPC_TIMEOUT_SECONDS": 10,
        "MAX_REQUEST_BYTES": 65536,
        "WEB_SERVER_ADDRESS": "127.0.0.1:0",
    }


@pytest.fixture
def mongo_client(mongo_uri):
    from pymongo import MongoClient

    client = MongoClient(mongo_uri, tz_aware=True, uuidRepresentation="standard")
    yield client
    client.close()
