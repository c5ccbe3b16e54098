"""TLS to the broker as compose sets it up: the certificates gen_secrets.py makes, an `amqps://` URI and
TASKLINKR_TLS_CA_FILE. A RabbitMQ node of the test's own listens for AMQPS (the machine's node is not
reconfigured); the services' clients (kombu, nameko, the health probe) verify it against the deployment's CA and
refuse it without."""

from __future__ import annotations

import shutil

import pytest
from kombu import Connection, Exchange, Queue
from nameko.standalone.events import event_dispatcher

from shared.runtime import config
from shared.tools.probe import broker
from tests.contract.scripts import load_script
from tests.support.rabbit import OwnRabbit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    if shutil.which("openssl") is None or shutil.which("rabbitmq-server") is None:
        pytest.skip("needs openssl and rabbitmq-server")
    from pathlib import Path

    folder = tmp_path_factory.mktemp("tls") / "secrets"
    load_script(Path(__file__).resolve().parents[2] / "deploy" / "gen_secrets.py", "gen_secrets").generate(folder)
    node = OwnRabbit(tls=(folder / "tls-ca.pem", folder / "tls-server.pem", folder / "tls-server.key"))
    try:
        node.start()
        yield folder, f"amqps://guest:guest@localhost:{node.tls_port}/"
    finally:
        node.cleanup()


@pytest.fixture
def trusting_the_ca(deployment, monkeypatch):
    folder, uri = deployment
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("TASKLINKR_CONFIG_FILE", "/nonexistent.yaml")
    monkeypatch.setenv("TASKLINKR_TLS_CA_FILE", str(folder / "tls-ca.pem"))
    config.apply_tls_settings()
    return uri


def test_with_the_deployments_ca_the_services_clients_publish_and_consume_over_amqps(trusting_the_ca):
    uri = trusting_the_ca
    queue = Queue("tls-probe", Exchange("tlstest.events", type="topic", durable=True), routing_key="probe.sent.v1")
    with Connection(uri, connect_timeout=10) as connection:
        queue(connection.channel()).declare()
        assert connection.transport_cls == "amqps" and connection.connection.transport.sock.version().startswith("TLS")
    # nameko's publisher, as the services' own dispatch uses it.
    event_dispatcher({"AMQP_URI": uri, "serializer": "json"})("tlstest", "probe.sent.v1", {"over": "tls"})
    with Connection(uri, connect_timeout=10) as connection:
        message = queue(connection.channel()).get(no_ack=True)
    assert message is not None and message.payload == {"over": "tls"}


def test_the_health_probe_reaches_the_broker_over_tls(trusting_the_ca):
    assert broker(trusting_the_ca) == "ok"


def test_without_the_deployments_ca_the_broker_certificate_is_refused(deployment, monkeypatch):
    _, uri = deployment
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        with Connection(uri, connect_timeout=10) as connection:
            connection.ensure_connection(max_retries=1)
