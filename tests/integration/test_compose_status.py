"""`tasklinkr status` inside compose: the operator container reports every service's own outbox; a service's
container knows only its own database and says so for the others (it used to report 0 for each)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.runtime.config import CELL_SERVICES, DATA_SERVICES, databases, service_of
from shared.tools.operations import outbox_backlog
from shared.vocabulary.terms import LANES

pytestmark = pytest.mark.integration

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def container_environ(service: str, secrets: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment of a compose service, its /run/secrets/<name> files written under ``tmp_path``."""
    environment = yaml.safe_load(COMPOSE.read_text())["services"][service]["environment"]
    environ = {"TASKLINKR_CONFIG_FILE": "/nonexistent.yaml", "TASKLINKR_EMBEDDED_DB_PORT": "9"}
    for key, value in environment.items():
        if isinstance(value, str) and value.startswith("/run/secrets/"):
            name = value.removeprefix("/run/secrets/")
            path = tmp_path / service / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(secrets.get(name, "unused"))
            value = str(path)
        environ[key] = value
    return environ


@pytest.fixture
def outboxes(mongo_client):
    """A different number of pending events in each service's own database (tasklinkr_<service>)."""
    pending = {service: position + 1 for position, service in enumerate(DATA_SERVICES)}
    for service, count in pending.items():
        mongo_client[f"tasklinkr_{service}"].outbox.insert_many(
            [{"status": "pending", "routing_key": "x.y.v1"} for _ in range(count)]
            + [{"status": "published", "routing_key": "x.y.v1"}])
    yield pending
    for service in pending:
        mongo_client.drop_database(f"tasklinkr_{service}")


def test_the_operator_container_reports_every_services_own_outbox(outboxes, mongo_uri, tmp_path):
    """Matching's and billing's databases are one per cell (`mongo-<service>-<lane>`): the operator reads each (here
    every cell's URI reaches the test's one server, which holds each service's database once)."""
    cells = [f"{service}-{lane}" for service in CELL_SERVICES for lane in LANES]
    secrets = {f"mongo_uri_{name.replace('-', '_')}": mongo_uri for name in [*DATA_SERVICES, *cells]}
    environ = container_environ("operator", secrets, tmp_path)
    read = databases(environ)
    assert not set(CELL_SERVICES) & set(read) and set(cells) <= set(read)
    assert {name: outbox_backlog(name, environ) for name in read} == {
        name: outboxes[service_of(name)] for name in read}


@pytest.mark.parametrize("lane", LANES)
def test_a_service_container_knows_only_its_own_outbox(outboxes, mongo_uri, tmp_path, lane):
    """Each lane's container of billing (`billing-<lane>`) reads its cell's database as billing's own."""
    environ = container_environ(f"billing-{lane}", {"mongo_uri": mongo_uri}, tmp_path)
    assert outbox_backlog("billing", environ) == outboxes["billing"]
    assert outbox_backlog("postings", environ) is None, "unknown here, never a wrong 0"
