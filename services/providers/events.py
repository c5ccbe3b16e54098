"""What the providers service publishes: routing keys and the ``data`` of each event.

Contracts: ``contracts-schema/events/providers/<routing key>.schema.json``. Every event is emitted through the
outbox (``uow.emit``) in the transaction that makes the change; its subject is the provider id.
"""

from __future__ import annotations

from datetime import datetime

from shared.vocabulary.times import rfc3339

from . import domain, schemas

REGISTERED = "provider.registered.v1"
UPDATED = "provider.updated.v1"
AVAILABILITY_CHANGED = "provider.availability_changed.v1"
VERIFIED = "provider.verified.v1"

PUBLISHES = (REGISTERED, UPDATED, AVAILABILITY_CHANGED, VERIFIED)
CONSUMES: tuple[str, ...] = ()


def registered(profile: dict) -> dict:
    return {"provider": schemas.to_wire(profile)}


def updated(profile: dict, changed: list[str]) -> dict:
    return {"provider": schemas.to_wire(profile), "changed": list(changed)}


def availability_changed(profile: dict) -> dict:
    view = domain.availability_view(profile)
    return {
        "provider_id": profile["id"],
        "availability": schemas.availability_to_wire(view["availability"]),
        "capacity_hours_per_week": view["capacity_hours_per_week"],
        "delivery_centres": view["delivery_centres"],
        "version": profile["version"],
    }


def verified(provider_id: str, verified_at: datetime, verified_by: str) -> dict:
    return {"provider_id": provider_id, "verified_at": rfc3339(verified_at), "verified_by": verified_by}
