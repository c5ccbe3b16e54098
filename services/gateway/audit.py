"""The audit trail: every state-changing request and inbound command, who made it, when, what it named and how
it ended.

It lives in the gateway's own MongoDB database (``tasklinkr_gateway``, collection ``audit``): the gateway is where
every HTTP request is seen, and no service reads another's database. A record names the principal and the id of
its key (never the key), the time in UTC, the operation, the resource ids of the path and of what was created,
the HTTP status and the correlation id that leads to every log line and event of the request. Request bodies are
not recorded (they may carry personal data); the services' events carry what changed.

The guarantee: the record is written *before* the request is passed on (write-ahead). When that write fails the
request is refused with 503 and nothing is changed, so no state change ever happens without its record. Its
outcome is written afterwards; if that second write fails (or the gateway dies in between) the record keeps
``outcome: unknown`` and the gateway logs the outcome with the record id. Refused attempts that got as far as a
valid key (403, 404, 409, 422, …) are recorded too; requests without a valid key (401) or over the key's budget
(429) are not, so a flood cannot fill the trail.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from nameko.extensions import DependencyProvider
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database as MongoDatabase
from pymongo.errors import PyMongoError

from services.gateway.auth import Principal
from services.gateway.dependencies import HEALTH_TIMEOUT_SECONDS
from services.gateway.routes import CLIENT, Route
from shared.runtime.persistence import connect
from shared.tools.tenantsweep import Removal, removal_record
from shared.vocabulary.errors import DomainError, Unavailable, ValidationFailed
from shared.vocabulary.times import rfc3339

log = logging.getLogger(__name__)

AUDIT = "audit"
# An audit write that takes longer refuses the request (503) rather than holding it.
AUDIT_WRITE_SECONDS = 5.0
# What a created resource is called in ``resource_ids`` when an answer nests it (``{"tenant": {...}}``).
_NESTED_RESULTS = ("tenant", "provider", "key")


def ensure_indexes(db: MongoDatabase) -> None:
    """Each filter pages newest first: an index per filter, ending in ``_id`` (time order)."""
    for field in ("tenant_id", "operation", "key_id", "actor", "resources", "correlation_id"):
        db[AUDIT].create_index([(field, ASCENDING), ("_id", DESCENDING)], name=field)


def outcome_of(status: int | None) -> str:
    if status is None:
        return "unknown"
    return "succeeded" if status < 400 else "failed"


def created_ids(body: Any) -> dict[str, str]:
    """The ids an answer names: its own ``id`` and the ``id`` of a nested tenant, provider or key (a command's
    result: the ids it names)."""
    if not isinstance(body, dict):
        return {}
    found = dict(body.get("result_ids") or {})
    if isinstance(body.get("id"), str):
        found["result_id"] = body["id"]
    for name in _NESTED_RESULTS:
        nested = body.get(name)
        if isinstance(nested, dict) and isinstance(nested.get("id"), str):
            found[f"{name}_id"] = nested["id"]
    return found


def new_record(route: Route, principal: Principal, path_values: dict[str, str], correlation_id: str,
               now: datetime) -> dict:
    tenant_id = principal.tenant_id if principal.kind == CLIENT else path_values.get("tenant_id")
    return {
        "_id": ObjectId(),
        "at": now,
        "finished_at": None,
        "actor": principal.actor,
        "principal": {"kind": principal.kind, "role": principal.role, "tenant_id": principal.tenant_id,
                      "provider_id": principal.provider_id},
        "key_id": principal.key_id,
        "tenant_id": tenant_id,
        "operation": route.operation,
        "method": route.method,
        "path": route.path,
        "resource_ids": dict(path_values),
        "resources": sorted(set(path_values.values())),
        "status": None,
        "outcome": "unknown",
        "error": None,
        "correlation_id": correlation_id,
    }


def to_wire(record: dict) -> dict:
    wire = {key: value for key, value in record.items() if key not in ("_id", "resources")}
    wire["id"] = str(record["_id"])
    wire["at"] = rfc3339(record["at"])
    wire["finished_at"] = rfc3339(record["finished_at"]) if record.get("finished_at") else None
    return wire


def query_of(filters: dict) -> dict:
    """The MongoDB filter for the audit query's parameters (already checked by the route's query schema)."""
    query: dict = {}
    for field in ("tenant_id", "operation", "key_id", "actor", "correlation_id", "outcome"):
        if filters.get(field):
            query[field] = filters[field]
    if filters.get("resource_id"):
        query["resources"] = filters["resource_id"]
    moments = {}
    if filters.get("since"):
        moments["$gte"] = filters["since"]
    if filters.get("until"):
        moments["$lt"] = filters["until"]
    if moments:
        query["at"] = moments
    if filters.get("cursor"):
        try:
            query["_id"] = {"$lt": ObjectId(filters["cursor"])}
        except (InvalidId, TypeError):
            raise ValidationFailed("The request is not valid.", {"cursor": ["Not a cursor this API issued."]}) \
                from None
    return query


def command_ids(data: Any) -> dict[str, str]:
    """The ids a command or its result names (``posting_id``, ``provider_id``, …)."""
    if not isinstance(data, dict):
        return {}
    return {name: value for name, value in data.items() if name.endswith("_id") and isinstance(value, str)}


def audited_command(command_type: str) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Put an inbound command handler (``method(self, sender_id, data, command_id)``) on the audit trail.

    The same guarantee as for HTTP: the record is written before the handler runs. When it cannot be, the handler
    does not run and ``Unavailable`` (transient) sends the command back for a later attempt. The principal is the
    sender's broker user (a tenant's or a provider's, no key id); a redelivered command gets a record per attempt,
    each naming the command id.
    """

    def decorate(method: Callable[..., dict]) -> Callable[..., dict]:
        route = Route(command_type, "AMQP", f"{{sender_id}}.{command_type}", "", who=(CLIENT,), tag="commands")

        @functools.wraps(method)
        def handler(self: Any, sender_id: str, data: dict, command_id: str) -> dict:
            named = {**command_ids(data), "command_id": command_id}
            principal = (Principal.provider(sender_id) if sender_id.startswith("prv_")
                         else Principal(CLIENT, tenant_id=sender_id))
            record = self.audit.begin(route, principal, named, self.tracing)
            try:
                result = method(self, sender_id, data, command_id)
            except DomainError as exc:
                self.audit.finish(record, exc.status, exc.to_dict())
                raise
            except Exception:
                self.audit.finish(record, 500, {"error": "internal_error"})
                raise
            self.audit.finish(record, 200, {"result_ids": command_ids(result)})
            return result

        return handler

    return decorate


