"""The event envelope: CloudEvents 1.0 attribute names around a versioned payload.

``type`` is ``tasklinkr.<service>.<entity>.<verb>.v<N>`` and the AMQP routing key is ``<entity>.<verb>.v<N>``.
The tenant and the workload lane travel both in the envelope and as AMQP headers.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from shared.vocabulary.terms import Lane
from shared.vocabulary.times import rfc3339, utc_now

SPECVERSION = "1.0"
SCHEMA_BASE = "urn:tasklinkr:contracts-schema:events"
_ROUTING_KEY = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*\.v[1-9][0-9]*$")


def event_exchange(service: str) -> str:
    """nameko's event exchange name for a producing service."""
    return f"{service}.events"


def cloudevents_type(service: str, routing_key: str) -> str:
    return f"tasklinkr.{service}.{routing_key}"


def dataschema(service: str, routing_key: str) -> str:
    return f"{SCHEMA_BASE}/{service}/{routing_key}"


def schema_path(service: str, routing_key: str) -> str:
    """Where the JSON Schema of an event lives, relative to the repository root."""
    return f"contracts-schema/events/{service}/{routing_key}.schema.json"


def build(
    *,
    service: str,
    routing_key: str,
    subject: str,
    data: dict,
    lane: str,
    tenant: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> dict:
    if not _ROUTING_KEY.match(routing_key):
        raise ValueError(f"event type {routing_key!r} does not follow <entity>.<verb>.v<N>")
    event_id = event_id or str(uuid.uuid4())
    envelope = {
        "specversion": SPECVERSION,
        "id": event_id,
        "type": cloudevents_type(service, routing_key),
        "source": f"/tasklinkr/{service}",
        "subject": subject,
        "time": rfc3339(time or utc_now()),
        "datacontenttype": "application/json",
        "dataschema": dataschema(service, routing_key),
        "lane": Lane(lane).value,  # the lane rule: shared.vocabulary.lane_of
        "correlationid": correlation_id or event_id,
        "causationid": causation_id or event_id,
        "data": data,
    }
    if tenant:
        envelope["tenantid"] = tenant
    return envelope


def routing_key_of(envelope: dict) -> str:
    """``tasklinkr.postings.posting.published.v1`` -> ``posting.published.v1``."""
    return envelope["type"].split(".", 2)[2]


def amqp_headers(envelope: dict) -> dict:
    headers = {
        "ce-id": envelope["id"],
        "ce-type": envelope["type"],
        "lane": envelope["lane"],
        # nameko turns "nameko.<key>" headers into worker context data, so the correlation id reaches the
        # consuming worker and every RPC call it makes.
        "nameko.correlation_id": envelope["correlationid"],
    }
    if envelope.get("tenantid"):
        headers["tenant"] = envelope["tenantid"]
    return headers
