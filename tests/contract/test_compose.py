"""docker-compose.yml is a valid Compose file that runs every service the way an operations team needs.

No Docker engine (and no `docker compose` plugin) is on this machine, so what `docker compose config` would check
is checked here: the file against the Compose Specification's JSON Schema, its `${...}` interpolation (nothing
defaults a secret; without TASKLINKR_SECRETS_DIR it refuses to render), and every reference (secrets, volumes,
dependencies, mounted files, the files deploy/gen_secrets.py makes). Then the rules: health checks, restart
policies, resource limits, log rotation, pinned images, least-privilege users and TLS.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from shared.runtime.config import CELL_SERVICES, databases, service_of
from shared.runtime.config import DATA_SERVICES as ALL_DATA_SERVICES
from shared.runtime.metrics import port_for
from shared.tools.runner import runnable_services
from shared.vocabulary.terms import LANES
from tests.contract.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# Reference schemas live beside the repository (../shared/schemas), here and in CI alike.
COMPOSE_SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
DOCKERFILE = "deploy/Dockerfile"
# Planned services (a package without service.py yet) join compose when they are built.
SERVICES = list(runnable_services())
DATA_SERVICES = [name for name in ALL_DATA_SERVICES if name in SERVICES]


def databases_of(name: str) -> list[str]:
    """A service's MongoDBs: its own, or one per lane for a service deployed in cells (``matching-enterprise``)."""
    return [f"{name}-{lane}" for lane in LANES] if name in CELL_SERVICES else [name]


