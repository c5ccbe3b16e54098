"""Configuration: environment variables over an optional YAML file over built-in defaults.

Every setting is declared once: the platform's in ``SETTINGS`` here, a service's own next to its code in
``services/<name>/settings.py`` (its ``SETTINGS``). The table in docs/configuration.md is generated from all of them
and checked by a test, so a setting cannot exist without being documented.

A service's settings are found by name: for each of ``SERVICES`` the reader imports ``services.<name>.settings``
with importlib when it first needs the table. Why not let the services register themselves on import: the registry
would then hold only the services some code happened to import first, and the reference generator, the CLI and the
runner (which builds a service's nameko config before it imports the service) would each see a different table.
Discovery by name is complete and deterministic wherever it runs, and the kit still has no static import of a
service (the import-linter contract), the same way ``shared/tools/runner.py`` loads a service class by name.

Per-service settings may be given for one service with the service name in the variable
(``TASKLINKR_POSTINGS_MONGO_URI``) or under ``services: {postings: {mongo_uri: ...}}`` in the YAML file; the
service-specific value wins over the platform-wide one.

Any variable may instead name a file holding the value, with ``_FILE`` appended (``TASKLINKR_AMQP_URI_FILE=
/run/secrets/amqp_uri``): how docker compose and Kubernetes hand over secrets without putting them in the
environment. The variable itself wins over its ``_FILE``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICES = ("providers", "postings", "matching", "contracting", "billing", "gateway")
# Services that own a database (the gateway's holds no domain data, only the audit trail).
DATA_SERVICES = ("providers", "postings", "matching", "contracting", "billing", "gateway")
# Services that can be deployed in cells (docs/operations.md, Cells): each lane's processes with a database of
# their own, named ``<service>-<lane>`` (``matching-enterprise``). A lane's processes get their cell's URI as the
# service's (TASKLINKR_MATCHING_MONGO_URI); the operator's tools, which read every database, get each cell's as
# TASKLINKR_MATCHING_ENTERPRISE_MONGO_URI (or ``services: {matching-enterprise: {mongo_uri: ...}}``). A cell's
# per-service setting not given for the cell is the service's (TASKLINKR_BILLING_MONGO_URI for billing-smb), so a
# deployment that names one database for the service keeps using it in every lane until its data is split.
CELL_SERVICES = ("matching", "billing")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    doc: str
    per_service: bool = False
    cast: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting("config_file", "tasklinkr.yaml", "YAML file read for settings not given in the environment."),
    Setting("amqp_uri", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URI (vhost included)."),
    Setting(
        "rabbitmq_management_url",
        "http://127.0.0.1:15672",
        "RabbitMQ management API, used by `tasklinkr tenant-access` with the credentials of `amqp_uri`.",
    ),
    Setting(
        "tenant_broker_url",
        "",
        "The broker address tenants' systems connect to, printed by `tasklinkr tenant-access grant` "
        "(`amqps://broker.example.com:5671` for TLS). Empty: the host and port of `amqp_uri`.",
    ),
    Setting("tenant_max_queues", 20, "Queues one tenant's or provider's broker user may keep; the sweep deletes "
            "the newest beyond it.", cast=int),
    Setting(
        "mongo_uri",
        "",
        "MongoDB URI. Empty: `make run` starts one embedded SecantusDB per service (data in "
        "`<data_dir>/secantusdb/<service>`). A cell's (`TASKLINKR_BILLING_SMB_MONGO_URI`, docs/operations.md, Cells) "
        "defaults to its service's.",
        per_service=True,
    ),
    Setting("mongo_database", "", "Database name; default `tasklinkr_<service>`.", per_service=True),
    Setting("max_workers", 10, "Concurrent workers per service process (also the AMQP prefetch).", True, int),
    Setting(
        "transaction_timeout_seconds",
        5.0,
        "Longest a write transaction retries on conflicts before answering 503 (retry later).",
        per_service=True,
        cast=float,
    ),
    Setting(
        "handler_timeout_seconds",
        30.0,
        "Longest an event or inbound command handler may run; one that hangs is cut off and its message "
        "counts a failed attempt (retried, then parked).",
        per_service=True,
        cast=float,
    ),
    Setting(
        "queue_max_length",
        500_000,
        "Messages a consumer queue holds before the broker pushes publishers back (they retry; nothing is dropped).",
        per_service=True,
        cast=int,
    ),
    Setting("outbox_poll_seconds", 1.0,
            "Longest an idle outbox relay waits on its change stream before its chores (position, gauges, segment "
            "drops); a commit from any process ends the wait at once. Also how often a replica without the lane's "
            "lease tries to take it.", True, float),
    Setting("outbox_batch_size", 500, "Events the relay publishes per batch.", True, int),
    Setting("outbox_lease_seconds", 10.0, "Relay leadership lease, one per lane; one replica relays a lane at a time.",
            True, float),
    Setting(
        "outbox_position_interval_seconds",
        0.25,
        "How often, at most, a publishing relay stores its stream position (one database write); a longer interval "
        "only means more events published again after a crash (consumers deduplicate).",
        per_service=True,
        cast=float,
    ),
    Setting(
        "outbox_retention_seconds",
        600,
        "How long after every lane's relay passed an outbox segment (a minute of events) it is dropped whole "
        "(at least 90 s, longer than a transaction can stay open); events not yet published are never dropped.",
        per_service=True,
        cast=int,
    ),
    Setting(
        "inbox_retention_seconds",
        604_800,
        "How long a consumer remembers an event id it applied (`applied_events`), so a redelivery or duplicate "
        "is recognised; keep it longer than any redelivery can arrive (retries, parked and replayed messages).",
        per_service=True,
        cast=int,
    ),
    Setting(
        "retry_delays",
        "1,5,30,120",
        "Seconds between attempts of a failing event handler; after the last, the event is dead-lettered.",
        per_service=True,
    ),
    Setting(
        "batch_max_size",
        None,
        "Deliveries a batched event handler (`shared.runtime.batches`: matching's posting.published and provider "
        "changes, billing's party projections) takes in one call and one transaction. Unset: each handler's own, "
        "100 for matching's posting.published, 50 for the others. The consumer prefetches one batch more than it "
        "handles at once and at least `max_workers` (twice as many; three times in matching, whose "
        "posting.published takes two batches at once: a process has one prefetch for all its queues).",
        per_service=True,
        cast=int,
    ),
    Setting(
        "batch_max_wait_ms",
        None,
        "Longest a batched event handler waits for its batch to fill after the first delivery arrived; then it "
        "takes what came. 0: whatever has arrived. Unset: each handler's own, 5 ms for all of them.",
        per_service=True,
        cast=float,
    ),
    Setting(
        "operator_key",
        "",
        "Operator API key for the gateway. `make run` generates one into `<data_dir>/operator_key` when unset; "
        "docker compose requires it.",
    ),
    Setting("gateway_address", "127.0.0.1:8080", "Address the HTTP gateway listens on."),
    Setting(
        "max_command_bytes",
        262_144,
        "Largest inbound command (broker message body) accepted; a larger one is rejected and parked.",
        cast=int,
    ),
    Setting(
        "max_api_keys",
        20,
        "Live API keys (active, or rotated and still in their grace period) a client organisation or a provider may "
        "hold; issuing or rotating past it is refused (409) until one is revoked. Rate limits are per organisation, "
        "so more keys never buy more requests.",
        cast=int,
    ),
    Setting(
        "metrics_port",
        "auto",
        "Port of the service's Prometheus `/metrics`: `auto` = 9101 providers, 9102 postings, 9103 matching, "
        "9104 contracting, 9105 billing, 9106 gateway; `off` disables it.",
        per_service=True,
    ),
    Setting("metrics_host", "127.0.0.1", "Address the metrics endpoints bind to (`0.0.0.0` in containers)."),
    Setting("log_level", "INFO", "Log level (DEBUG, INFO, WARNING, ERROR)."),
    Setting("log_format", "json", "`json` (one JSON object per line) or `console`."),
    Setting("data_dir", "var", "Where `make run` keeps the embedded database's files and process logs."),
    Setting("embedded_db_port", 27117, "First port of the embedded SecantusDB servers `make run` starts, one per "
            "service on consecutive ports: providers, postings, matching, contracting, billing, gateway.", cast=int),
    Setting(
        "tls_ca_file",
        "",
        "CA certificate(s) (PEM) that the broker's (`amqps://` URIs) and the databases' (`tls=true` URIs) "
        "certificates are checked against; empty: the system's CAs. Docker compose sets it (deploy/README.md).",
    ),
)



def service_settings(service: str) -> tuple[Setting, ...]:
    """The settings ``services/<service>/settings.py`` declares; none when the service has no such module."""
    module_name = f"services.{service}.settings"
    if importlib.util.find_spec(f"services.{service}") is None or importlib.util.find_spec(module_name) is None:
        return ()
    return tuple(importlib.import_module(module_name).SETTINGS)


@functools.cache
def declared() -> tuple[Setting, ...]:
    """Every setting: the platform's, then each service's in the order of ``SERVICES``."""
    every = SETTINGS + tuple(setting for service in SERVICES for setting in service_settings(service))
    seen: set[str] = set()
    for setting in every:
        if setting.name in seen:
            raise ValueError(f"setting {setting.name!r} is declared twice")
        seen.add(setting.name)
    return every


@functools.cache
def _by_name() -> dict[str, Setting]:
    return {setting.name: setting for setting in declared()}


def env_name(name: str, service: str | None = None) -> str:
    if service:
        return f"TASKLINKR_{service.upper().replace('-', '_')}_{name.upper()}"
    return f"TASKLINKR_{name.upper()}"


def _read_yaml(environ: dict[str, str]) -> dict:
    path = Path(environ.get(env_name("config_file"), _by_name()["config_file"].default))
    if not path.is_file():
        return {}
    with path.open() as fh:
        loaded = yaml.safe_load(fh) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    return loaded


def _from_environment(environ: dict[str, str], variable: str) -> str | None:
    """The variable's value, or the content of the file its ``<variable>_FILE`` names (a compose secret)."""
    value = environ.get(variable)
    if value in (None, "") and environ.get(f"{variable}_FILE"):
        path = Path(environ[f"{variable}_FILE"])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"{variable}_FILE: cannot read {path}: {exc.strerror}") from exc
    return value


