"""What the postings service publishes: routing keys and payloads.

Contracts: ``contracts-schema/events/postings/<routing key>.schema.json``. Payloads carry wire forms (see
``schemas``), never stored documents. It consumes matching's shortlists (``MATCHES_PROPOSED``,
``SHORTLIST_UPDATED``) into its own projection, to check invitations against them.
"""

from __future__ import annotations

TENANT_REGISTERED = "tenant.registered.v1"
POSTING_PUBLISHED = "posting.published.v1"
POSTING_UPDATED = "posting.updated.v1"
POSTING_CANCELLED = "posting.cancelled.v1"
POSTING_AWARDED = "posting.awarded.v1"
PROPOSAL_SUBMITTED = "proposal.submitted.v1"

PUBLISHES = (TENANT_REGISTERED, POSTING_PUBLISHED, POSTING_UPDATED, POSTING_CANCELLED, POSTING_AWARDED,
             PROPOSAL_SUBMITTED)

MATCHING = "matching"
MATCHES_PROPOSED = "matches.proposed.v1"
SHORTLIST_UPDATED = "shortlist.updated.v1"


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


def proposal_submitted(proposal: dict, step: dict) -> dict:
    """One offer by the provider: its first proposal or a counter to the client's terms."""
    return {
        "proposal_id": proposal["id"],
        "posting_id": proposal["posting_id"],
        "invitation_id": proposal["invitation_id"],
        "provider_id": proposal["provider_id"],
        "centre_id": proposal["centre_id"],
        "kind": "initial" if step["action"] == "proposed" else "counter",
        "step": step["step"],
        "terms": step["terms"],
        "note": step["note"],
        "submitted_at": step["at"],
    }


def posting_awarded(posting: dict, tenant: dict, proposal: dict, start_date: str) -> dict:
    """Everything contracting needs to draft the contract, so it never has to ask postings.

    ``posting``, ``tenant`` and ``proposal`` are wire forms; ``start_date`` is the agreed start.
    """
    terms = proposal["terms"]
    engagement = posting["engagement"]
    return {
        "posting": posting,
        "client": {
            "tenant_id": tenant["id"],
            "name": tenant["name"],
            "country": tenant["country"],
            "time_zone": tenant["time_zone"],
            "segment": tenant["segment"],
        },
        "provider": {"provider_id": proposal["provider_id"], "centre_id": proposal["centre_id"]},
        "terms": {
            "engagement_type": engagement["type"],
            "unit": engagement["unit"],
            "price": terms["price"],
            "hours_per_week": terms["hours_per_week"],
            "seats": posting.get("seats", 1),
            "start_date": start_date,
            "duration_weeks": posting["duration_weeks"],
        },
        "sla_requirements": posting["sla_requirements"],
        "confidentiality": posting["confidentiality"],
        "proposal": {
            "proposal_id": proposal["id"],
            "invitation_id": proposal["invitation_id"],
            "agreed_at": proposal["agreed_at"],
            "history": [
                {"step": step["step"], "action": step["action"], "by": step["by"], "at": step["at"],
                 "terms": step["terms"], "note": step["note"]}
                for step in proposal["history"]
            ],
        },
        "awarded_at": posting["awarded_at"],
    }
