"""The commands Kubernetes runs in the services' pods: the readiness probe (`tasklinkr probe <service>`) and the
init container that waits for the topology job (`tasklinkr topology check --wait`)."""

from __future__ import annotations

import json

import eventlet
import pytest
from typer.testing import CliRunner

from shared.runtime import topology
from shared.tools.cli import app
from tests.support.infra import broker, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def settings_for(monkeypatch):
    def apply(amqp_uri: str, mongo_uri: str = "") -> None:
        monkeypatch.setenv("TASKLINKR_CONFIG_FILE", "/dev/null")
        monkeypatch.setenv("TASKLINKR_AMQP_URI", amqp_uri)
        monkeypatch.setenv("TASKLINKR_MONGO_URI", mongo_uri)
        # No service process runs here: its metrics endpoint is probed in tests/integration/test_probe.py.
        monkeypatch.setenv("TASKLINKR_METRICS_PORT", "off")
    return apply


def test_probe_passes_when_the_services_broker_and_database_answer(settings_for, amqp_uri, mongo_uri):
    settings_for(amqp_uri, mongo_uri)
    result = CliRunner().invoke(app, ["probe", "postings"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"process": "skipped: metrics are off", "broker": "ok", "database": "ok"}


def test_probe_fails_and_says_which_connection_is_broken(settings_for, amqp_uri, mongo_uri):
    settings_for(amqp_uri.replace("guest:guest@", "guest:wrong-password@"), mongo_uri)
    result = CliRunner().invoke(app, ["probe", "billing"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["broker"].startswith("failed") and report["database"] == "ok"

    settings_for(amqp_uri, f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=1000")
    result = CliRunner().invoke(app, ["probe", "billing"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["broker"] == "ok" and report["database"].startswith("failed")


def test_probe_fails_for_a_data_service_without_a_database(settings_for, amqp_uri):
    settings_for(amqp_uri)
    result = CliRunner().invoke(app, ["probe", "matching"])
    assert result.exit_code == 1
    assert "no database configured" in json.loads(result.output)["database"]


def test_topology_check_fails_until_the_topology_is_declared_and_waits_for_it(settings_for):
    with broker() as fresh_vhost:
        settings_for(fresh_vhost)
        result = CliRunner().invoke(app, ["topology", "check"])
        assert result.exit_code == 1
        assert "queue evt-postings-posting.published.v1--matching." in result.output

        declaring = eventlet.spawn_after(1.0, topology.apply, fresh_vhost)
        result = CliRunner().invoke(app, ["topology", "check", "--wait", "60"])
        declaring.wait()
        assert result.exit_code == 0, result.output
        assert "topology complete" in result.output
