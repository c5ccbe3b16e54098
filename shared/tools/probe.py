"""Whether this service process is up and its own broker and database connections work: ``tasklinkr probe
<service>``.

Docker compose runs it as every service's health check and Kubernetes as its readiness probe (deploy/). It
connects with the settings the service itself reads, so it fails on a wrong secret, a certificate the service does
not trust, an unreachable broker, a replica set without a primary or a database that refuses the service's user,
and says which. It also asks the process itself: its metrics endpoint (and the gateway's HTTP server) must answer.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from kombu import Connection
from pymongo import MongoClient

from shared.runtime import config as settings
from shared.runtime.metrics import port_for

TIMEOUT_SECONDS = 5.0


def process(service: str, environ: dict | None = None, timeout: float = TIMEOUT_SECONDS) -> str:
    port = port_for(service, environ)
    if port is None:
        return "skipped: metrics are off"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
            answer.read(1)
    except Exception as exc:  # noqa: BLE001 - every failure is the answer, reported by its text
        return f"failed: metrics endpoint :{port}: {exc}"
    return "ok"


def http(address: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """The gateway's HTTP server answers: 200, or 503 while something behind it is down (it still serves)."""
    port = address.rsplit(":", 1)[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            return f"failed: /health answered {exc.code}"
    except Exception as exc:  # noqa: BLE001
        return f"failed: {exc}"
    return "ok"


def broker(amqp_uri: str, timeout: float = TIMEOUT_SECONDS) -> str:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.connect()
            connection.channel().close()
    except Exception as exc:  # noqa: BLE001
        return f"failed: {exc}"
    return "ok"


def database(mongo_uri: str, database_name: str = "", timeout: float = TIMEOUT_SECONDS) -> str:
    """``ok`` once a writable primary answers (the services write) and lets the service read its own database."""
    if not mongo_uri:
        return "failed: no database configured (TASKLINKR_MONGO_URI)"
    client = MongoClient(mongo_uri, serverSelectionTimeoutMS=int(timeout * 1000), connectTimeoutMS=int(timeout * 1000))
    try:
        # Sent to the primary of a replica set (none: server selection times out); a direct connection to a
        # secondary answers, but not as a writable primary.
        if not client.admin.command("hello").get("isWritablePrimary"):
            return "failed: no writable primary"
        if database_name:  # a user the database refuses fails here, not at the service's first write
            client[database_name]["outbox"].find_one({}, {"_id": 1})
    except Exception as exc:  # noqa: BLE001
        return f"failed: {exc}"
    finally:
        client.close()
    return "ok"


def probe(service: str, environ: dict | None = None) -> dict[str, str]:
    def setting(name: str):
        return settings.get(name, service, environ)

    report = {"process": process(service, environ), "broker": broker(setting("amqp_uri"))}
    if service == "gateway":
        report["http"] = http(setting("gateway_address"))
    if service in settings.DATA_SERVICES:
        report["database"] = database(setting("mongo_uri"), setting("mongo_database"))
    return report


def healthy(report: dict[str, str]) -> bool:
    return all(value == "ok" or value.startswith("skipped") for value in report.values())
