"""``tasklinkr probe <service>``: is this service process up, and can it reach its broker and its database?

Each check connects with the service's own settings (``amqp_uri``, ``mongo_uri``, TLS), so a wrong password, a
certificate the service does not trust or a database that refuses its user fails the probe, not only a dead
process. Bounded: every check gives up after a few seconds.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from kombu import Connection
from pymongo import MongoClient

from shared import config as settings
from shared.metrics import port_for

TIMEOUT_SECONDS = 5


def _process(service: str) -> dict:
    port = port_for(service)
    if port is None:
        return {"status": "skipped", "reason": "metrics are off"}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT_SECONDS) as answer:
        answer.read(1)
    return {"status": "ok"}


def _http(service: str) -> dict:
    """The gateway's HTTP server answers (200, or 503 while something behind it is down: it still serves)."""
    if service != "gateway":
        return {"status": "skipped", "reason": "no HTTP server"}
    port = settings.get("gateway_address").rsplit(":", 1)[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=TIMEOUT_SECONDS):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
    return {"status": "ok"}


def _broker(service: str) -> dict:
    with Connection(settings.get("amqp_uri", service), connect_timeout=TIMEOUT_SECONDS) as connection:
        connection.ensure_connection(max_retries=1)
        connection.channel().close()
    return {"status": "ok"}


def _database(service: str) -> dict:
    uri = settings.get("mongo_uri", service)
    if not uri:
        return {"status": "skipped", "reason": "no mongo_uri (embedded database)"}
    with MongoClient(uri, serverSelectionTimeoutMS=TIMEOUT_SECONDS * 1000) as client:
        database = client[settings.get("mongo_database", service)]
        # A read of the service's own collection: proves the user may read its database, not only log in.
        database["outbox"].find_one({}, {"_id": 1})
    return {"status": "ok"}


def probe(service: str) -> dict:
    if service not in settings.SERVICES:
        raise ValueError(f"unknown service {service!r}")
    checks = {}
    for name, check in (("process", _process), ("http", _http), ("broker", _broker), ("database", _database)):
        try:
            checks[name] = check(service)
        except Exception as exc:  # any failure is a failed check, reported by kind
            checks[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
    healthy = all(check["status"] in ("ok", "skipped") for check in checks.values())
    return {"service": service, "status": "ok" if healthy else "failed", **checks}
