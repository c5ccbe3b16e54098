"""Matching's edges: the wire form of what its RPC methods answer.

Its inputs need no loaders of their own: events are checked against their JSON Schema in ``contracts-schema/`` on
arrival (``shared.runtime.messaging.subscribe``), and the RPC methods take ids the gateway has validated. A shortlist's
own wire form, shared with the events, is ``shortlists.wire``.
"""

from __future__ import annotations

from services.matching import shortlists


def shortlist_answer(posting: dict) -> dict:
    """A posting's current shortlist with its status and how many providers were eligible."""
    shortlist = posting["shortlist"]
    return {**shortlists.wire(posting, shortlist), "status": posting["status"],
            "eligible": shortlist.get("eligible", 0), "top_k": shortlist.get("top_k")}


def free_capacity_answer(provider_id: str, centre_id: str | None, capacity: float, committed: float) -> dict:
    return {"provider_id": provider_id, "centre_id": centre_id, "capacity_hours_per_week": round(capacity, 2),
            "committed_hours_per_week": round(committed, 2),
            "free_hours_per_week": round(max(capacity - committed, 0.0), 2)}
