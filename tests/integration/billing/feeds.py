"""The events billing consumes, built from their contracts' examples with fresh ids and published as their
producers publish them (exchange, envelope, headers), so billing is tested without running the others."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime

from kombu import Connection, Exchange, Producer

from shared.runtime import contracts
from shared.runtime import envelope as envelopes


def hex_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _example(producer: str, routing_key: str) -> dict:
    return copy.deepcopy(json.loads(contracts.event_schema_path(producer, routing_key).read_text())["examples"][0])


def _event(producer: str, routing_key: str, subject: str, data: dict, tenant: str, lane: str = "smb") -> dict:
    event = envelopes.build(service=producer, routing_key=routing_key, subject=subject, data=data, lane=lane,
                            tenant=tenant)
    assert contracts.errors(event) == [], contracts.errors(event)
    return event


def tenant_registered(tenant_id: str, country: str, time_zone: str, name: str = "Praxis Weber", **legal) -> dict:
    data = _example("postings", "tenant.registered.v1")["data"]
    data["tenant"].update(id=tenant_id, country=country, time_zone=time_zone, name=name, **legal)
    return _event("postings", "tenant.registered.v1", tenant_id, data, tenant_id)


def provider_registered(provider_id: str, country: str, time_zone: str, **legal) -> dict:
    data = _example("providers", "provider.registered.v1")["data"]
    data["provider"].update(id=provider_id, country=country, time_zone=time_zone, display_name="Ana Nowak", **legal)
    return _event("providers", "provider.registered.v1", provider_id, data, None)


def contract(*, tenant_id: str, provider_id: str, engagement: str, price: str, start: date,
             end: date | None = None, currency: str = "EUR", hours_per_week: int | None = 20,
             milestones: list[tuple[str, str]] = (), cycle: str = "monthly", payment_due_days: int = 30,
             category: str = "administrative_support", model: str = "virtual_assistant") -> dict:
    """A contract in wire form, as contract.activated.v1 carries it."""
    wire = _example("contracting", "contract.activated.v1")["data"]["contract"]
    wire.update(id=hex_id("ctr"), tenant_id=tenant_id, provider_id=provider_id, posting_id=hex_id("pst"),
                proposal_id=hex_id("prp"), start_date=start.isoformat(),
                end_date=end.isoformat() if end else None, category=category, model=model,
                milestones=[{"title": title, "due_date": None, "amount": {"amount": amount, "currency": currency}}
                            for title, amount in milestones])
    wire["terms"].update(engagement_type=engagement, price={"amount": price, "currency": currency},
                         hours_per_week=hours_per_week, billing_cycle=cycle, payment_due_days=payment_due_days,
                         unit="ticket" if engagement == "per_unit" else None)
    for sla in wire["slas"]:
        sla["credit"]["cap"] = {"amount": "50.00", "currency": currency}
    for signature in wire["signatures"]:
        signature["party_id"] = tenant_id if signature["party"] == "client" else provider_id
    return wire


def contract_activated(wire: dict, lane: str = "smb") -> dict:
    """The contract's activation, in ``lane`` (its client's segment, as contracting publishes it)."""
    return _event("contracting", "contract.activated.v1", wire["id"], {"contract": {**wire, "lane": lane}},
                  wire["tenant_id"], lane)


def sla_breached(wire: dict, window_start: datetime, window_end: datetime, credit: str) -> dict:
    data = _example("contracting", "sla.breached.v1")["data"]
    data.update(contract_id=wire["id"], tenant_id=wire["tenant_id"], provider_id=wire["provider_id"],
                credit={"amount": credit, "currency": wire["terms"]["price"]["currency"]},
                window_fees={"amount": "100.00", "currency": wire["terms"]["price"]["currency"]},
                window={"start": envelopes.rfc3339(window_start), "end": envelopes.rfc3339(window_end)})
    data["sla"]["id"] = wire["slas"][0]["id"]
    return _event("contracting", "sla.breached.v1", wire["id"], data, wire["tenant_id"])


def contract_ended(wire: dict, routing_key: str, last_day: date) -> dict:
    data = _example("contracting", routing_key)["data"]
    ended = {**wire, "status": "completed" if routing_key == "contract.completed.v1" else "terminated"}
    moment = envelopes.rfc3339(datetime(last_day.year, last_day.month, last_day.day, 12, tzinfo=UTC))
    ended["completed_at" if ended["status"] == "completed" else "terminated_at"] = moment
    data["contract"] = ended
    if ended["status"] == "completed":
        data["completed_at"] = moment
    else:
        data.update(effective_date=last_day.isoformat(), terminated_at=moment)
    return _event("contracting", routing_key, wire["id"], data, wire["tenant_id"])


def publish(amqp_uri: str, event: dict) -> None:
    """Publish as the producer's relay does: its topic exchange, the routing key, confirmed and mandatory."""
    producer = event["source"].rsplit("/", 1)[-1]
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        exchange = Exchange(f"{producer}.events", type="topic", durable=True)
        Producer(connection.channel()).publish(
            event, exchange=exchange, routing_key=envelopes.routing_key_of(event), serializer="json",
            mandatory=True, headers=envelopes.amqp_headers(event), declare=[exchange], delivery_mode=2,
        )


def contract_amended(wire: dict, **terms) -> dict:
    """The contract at its next version with ``terms`` changed (hours_per_week, price, ...)."""
    data = _example("contracting", "contract.amended.v1")["data"]
    amended = {**wire, "version": wire["version"] + 1, "terms": {**wire["terms"], **terms}}
    data["contract"] = amended
    data["amendment"].update(version=amended["version"], previous_version=wire["version"], changes=terms,
                             previous={k: wire["terms"][k] for k in terms},
                             effective_date=datetime.now(UTC).date().isoformat())
    return _event("contracting", "contract.amended.v1", wire["id"], data, wire["tenant_id"])
