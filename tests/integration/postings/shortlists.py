"""Matching's shortlist events, built and published as matching publishes them (envelope, exchange, headers).

Used where the tests need a shortlist without running matching's ranking: the postings integration tests, and the
end-to-end award test while matching does not yet produce shortlists for its posting.
"""

from __future__ import annotations

from kombu import Connection, Exchange, Producer

from shared.runtime import envelope as envelopes

MATCHES_PROPOSED = "matches.proposed.v1"
SHORTLIST_UPDATED = "shortlist.updated.v1"


def candidate(provider_id: str, rank: int, score: str, centre_id: str | None = None) -> dict:
    return {
        "provider_id": provider_id,
        "centre_id": centre_id,
        "rank": rank,
        "score": score,
        "breakdown": {"required_skills": score, "rate": "1.0000"},
        "reasons": [f"Ranked {rank} with score {score}."],
    }


def shortlist_event(posting: dict, version: int, candidates: list[dict], *, routing_key: str = MATCHES_PROPOSED,
                    lane: str = "smb") -> dict:
    shortlist = {"version": version, "computed_at": envelopes.rfc3339(envelopes.utc_now()),
                 "candidates": candidates}
    data = {"posting_id": posting["id"], "tenant_id": posting["tenant_id"], "shortlist": shortlist}
    if routing_key == SHORTLIST_UPDATED:
        data["previous_version"] = version - 1
        data["changes"] = {"added": [c["provider_id"] for c in candidates], "removed": [], "moved": []}
    return envelopes.build(service="matching", routing_key=routing_key, subject=posting["id"], data=data,
                           lane=lane, tenant=posting["tenant_id"])


def publish(amqp_uri: str, event: dict) -> None:
    """Publish as matching's relay does: its topic exchange, the routing key, confirmed and mandatory."""
    routing_key = envelopes.routing_key_of(event)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        exchange = Exchange("matching.events", type="topic", durable=True)
        Producer(connection.channel()).publish(
            event, exchange=exchange, routing_key=routing_key, serializer="json", mandatory=True,
            headers=envelopes.amqp_headers(event), declare=[exchange], delivery_mode=2,
        )
