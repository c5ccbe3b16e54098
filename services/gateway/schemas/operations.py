"""Operations: the health and backlog answers."""

from __future__ import annotations

from marshmallow import Schema, fields

from services.gateway.schemas.common import _one_of

# --- operations ----------------------------------------------------------------------------------------------------


class ComponentHealthSchema(Schema):
    status = _one_of(["ok", "degraded", "unavailable"], required=True)
    database = fields.String(metadata={"description": "ok | unavailable | unknown"})
    error = fields.String()


class HealthSchema(Schema):
    status = _one_of(["ok", "degraded"], required=True)
    broker = fields.Nested(ComponentHealthSchema, required=True)
    gateway = fields.Nested(ComponentHealthSchema, required=True,
                            metadata={"description": "The gateway's own (audit) database: writes answer 503 "
                                                     "while it is unavailable."})
    services = fields.Dict(keys=fields.String(), values=fields.Nested(ComponentHealthSchema), required=True)


class ServiceBacklogSchema(Schema):
    status = _one_of(["ok", "degraded", "unavailable"], required=True)
    outbox_backlog = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Events committed and not yet confirmed by the broker; null: the service did not say."})
    dead_letters = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Messages parked in its dead-letter queue; null: the broker has no such queue (yet)."})


class BacklogSchema(Schema):
    services = fields.Dict(keys=fields.String(), values=fields.Nested(ServiceBacklogSchema), required=True)
