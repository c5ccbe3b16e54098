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