DATABASES = [database for name in DATA_SERVICES for database in databases_of(name)]
# The heavy consumers run as one compose service per workload lane, `<service>-<lane>` (`tasklinkr run <service>
# --lane <lane>`), each scaled on its own; the others run one service consuming every lane.
LANED = [name for name in ("matching", "contracting", "billing") if name in SERVICES]
SCALABLE = [name for name in SERVICES if name not in LANED] + [f"{name}-{lane}" for name in LANED for lane in LANES]
ONE_SHOT = ("topology", "operator")
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")
_EXACT_VERSION = re.compile(r":v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def long_running(services) -> dict:
    return {name: service for name, service in services.items() if name not in ONE_SHOT}


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory) -> Path:
    """A deployment's secrets, as an operator makes them."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the deployment's certificates")
    folder = tmp_path_factory.mktemp("deployment") / "secrets"
    load_script(REPO / "deploy" / "gen_secrets.py", "gen_secrets").generate(folder, ["tasklinkr.example.com"])
    return folder


def compose_names(name: str) -> list[str]:
    """The compose services that run service ``name``: one per lane for a laned service, else its own."""
    return [f"{name}-{lane}" for lane in LANES] if name in LANED else [name]


def interpolate(text: str, environ: dict[str, str]) -> str:
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` (``$$`` is a literal ``$``)."""

    def value(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if environ.get(name):
            return environ[name]
        if operator in (":-", "-"):
            return argument
        if operator in (":?", "?"):
            raise LookupError(f"{name}: {argument}")
        return ""

    return _VARIABLE.sub(value, text.replace("$$", "\0")).replace("\0", "$")


def rendered(environ: dict[str, str]) -> dict:
    return yaml.safe_load(interpolate(COMPOSE_FILE.read_text(), environ))


def test_compose_file_validates_against_the_compose_specification(compose):
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(f"compose-spec.json not found at {COMPOSE_SCHEMA} (expected beside the repository)")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_every_variable_is_well_formed_and_compose_refuses_to_start_without_the_secrets_folder():
    text = COMPOSE_FILE.read_text().replace("$$", "")
    assert text.count("${") == len(_VARIABLE.findall(text)), "a ${...} compose could not parse"
    with pytest.raises(LookupError, match="TASKLINKR_SECRETS_DIR: run python deploy/gen_secrets.py"):
        rendered({})


def test_no_value_defaults_a_secret():
    for name, operator, argument in _VARIABLE.findall(COMPOSE_FILE.read_text()):
        if operator.endswith("-"):
            assert not re.search(r"PASSWORD|SECRET|KEY|TOKEN|URI", name), f"{name} has a default"
            assert "@" not in argument and "://" not in argument, f"{name} defaults to credentials"


def test_every_secret_compose_reads_is_a_file_gen_secrets_makes(secrets_dir):
    config = rendered({"TASKLINKR_SECRETS_DIR": str(secrets_dir)})
    for name, secret in config["secrets"].items():
        assert Path(secret["file"]).is_file(), f"secret {name}: {secret['file']} is not made by gen_secrets.py"
    for name, service in config["services"].items():
        for env_file in service.get("env_file", []) if isinstance(service.get("env_file"), list) else \
                [service["env_file"]] if "env_file" in service else []:
            assert Path(env_file).is_file(), f"{name}: {env_file}"


def test_every_reference_resolves(compose, services):
    for name, service in services.items():
        for secret in service.get("secrets", []):
            source = secret if isinstance(secret, str) else secret["source"]
            assert source in compose["secrets"], f"{name} uses undeclared secret {source}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            elif not source.startswith(("$", "/")):
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def secret_files(service: dict) -> set[str]:
    """The paths under /run/secrets a service sees."""
    names = set()
    for secret in service.get("secrets", []):
        names.add(secret if isinstance(secret, str) else secret.get("target", secret["source"]))
    return {f"/run/secrets/{name}" for name in names}


def test_every_file_a_setting_or_command_names_under_run_secrets_is_mounted(services):
    for name, service in services.items():
        mounted = secret_files(service)
        text = json.dumps({k: service.get(k) for k in ("environment", "command", "healthcheck", "entrypoint")})
        for path in set(re.findall(r"/run/secrets/[a-z_]+", text)):
            assert path in mounted, f"{name} reads {path} but does not mount it"
    for conf in ("deploy/rabbitmq/rabbitmq.conf", "deploy/proxy/Caddyfile"):
        owner = "rabbitmq" if "rabbitmq" in conf else "proxy"
        for path in set(re.findall(r"/run/secrets/[a-z_]+", (REPO / conf).read_text())):
            assert path in secret_files(services[owner]), f"{conf} reads {path}"


def test_every_long_running_container_has_a_health_check_restart_policy_limits_and_log_rotation(long_running):
    for name, service in long_running.items():
        if "observability" not in service.get("profiles", []):
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service["restart"] == "unless-stopped", name
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[mg]", limits["memory"]), name
        logging = service["logging"]
        assert logging["driver"] == "json-file" and logging["options"]["max-size"] and logging["options"]["max-file"]


def _bytes(size: str) -> float:
    return float(size[:-1]) * {"m": 2**20, "g": 2**30}[size[-1]]


@pytest.mark.parametrize("name", DATABASES)
def test_each_mongod_cache_is_sized_within_its_memory_limit_with_auth_and_tls(services, name):
    mongo = services[f"mongo-{name}"]
    command = mongo["command"]
    cache = float(command[command.index("--wiredTigerCacheSizeGB") + 1]) * 2**30
    assert cache <= _bytes(mongo["deploy"]["resources"]["limits"]["memory"]) / 2, "cache beyond half the limit"
    assert "--auth" in command and "--keyFile" in command
    assert command[command.index("--tlsMode") + 1] == "requireTLS"
    assert "--replSet" in command, "transactions need a replica set"
    health = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate" in health and "isWritablePrimary" in health and "--tls" in health
    assert mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD_FILE"] == "/run/secrets/mongo_root_password"
    assert mongo["environment"]["TASKLINKR_SERVICE"] == service_of(name)  # the service's user, in every cell
    assert f"mongo-{name}-data:/data/db" in mongo["volumes"]


def test_images_are_pinned_to_exact_versions(services):
    for name, service in services.items():
        if "build" in service:
            continue
        assert _EXACT_VERSION.search(service["image"]), f"{name}: {service['image']} is not an exact version"
    dockerfile = (REPO / DOCKERFILE).read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base


def test_the_broker_image_is_the_version_the_suite_runs_against(services):
    rabbitmqctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    try:
        local = subprocess.run([rabbitmqctl, "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        pytest.skip("no local RabbitMQ to compare with")
    assert services["rabbitmq"]["image"] == f"rabbitmq:{local}-management"


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_its_own_process_with_its_own_credentials(services, name):
    for compose_name in compose_names(name):
        assert_runs_as(services[compose_name], name, compose_name if name in CELL_SERVICES else name)


def assert_runs_as(service: dict, name: str, database: str) -> None:
    assert service["build"] == {"context": ".", "dockerfile": DOCKERFILE}
    assert service["command"][:2] == ["run", name]
    assert service["healthcheck"]["test"] == ["CMD", "tasklinkr", "probe", name]
    environment = service["environment"]
    assert environment["TASKLINKR_AMQP_URI_FILE"] == "/run/secrets/amqp_uri"
    assert environment["TASKLINKR_TLS_CA_FILE"] == "/run/secrets/tls_ca"
    assert not any(key.endswith(("_URI", "_PASSWORD", "_KEY")) for key in environment), "secrets as files only"
    sources = {s["target"]: s["source"] for s in service["secrets"] if isinstance(s, dict)}
    assert sources["amqp_uri"] == f"amqp_uri_{name}"
    if name in DATA_SERVICES:
        # Its own per-service setting only: `tasklinkr status` here knows no other service's database.
        assert environment[f"TASKLINKR_{name.upper()}_MONGO_URI_FILE"] == "/run/secrets/mongo_uri"
        assert sources["mongo_uri"] == f"mongo_uri_{database.replace('-', '_')}"  # a cell's is its lane's
        assert "TASKLINKR_MONGO_URI_FILE" not in environment


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_connects_over_tls_as_its_own_least_privileged_user(secrets_dir, name):
    uri = urlsplit((secrets_dir / f"amqp-uri-{name}").read_text())
    assert (uri.scheme, uri.hostname, uri.port) == ("amqps", "rabbitmq", 5671)
    assert uri.username == f"tasklinkr-{name}"
    definitions = json.loads((secrets_dir / "rabbitmq-definitions.json").read_text())
    (granted,) = [p for p in definitions["permissions"] if p["user"] == uri.username]
    assert granted["configure"] != ".*" and granted["read"] != ".*" and granted["write"] != ".*"
    assert {u["name"]: u["tags"] for u in definitions["users"]}[uri.username] == []
    for database in databases_of(name) if name in DATA_SERVICES else []:
        mongo = urlsplit((secrets_dir / f"mongo-uri-{database}").read_text())
        assert (mongo.hostname, mongo.username) == (f"mongo-{database}", name)
        assert {"tls=true", "directConnection=true", "tlsCAFile=/run/secrets/tls_ca"} <= set(mongo.query.split("&"))


def test_every_password_is_random_and_distinct(secrets_dir):
    passwords = [path.read_text() for path in secrets_dir.glob("*password*") if path.suffix != ".json"]
    assert len(passwords) == len(set(passwords)) > 10
    assert all(len(password) >= 40 for password in passwords)


def test_services_start_only_when_their_dependencies_are_ready(services):
    for name in SERVICES:
        for compose_name in compose_names(name):
            depends_on = services[compose_name]["depends_on"]
            assert depends_on["rabbitmq"] == {"condition": "service_healthy"}
            assert depends_on["topology"] == {"condition": "service_completed_successfully"}
            if name in DATA_SERVICES:
                database = compose_name if name in CELL_SERVICES else name  # a cell waits for its own database
                assert depends_on[f"mongo-{database}"] == {"condition": "service_healthy"}
                assert [other for other in depends_on if other.startswith("mongo-")] == [f"mongo-{database}"]


def lane_of_service(service: dict) -> str | None:
    """The lane a compose service's ``tasklinkr run`` is limited to (None: every lane)."""
    command = service["command"]
    lanes = [command[i + 1] for i, word in enumerate(command) if word == "--lane"]
    assert len(lanes) <= 1, f"{command}: one lane per compose service, so each lane scales on its own"
    return lanes[0] if lanes else None


def laned_services(services: dict, name: str) -> dict[str, dict]:
    """The compose services running service ``name``, by the lane each consumes (None: every lane)."""
    running = {key: value for key, value in services.items()
               if value.get("command", [])[:2] == ["run", name]}
    return {lane_of_service(service): service | {"compose_name": key} for key, service in running.items()}


@pytest.mark.parametrize("name", LANED)
def test_each_heavy_consumer_runs_one_service_per_lane_each_consuming_only_its_lane(services, name):
    by_lane = laned_services(services, name)
    assert set(by_lane) == {lane.value for lane in LANES}, f"{name}: one compose service per lane, none for all"
    for lane, service in by_lane.items():
        assert service["compose_name"] == f"{name}-{lane}"
        assert service["command"] == ["run", name, "--lane", lane]
        # One DNS name for every lane's replicas, which Prometheus's DNS discovery scrapes as `name`.
        assert service["networks"]["default"]["aliases"] == [name]


@pytest.mark.parametrize("name", LANED)
def test_the_lanes_of_a_service_share_its_database_credentials_health_check_and_dependencies(services, name):
    """Only the lane and its share of the machine differ: the same database, broker user, secrets, settings and
    start order as the one service they replaced; a service in cells differs in its database too, each lane's its
    own (``mongo-matching-enterprise``)."""
    first, *others = laned_services(services, name).values()
    shared = ("build", "image", "secrets", "healthcheck", "depends_on", "deploy", "restart", "logging",
              "stop_grace_period", "networks")

    def settings(service: dict) -> dict:
        return {key: value for key, value in service["environment"].items() if key != "TASKLINKR_MAX_WORKERS"}

    def same(service: dict) -> dict:
        """What every lane shares: for a cell, its database named as the service's."""
        compose_name = service["compose_name"]
        text = yaml.safe_dump({key: service.get(key) for key in shared})
        if name in CELL_SERVICES:
            text = text.replace(compose_name.replace("-", "_"), name).replace(f"mongo-{compose_name}", f"mongo-{name}")
        return yaml.safe_load(text)

    for other in others:
        assert same(other) == same(first)
        assert settings(other) == settings(first)
    assert first["healthcheck"]["test"] == ["CMD", "tasklinkr", "probe", name]


@pytest.mark.parametrize("name", LANED)
def test_the_large_lane_runs_fewer_workers_at_a_fifth_of_the_cpu_weight_as_its_kubernetes_pods_do(services, name):
    """A flood of large work holds fewer transactions open in the service's database and, when the CPU is
    contended, leaves the small lane its share (docs/operations.md, Scaling); the Kubernetes Deployments of the
    lanes get the same workers and CPU requests in the same proportion."""
    lane_resources = load_script(REPO / "deploy" / "gen_kubernetes.py", "gen_kubernetes").LANE_RESOURCES
    by_lane = laned_services(services, name)
    small, large = by_lane["smb"], by_lane["enterprise"]

    def workers(service: dict) -> int:
        return int(service["environment"].get("TASKLINKR_MAX_WORKERS", 10))

    assert workers(large) < workers(small)
    assert large["cpu_shares"] * 4 < small["cpu_shares"]
    for lane, service in by_lane.items():
        assert workers(service) == lane_resources[lane]["max_workers"]
    requests = {lane: int(lane_resources[lane]["cpu_request"].removesuffix("m")) for lane in by_lane}
    assert large["cpu_shares"] / small["cpu_shares"] == pytest.approx(requests["enterprise"] / requests["smb"],
                                                                      rel=0.05)


@pytest.mark.parametrize("name", [name for name in SERVICES if name not in LANED])
def test_the_other_services_consume_every_lane(services, name):
    assert services[name]["command"] == ["run", name]


def test_a_lane_service_that_names_no_known_lane_or_two_lanes_is_refused():
    """What the checks above catch: a `--lane` the vocabulary does not know, a lane missing, two lanes at once."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    services["billing-smb"]["command"] = ["run", "billing", "--lane", "small"]
    with pytest.raises(AssertionError):
        test_each_heavy_consumer_runs_one_service_per_lane_each_consuming_only_its_lane(services, "billing")
    del services["billing-smb"]
    with pytest.raises(AssertionError):
        test_each_heavy_consumer_runs_one_service_per_lane_each_consuming_only_its_lane(services, "billing")
    services["billing-enterprise"]["command"] += ["--lane", "smb"]
    with pytest.raises(AssertionError, match="one lane per compose service"):
        laned_services(services, "billing")


def test_a_lane_service_with_another_database_or_health_check_is_refused():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    services["matching-smb"] = services["matching-smb"] | {"depends_on": {"rabbitmq": {"condition": "service_healthy"}}}
    with pytest.raises(AssertionError):
        test_the_lanes_of_a_service_share_its_database_credentials_health_check_and_dependencies(services, "matching")


def test_topology_is_declared_by_the_operator_once_and_waits_for_the_broker(services):
    topology = services["topology"]
    assert topology["command"] == ["topology", "apply", "--wait", "120"]
    assert topology["restart"] == "no"
    assert topology["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}
    assert {"source": "amqp_uri_operator", "target": "amqp_uri"} in topology["secrets"]


@pytest.mark.parametrize("name", [*SCALABLE, "topology", "operator"])
def test_scalable_services_have_no_fixed_name_or_host_port(services, name):
    assert "container_name" not in services[name]
    assert "ports" not in services[name]


def test_the_broker_serves_amqps_and_the_management_api_over_https_with_the_deployments_users(services):
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert "./deploy/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/10-defaults.conf:ro" in rabbitmq["volumes"]
    assert [_published(port) for port in rabbitmq["ports"]] == [("0.0.0.0", 5671), ("127.0.0.1", 15671)]
    conf = dict(line.split(" = ", 1) for line in (REPO / "deploy/rabbitmq/rabbitmq.conf").read_text().splitlines()
                if " = " in line and not line.startswith("#"))
    assert conf["listeners.tcp"] == "none" and conf["listeners.ssl.default"] == "5671"
    assert conf["management.ssl.port"] == "15671"
    assert conf["load_definitions"] == "/run/secrets/rabbitmq_definitions"
    assert conf["prometheus.return_per_object_metrics"] == "true"
    assert "rabbitmq_prometheus" in (REPO / "deploy/rabbitmq/enabled_plugins").read_text()
    assert rabbitmq.get("hostname"), "a stable node name keeps the data directory in the volume"


def _published(port: str) -> tuple[str, int]:
    parts = interpolate(port, {}).split(":")
    host = parts[0] if len(parts) == 3 else "0.0.0.0"
    return host, int(parts[-1])


def test_the_gateway_is_reached_only_through_the_https_proxy_which_balances_every_replica(services):
    gateway = services["gateway"]
    assert "ports" not in gateway, "behind the proxy, so `--scale gateway=N` works"
    assert gateway["environment"]["TASKLINKR_GATEWAY_ADDRESS"] == "0.0.0.0:8080"
    assert gateway["environment"]["TASKLINKR_OPERATOR_KEY_FILE"] == "/run/secrets/operator_key"
    proxy = services["proxy"]
    assert [interpolate(port, {}) for port in proxy["ports"]] == ["443:8443"]
    caddyfile = (REPO / "deploy/proxy/Caddyfile").read_text()
    assert re.search(r"dynamic a \{\s*name gateway\s*port 8080", caddyfile), "every replica, not one address"
    assert "tls /run/secrets/tls_server_cert /run/secrets/tls_server_key" in caddyfile


def test_the_operator_container_reaches_every_services_database(services):
    """`docker compose run --rm operator status` reports every service's outbox (a service's own container knows
    only its own database)."""
    operator = services["operator"]
    assert operator["profiles"] == ["tools"]
    environment = {"TASKLINKR_CONFIG_FILE": "/nonexistent"}
    for name in DATABASES:  # matching's cells each
        variable = f"TASKLINKR_{name.upper().replace('-', '_')}_MONGO_URI"
        path = operator["environment"][f"{variable}_FILE"]
        assert path in secret_files(operator) and path.endswith(f"mongo_uri_{name.replace('-', '_')}")
        environment[variable] = f"mongodb://mongo-{name}:27017/"
    # What `tasklinkr status` and `backup` then read: every cell of matching, not a matching database.
    assert list(databases(environment)) == DATABASES
    assert {"source": "amqp_uri_operator", "target": "amqp_uri"} in operator["secrets"]
    assert operator["environment"]["TASKLINKR_RABBITMQ_MANAGEMENT_URL"] == "https://rabbitmq:15671"


def test_the_observability_profile_scrapes_every_service_the_broker_and_each_database(services):
    profiled = {name for name, service in services.items() if "observability" in service.get("profiles", [])}
    assert {"prometheus", "grafana", *(f"mongodb-exporter-{name}" for name in DATABASES)} == profiled
    scrape = yaml.safe_load((REPO / "deploy/observability/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    targets = {(sd["names"][0], sd["port"]) for sd in jobs["tasklinkr"]["dns_sd_configs"]}
    assert targets == {(name, port_for(name, {"TASKLINKR_CONFIG_FILE": "/nonexistent"})) for name in SERVICES}
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    exporters = set(jobs["mongodb"]["static_configs"][0]["targets"])
    assert exporters == {f"mongodb-exporter-{name}:9216" for name in DATABASES}
    assert "./deploy/observability/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert ("./deploy/observability/grafana/tasklinkr.json:/etc/grafana/dashboards/tasklinkr.json:ro"
            in services["grafana"]["volumes"])


def test_the_dockerfile_the_services_build_from_exists():
    dockerfile = (REPO / DOCKERFILE).read_text()
    assert re.search(r'^ENTRYPOINT \["tasklinkr"\]', dockerfile, re.M)
    assert re.search(r"^USER (?!root\b|0\b)\S+", dockerfile, re.M), "the image must run as a non-root user"
    assert "COPY contracts-schema" in dockerfile, "services read contracts-schema/ at run time"
    assert (REPO / ".dockerignore").is_file()


def test_the_certificate_is_signed_by_the_deployments_ca_for_every_host_that_serves_tls(secrets_dir, services):
    ca, cert = secrets_dir / "tls-ca.pem", secrets_dir / "tls-server.pem"
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(cert)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    names = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True, check=True).stdout
    for host in ["rabbitmq", "localhost", "tasklinkr.example.com", *(f"mongo-{name}" for name in DATABASES)]:
        assert f"DNS:{host}" in names, host


def test_generating_again_keeps_every_password_and_adds_only_what_is_missing(secrets_dir):
    generator = load_script(REPO / "deploy" / "gen_secrets.py", "gen_secrets")
    before = {path.name: path.read_text() for path in secrets_dir.glob("*password*")}
    (secrets_dir / "operator-key").unlink()
    generator.generate(secrets_dir)
    assert {path.name: path.read_text() for path in secrets_dir.glob("*password*")} == before
    assert (secrets_dir / "operator-key").read_text()
    assert oct(secrets_dir.stat().st_mode & 0o777) == "0o700"
