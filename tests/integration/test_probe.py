"""``tasklinkr probe <service>``, compose's health check: healthy only while the process serves its metrics and its
broker and database accept the service's own credentials."""

from __future__ import annotations

import pytest
from prometheus_client import start_http_server
from pymongo.uri_parser import parse_uri

from shared.tools.probe import healthy, probe
from tests.support.infra import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def providers_settings(monkeypatch, amqp_uri, mongo_uri, tmp_path):
    """The probe sees what the providers container sees: its URIs (the broker's as a secret file), its port."""
    port = free_port()
    secret = tmp_path / "amqp_uri"
    secret.write_text(amqp_uri + "\n")
    for name, value in {"TASKLINKR_CONFIG_FILE": "/nonexistent.yaml", "TASKLINKR_AMQP_URI_FILE": str(secret),
                        "TASKLINKR_PROVIDERS_MONGO_URI": mongo_uri,
                        "TASKLINKR_PROVIDERS_METRICS_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TASKLINKR_AMQP_URI", raising=False)
    return port


@pytest.fixture
def serving(providers_settings):
    """The providers process's metrics endpoint, up for the test."""
    server, thread = start_http_server(providers_settings, addr="127.0.0.1")
    yield
    server.shutdown()
    thread.join(5)


def test_a_service_whose_process_broker_and_database_answer_is_healthy(serving):
    report = probe("providers")
    assert report == {"process": "ok", "broker": "ok", "database": "ok"} and healthy(report)


def test_a_process_that_serves_nothing_is_unhealthy(providers_settings):
    report = probe("providers")
    assert report["process"].startswith("failed: metrics endpoint") and not healthy(report)


def test_a_broker_that_refuses_the_services_credentials_makes_it_unhealthy(serving, monkeypatch, amqp_uri):
    monkeypatch.setenv("TASKLINKR_AMQP_URI", amqp_uri.replace("guest:guest@", "guest:wrong@"))
    report = probe("providers")
    assert report["broker"].startswith("failed") and not healthy(report), report
    assert report["database"] == "ok"


def test_a_database_that_does_not_answer_makes_it_unhealthy(serving, monkeypatch, mongo_uri):
    host, port = parse_uri(mongo_uri)["nodelist"][0]
    monkeypatch.setenv("TASKLINKR_PROVIDERS_MONGO_URI",
                       mongo_uri.replace(f"{host}:{port}", f"{host}:{free_port()}"))
    report = probe("providers")
    assert report["database"].startswith("failed") and not healthy(report), report
    assert report["broker"] == "ok"
