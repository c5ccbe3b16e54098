"""Whether this process's own broker and database connections work: ``tasklinkr probe <service>``.

Kubernetes runs it as a service's readiness probe (deploy/kubernetes): it opens a connection with the settings the
service itself reads, so it fails on a wrong secret, an unreachable broker or a replica set without a primary,
and says which.
"""

from __future__ import annotations

from kombu import Connection
from pymongo import MongoClient

from shared import config as settings

TIMEOUT_SECONDS = 5.0


def broker(amqp_uri: str, timeout: float = TIMEOUT_SECONDS) -> str:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.connect()
    except Exception as exc:  # noqa: BLE001 - every failure is the answer, reported by its text
        return f"failed: {exc}"
    return "ok"


def database(mongo_uri: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """``ok`` once a writable primary answers (the services write)."""
    if not mongo_uri:
        return "failed: no database configured (TASKLINKR_MONGO_URI)"
    client = MongoClient(mongo_uri, serverSelectionTimeoutMS=int(timeout * 1000), connectTimeoutMS=int(timeout * 1000))
    try:
        # Sent to the primary of a replica set (none: server selection times out); a direct connection to a
        # secondary answers, but not as a writable primary.
        if not client.admin.command("hello").get("isWritablePrimary"):
            return "failed: no writable primary"
    except Exception as exc:  # noqa: BLE001
        return f"failed: {exc}"
    finally:
        client.close()
    return "ok"


def probe(service: str, environ: dict | None = None) -> dict[str, str]:
    report = {"broker": broker(settings.get("amqp_uri", service, environ))}
    if service in settings.DATA_SERVICES:
        report["database"] = database(settings.get("mongo_uri", service, environ))
    return report
