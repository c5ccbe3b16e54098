"""Configuration: environment variables over an optional YAML file over built-in defaults.

Every setting is declared once in ``SETTINGS``; the table in docs/configuration.md is checked against it by a
test, so a setting cannot exist without being documented.

Per-service settings may be given for one service with the service name in the variable
(``TASKLINKR_POSTINGS_MONGO_URI``) or under ``services: {postings: {mongo_uri: ...}}`` in the YAML file; the
service-specific value wins over the platform-wide one.

Any variable may instead name a file holding the value, with ``_FILE`` appended (``TASKLINKR_AMQP_URI_FILE=
/run/secrets/amqp_uri``): how docker compose and Kubernetes hand over secrets without putting them in the
environment. The variable itself wins over its ``_FILE``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICES = ("providers", "postings", "matching", "contracting", "billing", "gateway")
# Services that own a database (the gateway's holds no domain data, only the audit trail).
DATA_SERVICES = ("providers", "postings", "matching", "contracting", "billing", "gateway")


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
    Setting(
        "tenant_sweep_interval_seconds",
        "30",
        "How often the gateway sweeps away what tenants' and providers' broker users declared beyond their rights "
        "(bindings into the platform's exchanges, exchanges of their own, queues that dead-letter into the "
        "platform, queues beyond `tenant_max_queues`), through the management API; `off` disables it.",
    ),
    Setting("tenant_max_queues", 20, "Queues one tenant's or provider's broker user may keep; the sweep deletes "
            "the newest beyond it.", cast=int),
    Setting(
        "mongo_uri",
        "",
        "MongoDB URI. Empty: `make run` starts one embedded SecantusDB per service (data in "
        "`<data_dir>/secantusdb/<service>`).",
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
    Setting("outbox_poll_seconds", 1.0, "How often the outbox relay looks for unpublished events.", True, float),
    Setting("outbox_batch_size", 500, "Events the relay publishes per batch.", True, int),
    Setting("outbox_lease_seconds", 10.0, "Relay leadership lease; one replica relays at a time.", True, float),
    Setting(
        "outbox_retention_seconds",
        600,
        "How long after the relay passed an outbox segment (a minute of events) it drops the segment whole "
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
        "operator_key",
        "",
        "Operator API key for the gateway. `make run` generates one into `<data_dir>/operator_key` when unset; "
        "docker compose requires it.",
    ),
    Setting("gateway_address", "127.0.0.1:8080", "Address the HTTP gateway listens on."),
    Setting("rpc_timeout_seconds", 30.0, "Gateway's wait for a service answer before replying 504; a request its "
            "service has not started by then is dropped unrun (it expires in its queue, or the service refuses it "
            "on arrival), so a retry after the 504 does not do the work twice.", cast=float),
    Setting("max_request_bytes", 1_048_576, "Largest HTTP request body the gateway accepts (413 above).", cast=int),
    Setting(
        "max_command_bytes",
        262_144,
        "Largest inbound command (broker message body) accepted; a larger one is rejected and parked.",
        cast=int,
    ),
    Setting(
        "rate_limit",
        "120/minute",
        "Requests each client organisation, provider and the operator may make (all its keys together) in a moving "
        "window (`limits` notation: `120/minute`, `10/second`); beyond it the gateway answers 429 with "
        "`Retry-After`. `off` disables it.",
    ),
    Setting(
        "rate_limit_storage",
        "memory://",
        "Where the gateway counts each caller's requests: `memory://` counts per gateway process, so N gateway "
        "replicas let a caller make N times its budget; a storage URI the replicas share (any the `limits` "
        "library knows, e.g. `redis://host:6379`, with its client installed) makes it one budget.",
    ),
    Setting(
        "key_rotation_grace_seconds",
        86_400,
        "How long a rotated API key keeps working when the rotation request does not say (at most 30 days; "
        "0 refuses it at once). Revoked keys are refused at once.",
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
    Setting("matching_top_k", 10, "Candidates on a posting's shortlist (matching).", cast=int),
    Setting(
        "matching_notice_release_interval_seconds",
        3600.0,
        "How often matching frees the load of terminated contracts whose notice period has ended (their hours "
        "count against the provider's capacity until the effective date).",
        cast=float,
    ),
    Setting(
        "contracting_sla_evaluation_interval_seconds",
        60.0,
        "How often contracting looks for SLA measurement windows that fell due and evaluates them.",
        cast=float,
    ),
    Setting(
        "contracting_sla_grace_seconds",
        3600.0,
        "How long after a window ends (or after activation, for a backdated contract's past windows) its "
        "measurements still count; then the window is evaluated once. Later ones are recorded as late. A window "
        "both parties close early is evaluated at once.",
        cast=float,
    ),
    Setting(
        "contracting_escalation_interval_seconds",
        60.0,
        "How often contracting escalates open issues past their due time one level up the governance plan.",
        cast=float,
    ),
    Setting(
        "contracting_max_backdate_days",
        31,
        "How far in the past a draft contract's start date may lie (formalising work already under way); "
        "postings refuses (409) an award whose agreed start lies further back, so every award becomes a contract.",
        cast=int,
    ),
    Setting(
        "billing_invoice_run_interval_seconds",
        3600.0,
        "How often billing's scheduled invoice run issues the invoices of every billing period that has ended.",
        cast=float,
    ),
    Setting(
        "billing_overdue_interval_seconds",
        300.0,
        "How often billing looks for invoices with a balance past their due time (announced once as overdue).",
        cast=float,
    ),
    Setting(
        "billing_run_batch_size",
        100,
        "Accounts of one tenant an invoice run invoices per transaction.",
        cast=int,
    ),
    Setting(
        "billing_tax_rates",
        "",
        "VAT/GST rates (percent) by the client's country, over billing's built-in table of standard rates "
        "(`services/billing/tax.py`): `DE=19,CH=8.1`. A country in neither is invoiced without tax.",
    ),
    Setting(
        "billing_pdf_font",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "TrueType font that PDF invoices are drawn in (its `-Bold` sibling for headings, when present); a missing "
        "file falls back to Helvetica, which prints only Latin-1 (other characters as `?`).",
    ),
    Setting(
        "tls_ca_file",
        "",
        "CA certificate(s) (PEM) that the broker's (`amqps://` URIs) and the databases' (`tls=true` URIs) "
        "certificates are checked against; empty: the system's CAs. Docker compose sets it (deploy/README.md).",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def env_name(name: str, service: str | None = None) -> str:
    if service:
        return f"TASKLINKR_{service.upper()}_{name.upper()}"
    return f"TASKLINKR_{name.upper()}"


def _read_yaml(environ: dict[str, str]) -> dict:
    path = Path(environ.get(env_name("config_file"), _BY_NAME["config_file"].default))
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
    setting = _BY_NAME[name]
    candidates: list[Any] = []
    file_values = _read_yaml(environ)
    if service and setting.per_service:
        candidates.append(_from_environment(environ, env_name(name, service)))
    candidates.append(_from_environment(environ, env_name(name)))
    if service and setting.per_service:
        candidates.append(((file_values.get("services") or {}).get(service) or {}).get(name))
    candidates.append(file_values.get(name))
    for value in candidates:
        if value not in (None, ""):
            return setting.cast(value)
    if name == "mongo_database" and service:
        return f"tasklinkr_{service}"
    return setting.default


def nameko_config(service: str, environ: dict[str, str] | None = None) -> dict:
    """The nameko config dict for one service process."""

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
        "OUTBOX_RETENTION_SECONDS": value("outbox_retention_seconds"),
        "INBOX_RETENTION_SECONDS": value("inbox_retention_seconds"),
        "RETRY_DELAYS_SECONDS": value("retry_delays"),
        "QUEUE_MAX_LENGTH": value("queue_max_length"),
        "OPERATOR_KEY": value("operator_key"),
        "RPC_TIMEOUT_SECONDS": value("rpc_timeout_seconds"),
        "MAX_REQUEST_BYTES": value("max_request_bytes"),
        "RATE_LIMIT": value("rate_limit"),
        "RATE_LIMIT_STORAGE": value("rate_limit_storage"),
        "KEY_ROTATION_GRACE_SECONDS": value("key_rotation_grace_seconds"),
        "RABBITMQ_MANAGEMENT_URL": value("rabbitmq_management_url"),
        "TENANT_SWEEP_INTERVAL_SECONDS": value("tenant_sweep_interval_seconds"),
        "TENANT_MAX_QUEUES": value("tenant_max_queues"),
        "MAX_API_KEYS": value("max_api_keys"),
        "LOG_LEVEL": value("log_level"),
        "LOG_FORMAT": value("log_format"),
        "MATCHING_TOP_K": value("matching_top_k"),
        "MATCHING_NOTICE_RELEASE_INTERVAL_SECONDS": value("matching_notice_release_interval_seconds"),
        "CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS": value("contracting_sla_evaluation_interval_seconds"),
        "CONTRACTING_SLA_GRACE_SECONDS": value("contracting_sla_grace_seconds"),
        "CONTRACTING_ESCALATION_INTERVAL_SECONDS": value("contracting_escalation_interval_seconds"),
        "CONTRACTING_MAX_BACKDATE_DAYS": value("contracting_max_backdate_days"),
        "BILLING_INVOICE_RUN_INTERVAL_SECONDS": value("billing_invoice_run_interval_seconds"),
        "BILLING_OVERDUE_INTERVAL_SECONDS": value("billing_overdue_interval_seconds"),
        "BILLING_RUN_BATCH_SIZE": value("billing_run_batch_size"),
        "BILLING_TAX_RATES": value("billing_tax_rates"),
        "BILLING_PDF_FONT": value("billing_pdf_font"),
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
    """The configuration table of docs/configuration.md, generated from ``SETTINGS``."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        per = f" Per service: `TASKLINKR_<SERVICE>_{setting.name.upper()}`." if setting.per_service else ""
        default = f"`{setting.default}`" if setting.default not in ("", None) else "—"
        rows.append(f"| `{env_name(setting.name)}` | {default} | {setting.doc}{per} |")
    return "\n".join(rows) + "\n"
