"""Operations: the health and backlog answers."""

from __future__ import annotations

from marshmallow import Schema, fields

from services.gateway.schemas.common import _one_of

# --- operations ----------------------------------------------------------------------------------------------------


class ComponentHealthSchema(Schema):
    status = _one_of(["ok", "degraded", "unavailable"], required=True)
    database = fields.String(metadata={"description": "ok | unavailable | unknown"})
    error = fields.String()


class LaneHealthSchema(ComponentHealthSchema):
    outbox_backlog = fields.Integer(metadata={"description": "Events the service's database holds committed and not "
                                                             "yet confirmed by the broker (services that say)."})


class ServiceHealthSchema(LaneHealthSchema):
    lanes = fields.Dict(keys=fields.String(), values=fields.Nested(LaneHealthSchema), required=True, metadata={
        "description": "Each workload lane's processes (and, for a service in cells, the lane's own database) as "
                       "they answered; the service's status is the worst of them, its other fields the default "
                       "lane's."})


class HealthSchema(Schema):
    status = _one_of(["ok", "degraded"], required=True)
    broker = fields.Nested(ComponentHealthSchema, required=True)
    gateway = fields.Nested(ComponentHealthSchema, required=True,
                            metadata={"description": "The gateway's own (audit) database: writes answer 503 "
                                                     "while it is unavailable."})
    services = fields.Dict(keys=fields.String(), values=fields.Nested(ServiceHealthSchema), required=True)


class ServiceBacklogSchema(Schema):
    status = _one_of(["ok", "degraded", "unavailable"], required=True)
    outbox_backlog = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Events committed and not yet confirmed by the broker; null: the service did not say."})
    dead_letters = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Messages parked in its dead-letter queue; null: the broker has no such queue (yet)."})


class BacklogSchema(Schema):
    services = fields.Dict(keys=fields.String(), values=fields.Nested(ServiceBacklogSchema), required=True)