def refused_command_record(delivery: dict, reason: str, now: datetime) -> dict:
    """The whole record of an inbound message refused before any handler ran: who sent it (the broker-validated
    ``user_id``, or what the message claimed when it is no tenant's or provider's), what it named, and why. Nothing
    changed, so it is written once, finished."""
    sender = delivery["sender_id"]
    principal = (Principal.provider(sender) if (sender or "").startswith("prv_")
                 else Principal(CLIENT, tenant_id=sender) if sender else None)
    # The route names whoever built it (an exchange or a queue of theirs) when the message names no sender.
    named = {**delivery.get("route", {}), **({"command_id": delivery["command_id"]} if delivery["command_id"] else {})}
    return {
        "_id": ObjectId(),
        "at": now,
        "finished_at": now,
        "actor": principal.actor if principal else f"unverified:{delivery['user_id'] or 'no user_id'}",
        "principal": {"kind": principal.kind if principal else "unverified", "role": None,
                      "tenant_id": principal.tenant_id if principal else None,
                      "provider_id": principal.provider_id if principal else None},
        "key_id": None,
        "tenant_id": principal.tenant_id if principal else None,
        "operation": delivery["command_type"] or "(none)",
        "method": "AMQP",
        "path": delivery["routing_key"],
        "resource_ids": named,
        "resources": sorted(set(named.values())),
        "status": 400 if delivery["answer"] else 403,
        "outcome": "failed",
        "error": f"command_refused: {reason}" if delivery["answer"] else f"command_refused, not answered: {reason}",
        "correlation_id": delivery["correlation_id"] or "",
    }