def get(name: str, service: str | None = None, environ: dict[str, str] | None = None) -> Any:
    """The value of one setting, for one service when the setting is per service."""
    environ = dict(os.environ if environ is None else environ)
    setting = _by_name()[name]
    candidates: list[Any] = []
    file_values = _read_yaml(environ)
    # A cell (``billing-smb``) first, then its service (``billing``): a cell's setting defaults to its service's.
    scopes = list(dict.fromkeys([service, service_of(service)])) if service and setting.per_service else []
    candidates += [_from_environment(environ, env_name(name, scope)) for scope in scopes]
    candidates.append(_from_environment(environ, env_name(name)))
    candidates += [((file_values.get("services") or {}).get(scope) or {}).get(name) for scope in scopes]
    candidates.append(file_values.get(name))
    for value in candidates:
        if value not in (None, ""):
            return setting.cast(value)
    if name == "mongo_database" and service:
        return f"tasklinkr_{service_of(service)}"
    return setting.default


def service_of(database: str) -> str:
    """The service a database belongs to: ``matching`` for its cell ``matching-enterprise``."""
    return database.split("-", 1)[0]


def databases(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The databases an operator's tool reads (status, backup, restore): one per service, or, for a service in
    ``CELL_SERVICES`` with a cell's URI of its own configured (not the service's, which a cell's defaults to), one
    per cell (``matching-enterprise``, ``matching-smb``)."""
    from shared.vocabulary.terms import LANES

    environ = dict(os.environ if environ is None else environ)
    found: list[str] = []
    for service in DATA_SERVICES:
        cells = [f"{service}-{lane}" for lane in LANES] if service in CELL_SERVICES else []
        services_own = get("mongo_uri", service, environ)  # what a cell's URI defaults to
        found += cells if any(get("mongo_uri", cell, environ) != services_own for cell in cells) else [service]
    return tuple(found)


def nameko_config(service: str, environ: dict[str, str] | None = None) -> dict:
    """The nameko config dict for one service process: the platform's settings, and every service's own settings
    under their names in capitals (postings, for one, honours contracting's ``CONTRACTING_MAX_BACKDATE_DAYS``)."""

    def value(name: str) -> Any:
        return get(name, service, environ)

    return {
        "AMQP_URI": value("amqp_uri"),
        "WEB_SERVER_ADDRESS": value("gateway_address"),
        "max_workers": value("max_workers"),
        "serializer": "json",
        "PREFETCH_COUNT": value("max_workers"),
        "MONGO_URI": value("mongo_uri"),
        "MONGO_DATABASE": value("mongo_database"),
        "TRANSACTION_TIMEOUT_SECONDS": value("transaction_timeout_seconds"),
        "HANDLER_TIMEOUT_SECONDS": value("handler_timeout_seconds"),
        "OUTBOX_POLL_SECONDS": value("outbox_poll_seconds"),
        "OUTBOX_BATCH_SIZE": value("outbox_batch_size"),
        "OUTBOX_LEASE_SECONDS": value("outbox_lease_seconds"),
        "OUTBOX_POSITION_INTERVAL_SECONDS": value("outbox_position_interval_seconds"),
        "OUTBOX_RETENTION_SECONDS": value("outbox_retention_seconds"),
        "INBOX_RETENTION_SECONDS": value("inbox_retention_seconds"),
        "RETRY_DELAYS_SECONDS": value("retry_delays"),
        "QUEUE_MAX_LENGTH": value("queue_max_length"),
        "BATCH_MAX_SIZE": value("batch_max_size"),
        "BATCH_MAX_WAIT_MS": value("batch_max_wait_ms"),
        "OPERATOR_KEY": value("operator_key"),
        "RABBITMQ_MANAGEMENT_URL": value("rabbitmq_management_url"),
        "TENANT_MAX_QUEUES": value("tenant_max_queues"),
        "MAX_API_KEYS": value("max_api_keys"),
        "LOG_LEVEL": value("log_level"),
        "LOG_FORMAT": value("log_format"),
        **{setting.name.upper(): value(setting.name)
           for other in SERVICES for setting in service_settings(other)},
    }


def apply_tls_settings(environ: dict[str, str] | None = None) -> None:
    """Make ``tls_ca_file`` the CA store of every TLS client of this process.

    kombu (``amqps://``), nameko's connections and pymongo (``tls=true`` without ``tlsCAFile``) all verify the
    server against OpenSSL's default store, which ``SSL_CERT_FILE`` names; requests (the management API of
    ``tasklinkr tenant-access``) reads ``REQUESTS_CA_BUNDLE``. One setting covers every client.
    """
    ca_file = get("tls_ca_file", environ=environ)
    if ca_file:
        if not Path(ca_file).is_file():
            raise ValueError(f"TASKLINKR_TLS_CA_FILE: {ca_file} is not a file")
        os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = ca_file


def markdown_table() -> str:
    """The configuration table of docs/configuration.md, generated from every declared setting, each with the file
    that declares it."""
    rows = ["| variable | default | meaning | declared in |", "|---|---|---|---|"]
    owners = [("shared/runtime/config.py", SETTINGS)]
    owners += [(f"services/{service}/settings.py", service_settings(service)) for service in SERVICES]
    for owner, settings in owners:
        for setting in settings:
            per = f" Per service: `TASKLINKR_<SERVICE>_{setting.name.upper()}`." if setting.per_service else ""
            default = f"`{setting.default}`" if setting.default not in ("", None) else "—"
            rows.append(f"| `{env_name(setting.name)}` | {default} | {setting.doc}{per} | `{owner}` |")
    return "\n".join(rows) + "\n"
