import pytest

from tests.support.infra import free_port


@pytest.fixture
def gateway_config(service_config):
    """service_config with the gateway's HTTP server on a free port of its own."""
    port = free_port()
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", RPC_TIMEOUT_SECONDS=5)


@pytest.fixture
def base_url(gateway_config):
    return f"http://{gateway_config['WEB_SERVER_ADDRESS']}"


# Inbound commands over the broker (test_inbound_commands, test_broker_path): postings and the gateway on the
# session's own RabbitMQ node, whose management API provisions tenants' broker users.
@pytest.fixture(scope="module")
def admin(managed_rabbit):
    from shared.tools.brokeradmin import BrokerAdmin

    return BrokerAdmin(managed_rabbit.management_url, managed_rabbit.uri)


@pytest.fixture
def config(service_config, managed_rabbit):
    return dict(service_config, AMQP_URI=managed_rabbit.uri, RETRY_DELAYS_SECONDS="0.2")


@pytest.fixture
def platform(container_factory, config):
    from services.gateway.service import GatewayService
    from services.postings.service import PostingsService

    for service in (PostingsService, GatewayService):
        own = dict(config, MONGO_DATABASE=f"{config['MONGO_DATABASE']}_{service.name}")
        container_factory(service, own).start()
    return config


@pytest.fixture
def postings(platform):
    from nameko.standalone.rpc import ServiceRpcProxy

    with ServiceRpcProxy("postings", platform) as proxy:
        yield proxy
