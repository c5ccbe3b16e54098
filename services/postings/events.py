"""What the postings service publishes: routing keys and payloads.

Contracts: ``contracts-schema/events/postings/<routing key>.schema.json``. Payloads carry wire forms (see
``schemas``), never stored documents. The service consumes no events yet.
"""

from __future__ import annotations

TENANT_REGISTERED = "tenant.registered.v1"
POSTING_PUBLISHED = "posting.published.v1"
POSTING_UPDATED = "posting.updated.v1"
POSTING_CANCELLED = "posting.cancelled.v1"

PUBLISHES = (TENANT_REGISTERED, POSTING_PUBLISHED, POSTING_UPDATED, POSTING_CANCELLED)


def tenant_registered(tenant: dict) -> dict:
    return {"tenant": tenant}


def posting_published(posting: dict) -> dict:
    return {"posting": posting}


def posting_updated(posting: dict, changed: list[str]) -> dict:
    return {"posting": posting, "changed": list(changed)}


def posting_cancelled(posting: dict) -> dict:
    return {
        "posting_id": posting["id"],
        "reason": posting["cancellation_reason"],
        "cancelled_at": posting["cancelled_at"],
    }