class AuditTrail(DependencyProvider):
    """The gateway's ``audit`` collection; each worker gets an ``AuditLog``."""

    def setup(self) -> None:
        config = self.container.config
        self.client = connect(config.get("MONGO_URI", ""), app_name="tasklinkr-gateway")
        self.db = self.client[config.get("MONGO_DATABASE") or "tasklinkr_gateway"]
        ensure_indexes(self.db)

    def stop(self) -> None:
        self.client.close()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx) -> AuditLog:
        return AuditLog(self.db)


class AuditLog:
    def __init__(self, db: MongoDatabase):
        self.collection = db[AUDIT]

    def begin(self, route: Route, principal: Principal, path_values: dict[str, str], correlation_id: str) -> dict:
        """Write the record before the request goes on; 503 (nothing done) when it cannot be written."""
        record = new_record(route, principal, path_values, correlation_id, datetime.now(UTC))
        try:
            with pymongo.timeout(AUDIT_WRITE_SECONDS):
                self.collection.insert_one(record)
        except PyMongoError as exc:
            log.error("audit: could not record %s by %s; refused", route.operation, principal.actor,
                      extra={"correlation_id": correlation_id})
            raise Unavailable("The audit trail cannot be written just now, so nothing was changed; retry later.",
                              {"retry_after_seconds": 5}) from exc
        return record

    def refused_command(self, delivery: dict, reason: str) -> None:
        """Record an inbound message refused before its handler; ``Unavailable`` when that cannot be written (the
        message is then retried, and parked after the last attempt)."""
        record = refused_command_record(delivery, reason, datetime.now(UTC))
        try:
            with pymongo.timeout(AUDIT_WRITE_SECONDS):
                self.collection.insert_one(record)
        except PyMongoError as exc:
            log.error("audit: could not record a refused inbound message (%s)", reason,
                      extra={"correlation_id": record["correlation_id"]})
            raise Unavailable("The audit trail cannot be written just now.", {"retry_after_seconds": 5}) from exc

    def swept(self, removal: Removal) -> None:
        """Record what the tenant sweep removed (already done): never raises, the log has it when this fails."""
        try:
            with pymongo.timeout(AUDIT_WRITE_SECONDS):
                self.collection.insert_one(removal_record(removal, datetime.now(UTC)))
        except PyMongoError:
            log.error("audit: the sweep's removal of %s %s (%s) not recorded", removal.kind, removal.name,
                      removal.owner, exc_info=True)

    def finish(self, record: dict, status: int, body: Any) -> None:
        """Add the outcome; never raises (the record then says ``unknown`` and the log has the outcome)."""
        created = created_ids(body) if status < 400 else {}
        error = body.get("error") if status >= 400 and isinstance(body, dict) else None
        change: dict = {"$set": {"status": status, "outcome": outcome_of(status), "error": error,
                                 "finished_at": datetime.now(UTC),
                                 **{f"resource_ids.{name}": value for name, value in created.items()}}}
        if created:
            change["$addToSet"] = {"resources": {"$each": sorted(set(created.values()))}}
        if record["tenant_id"] is None and "tenant_id" in created:
            change["$set"]["tenant_id"] = created["tenant_id"]
        try:
            with pymongo.timeout(AUDIT_WRITE_SECONDS):
                self.collection.update_one({"_id": record["_id"]}, change)
        except PyMongoError:
            log.error("audit: outcome of record %s not recorded: %s answered %s", record["_id"],
                      record["operation"], status, extra={"correlation_id": record["correlation_id"]},
                      exc_info=True)

    def health(self) -> dict:
        """The gateway's own database, as /health reports it: while it does not answer, every write is refused."""
        try:
            with pymongo.timeout(HEALTH_TIMEOUT_SECONDS):
                self.collection.database.command("ping")
        except PyMongoError as exc:
            log.warning("health: the audit database does not answer: %s", exc)
            return {"status": "unavailable", "database": "unavailable", "error": type(exc).__name__}
        return {"status": "ok", "database": "ok"}

    def page(self, filters: dict, limit: int) -> dict:
        rows = list(self.collection.find(query_of(filters)).sort("_id", DESCENDING).limit(limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [to_wire(row) for row in rows], "next_cursor": str(rows[-1]["_id"]) if more else None}
