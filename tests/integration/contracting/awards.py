"""Postings' award events, built and published as postings publishes them (its exchange, envelope, headers), so
contracting can be tested without running postings. The data is the contract's own example with fresh ids."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date

from kombu import Connection, Exchange, Producer

from shared.runtime import contracts
from shared.runtime import envelope as envelopes

POSTING_AWARDED = "posting.awarded.v1"
_SCHEMA = contracts.event_schema_path("postings", POSTING_AWARDED)


def _hex() -> str:
    return uuid.uuid4().hex


def award_event(*, start: date, provider_id: str | None = None, tenant_id: str | None = None,
                sla_window: str = "daily", price: str = "13.25", hours_per_week: int = 20,
                duration_weeks: int | None = 26, engagement: str = "hourly") -> dict:
    data = copy.deepcopy(json.loads(_SCHEMA.read_text())["examples"][0]["data"])
    tenant_id = tenant_id or f"ten_{_hex()}"
    posting_id = f"pst_{_hex()}"
    data["posting"].update(id=posting_id, tenant_id=tenant_id)
    data["client"]["tenant_id"] = tenant_id
    data["provider"]["provider_id"] = provider_id or f"prv_{_hex()}"
    data["proposal"]["proposal_id"] = data["posting"]["awarded_proposal_id"] = f"prp_{_hex()}"
    data["terms"].update(price={"amount": price, "currency": "USD"}, hours_per_week=hours_per_week,
                         start_date=start.isoformat(), duration_weeks=duration_weeks, engagement_type=engagement)
    requirement = {"metric": "first_response_minutes", "target": "60", "direction": "at_most", "window": sla_window}
    data["sla_requirements"] = [requirement]
    data["posting"]["sla_requirements"] = [requirement]
    event = envelopes.build(service="postings", routing_key=POSTING_AWARDED, subject=posting_id, data=data,
                            lane="smb", tenant=tenant_id)
    assert contracts.errors(event) == []
    return event


def publish(amqp_uri: str, event: dict) -> None:
    """Publish as postings' relay does: its topic exchange, the routing key, confirmed and mandatory."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        exchange = Exchange("postings.events", type="topic", durable=True)
        Producer(connection.channel()).publish(
            event, exchange=exchange, routing_key=POSTING_AWARDED, serializer="json", mandatory=True,
            headers=envelopes.amqp_headers(event), declare=[exchange], delivery_mode=2,
        )
