"""What matching publishes and consumes: routing keys and payloads.

Contracts: ``contracts-schema/events/matching/<routing key>.schema.json``. Payloads carry a shortlist's wire form
(``shortlists.wire``), never the stored document with its reasons and breakdowns cut for re-ranking.
It consumes every provider event, postings' tenants and postings, and contracting's contract and SLA facts (the
catalog, ``contracts-schema/catalog.json``, lists the handler of each).
"""

from __future__ import annotations

from services.matching import shortlists

MATCHES_PROPOSED = "matches.proposed.v1"
SHORTLIST_UPDATED = "shortlist.updated.v1"

PUBLISHES = (MATCHES_PROPOSED, SHORTLIST_UPDATED)

PROVIDERS = "providers"
PROVIDER_REGISTERED = "provider.registered.v1"
PROVIDER_UPDATED = "provider.updated.v1"
PROVIDER_AVAILABILITY_CHANGED = "provider.availability_changed.v1"
PROVIDER_VERIFIED = "provider.verified.v1"

POSTINGS = "postings"
TENANT_REGISTERED = "tenant.registered.v1"
POSTING_PUBLISHED = "posting.published.v1"
POSTING_UPDATED = "posting.updated.v1"
POSTING_CANCELLED = "posting.cancelled.v1"
POSTING_AWARDED = "posting.awarded.v1"

CONTRACTING = "contracting"
CONTRACT_ACTIVATED = "contract.activated.v1"
CONTRACT_AMENDED = "contract.amended.v1"
CONTRACT_COMPLETED = "contract.completed.v1"
CONTRACT_TERMINATED = "contract.terminated.v1"
SLA_MET = "sla.met.v1"
SLA_BREACHED = "sla.breached.v1"


def matches_proposed(posting: dict, shortlist: dict) -> dict:
    return shortlists.wire(posting, shortlist)


def shortlist_updated(posting: dict, before: dict | None, after: dict) -> dict:
    return {**shortlists.wire(posting, after), "previous_version": after["version"] - 1,
            "changes": shortlists.changes(before, after)}
