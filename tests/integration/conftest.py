import pytest

from shared.runtime import topology
from tests.support.rabbit import OwnRabbit


@pytest.fixture(scope="session")
def managed_rabbit():
    """A RabbitMQ node of the session's own with the management plugin, for tenants' broker users (the machine's
    node has no management plugin, and a test does not reconfigure it). Topology applied."""
    node = OwnRabbit(management=True)
    try:
        node.start()
        topology.apply(node.uri)
        yield node
    finally:
        node.cleanup()


@pytest.fixture
def database(service_config, mongo_client):
    """The database of the service under test."""
    return mongo_client[service_config["MONGO_DATABASE"]]
