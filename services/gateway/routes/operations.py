"""The routes of operations: backlog, health and this API's OpenAPI document."""

from __future__ import annotations

from services.gateway import schemas
from services.gateway.routes.common import _AUTH, _UPSTREAM, OPERATOR, Route

OPERATIONS: tuple[Route, ...] = (
    Route(
        "operations_backlog", "GET", "/v1/operations/backlog",
        "Each service's outbox backlog and dead-letter count", who=(OPERATOR,), tag="operations",
        response=schemas.BacklogSchema, errors=(*_AUTH, *_UPSTREAM),
        description="Read-only: each service counts its own pending outbox events (over RPC, as `/health` asks "
        "it), the broker the messages parked in each dead-letter queue. `tasklinkr dlq` lists and replays them.",
    ),
    Route(
        "openapi_document", "GET", "/v1/openapi.json", "This API's OpenAPI 3.0.3 document",
        who=(), tag="operations",
    ),
    Route(
        "health", "GET", "/health", "Health of the broker, the gateway's database, every service and its database",
        who=(), tag="operations", response=schemas.HealthSchema, errors=(503,),
        description="200 when everything answers, 503 (same body) otherwise.",
    ),
)
