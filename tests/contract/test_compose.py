"""docker-compose.yml is a valid Compose file that runs every service the way the platform needs.

No Docker engine is needed: the file is validated against the Compose Specification's JSON Schema and its
structure is checked directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import yaml

from shared.config import DATA_SERVICES as ALL_DATA_SERVICES
from shared.runner import runnable_services

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# Reference schemas live beside the repository (../shared/schemas), here and in CI alike.
COMPOSE_SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
DOCKERFILE = "deploy/Dockerfile"
# Planned services (a package without service.py yet) join compose when they are built.
SERVICES = list(runnable_services())
DATA_SERVICES = [name for name in ALL_DATA_SERVICES if name in SERVICES]
SCALABLE = [name for name in SERVICES if name != "gateway"]
_DEFAULTED = re.compile(r"\$\{[A-Z0-9_]+:-([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def with_defaults(value: str) -> str:
    """The value compose would use with none of the ${VAR:-default} variables set."""
    return _DEFAULTED.sub(lambda m: m.group(1), value)


def mongo_uri(service: dict) -> str:
    return with_defaults(service["environment"]["TASKLINKR_MONGO_URI"])


def test_compose_file_validates_against_the_compose_specification(compose):
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(f"compose-spec.json not found at {COMPOSE_SCHEMA} (expected beside the repository)")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_its_own_process_from_the_one_image(services, name):
    service = services[name]
    assert service["build"] == {"context": ".", "dockerfile": DOCKERFILE}
    assert service["command"] == ["run", name]
    assert service["restart"] == "unless-stopped"
    assert service["environment"]["TASKLINKR_AMQP_URI"].startswith("amqp://")
    assert "@rabbitmq:5672/" in service["environment"]["TASKLINKR_AMQP_URI"]


def test_all_services_share_one_image(services):
    images = {services[name]["image"] for name in [*SERVICES, "topology"]}
    assert len(images) == 1, images


def test_the_dockerfile_the_services_build_from_exists():
    dockerfile = (REPO / DOCKERFILE).read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["tasklinkr"\]', dockerfile, re.M)
    assert re.search(r"^USER (?!root\b|0\b)\S+", dockerfile, re.M), "the image must run as a non-root user"
    assert "COPY contracts-schema" in dockerfile, "services read contracts-schema/ at run time"
    assert (REPO / ".dockerignore").is_file()


@pytest.mark.parametrize("name", DATA_SERVICES)
def test_every_data_service_uses_its_own_replica_set_mongo(services, compose, name):
    uri = urlsplit(mongo_uri(services[name]))
    assert uri.scheme == "mongodb"
    host = uri.hostname
    mongo = services[host]
    assert mongo["image"].startswith("mongo:7")
    command = mongo["command"]
    assert "--replSet" in command, "transactions need a replica set"
    # The set's only member is named localhost inside its container: clients must not try to discover it.
    assert parse_qs(uri.query).get("directConnection") == ["true"]
    assert mongo["healthcheck"]["test"], f"{host} needs a healthcheck"
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    assert "isWritablePrimary" in " ".join(mongo["healthcheck"]["test"]), "healthy only as primary"
    volumes = [v for v in mongo["volumes"] if v.endswith(":/data/db")]
    assert len(volumes) == 1
    assert volumes[0].split(":")[0] in compose["volumes"], "mongo data must live in a named volume"


def test_no_two_data_services_share_a_database_server_or_volume(services):
    hosts = [urlsplit(mongo_uri(services[name])).hostname for name in DATA_SERVICES]
    assert len(set(hosts)) == len(DATA_SERVICES), hosts
    volumes = [v for host in hosts for v in services[host]["volumes"]]
    assert len(set(volumes)) == len(volumes), volumes


def test_every_mongo_in_the_file_belongs_to_a_data_service(services):
    used = {urlsplit(mongo_uri(services[name])).hostname for name in DATA_SERVICES}
    mongos = {name for name, service in services.items() if service.get("image", "").startswith("mongo:")}
    assert mongos == used


@pytest.mark.parametrize("name", SERVICES)
def test_services_start_only_when_their_dependencies_are_ready(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on["rabbitmq"] == {"condition": "service_healthy"}
    assert depends_on["topology"] == {"condition": "service_completed_successfully"}
    if name in DATA_SERVICES:
        host = urlsplit(mongo_uri(services[name])).hostname
        assert depends_on[host] == {"condition": "service_healthy"}


@pytest.mark.parametrize("name", [*SCALABLE, "topology"])
def test_scalable_services_have_no_fixed_name_or_host_port(services, name):
    assert "container_name" not in services[name]
    assert "ports" not in services[name]


def test_no_container_has_a_fixed_name(services):
    assert not [name for name, service in services.items() if "container_name" in service]


def test_topology_is_declared_once_before_the_services_start(services):
    topology = services["topology"]
    assert topology["build"] == {"context": ".", "dockerfile": DOCKERFILE}
    assert topology["command"] == ["topology", "apply"]
    assert topology["restart"] == "no"
    assert topology["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}


def test_rabbitmq_boots_with_the_generated_definitions(services, compose):
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["image"] == "rabbitmq:3-management"
    assert rabbitmq["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    mounts = {with_defaults(v).rsplit(":", 2)[1]: with_defaults(v).rsplit(":", 2)[0]
              for v in rabbitmq["volumes"] if v.endswith(":ro")}
    assert mounts["/etc/rabbitmq/rabbitmq.conf"] == "./deploy/rabbitmq/rabbitmq.conf"
    assert mounts["/etc/rabbitmq/definitions.json"] == "./deploy/rabbitmq/definitions.json"
    conf = (REPO / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert re.search(r"^load_definitions\s*=\s*/etc/rabbitmq/definitions\.json\s*$", conf, re.M)
    data = [v for v in rabbitmq["volumes"] if v.endswith(":/var/lib/rabbitmq")]
    assert data and data[0].split(":")[0] in compose["volumes"]
    assert rabbitmq.get("hostname"), "a stable node name keeps the data directory in the volume"


def test_services_connect_as_the_user_the_broker_is_given(services):
    definitions = json.loads((REPO / "deploy/rabbitmq/definitions.json").read_text())
    users = {user["name"] for user in definitions["users"]}
    for name in [*SERVICES, "topology"]:
        uri = urlsplit(with_defaults(services[name]["environment"]["TASKLINKR_AMQP_URI"]))
        assert uri.username in users, name


def test_gateway_serves_http_on_8080_with_a_health_check(services):
    gateway = services["gateway"]
    environment = gateway["environment"]
    assert environment["TASKLINKR_GATEWAY_ADDRESS"] == "0.0.0.0:8080"
    assert environment["TASKLINKR_OPERATOR_KEY"].startswith("${TASKLINKR_OPERATOR_KEY:?")
    assert [with_defaults(port) for port in gateway["ports"]] == ["8080:8080"]
    test = gateway["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], "python:3.11-slim has no curl"
    assert "http://127.0.0.1:8080/health" in test[-1]
    compile(test[-1], "<healthcheck>", "exec")
    # Its own database holds the audit trail only (the replica-set checks above hold it like any data service's).
    assert urlsplit(mongo_uri(gateway)).hostname == "mongo-gateway"
