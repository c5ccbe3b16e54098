"""Matching: keeps its own read model of providers, tenants and open postings from their events.

Ranking and shortlists build on this model (issue 3); here it consumes every event of the first slice.
"""

from __future__ import annotations

from services.matching import repository
from services.matching.repository import POSTINGS, PROVIDERS, TENANTS
from shared.errors import NotFound
from shared.messaging import subscribe
from shared.persistence import Database
from shared.rpc import rpc
from shared.tracing import Tracing


class MatchingService:
    name = "matching"

    store = Database(ensure_indexes=repository.ensure_indexes)
    correlation_id = Tracing()

    # -- provider events -------------------------------------------------------------------------------------

    @subscribe("providers", "provider.registered.v1")
    def on_provider_registered(self, uow, envelope):
        repository.upsert_snapshot(uow.db, PROVIDERS, envelope["data"]["provider"], uow.session)

    @subscribe("providers", "provider.updated.v1")
    def on_provider_updated(self, uow, envelope):
        repository.upsert_snapshot(uow.db, PROVIDERS, envelope["data"]["provider"], uow.session)

    @subscribe("providers", "provider.availability_changed.v1")
    def on_provider_availability_changed(self, uow, envelope):
        data = envelope["data"]
        changes = {"availability": data["availability"]}
        if data.get("capacity_hours_per_week") is not None:
            changes["capacity_hours_per_week"] = data["capacity_hours_per_week"]
        for centre in data.get("delivery_centres") or []:
            changes[f"centre_seats.{centre['id']}"] = centre["seats"]
        repository.set_fields(uow.db, PROVIDERS, data["provider_id"], changes, uow.session)

    @subscribe("providers", "provider.verified.v1")
    def on_provider_verified(self, uow, envelope):
        data = envelope["data"]
        repository.set_fields(
            uow.db, PROVIDERS, data["provider_id"], {"verified": True, "verified_at": data["verified_at"]},
            uow.session,
        )

    # -- client and posting events ---------------------------------------------------------------------------

    @subscribe("postings", "tenant.registered.v1")
    def on_tenant_registered(self, uow, envelope):
        repository.upsert_snapshot(uow.db, TENANTS, envelope["data"]["tenant"], uow.session)

    @subscribe("postings", "posting.published.v1")
    def on_posting_published(self, uow, envelope):
        repository.upsert_snapshot(uow.db, POSTINGS, envelope["data"]["posting"], uow.session)

    @subscribe("postings", "posting.updated.v1")
    def on_posting_updated(self, uow, envelope):
        repository.upsert_snapshot(uow.db, POSTINGS, envelope["data"]["posting"], uow.session)

    @subscribe("postings", "posting.cancelled.v1")
    def on_posting_cancelled(self, uow, envelope):
        data = envelope["data"]
        repository.set_fields(
            uow.db, POSTINGS, data["posting_id"], {"status": "cancelled", "cancelled_at": data["cancelled_at"]},
            uow.session,
        )

    # -- queries ---------------------------------------------------------------------------------------------

    @rpc
    def get_provider(self, provider_id: str) -> dict:
        provider = repository.get(self.store.db, PROVIDERS, provider_id)
        if provider is None:
            raise NotFound(f"matching knows no provider {provider_id}")
        return provider

    @rpc
    def get_posting(self, posting_id: str) -> dict:
        posting = repository.get(self.store.db, POSTINGS, posting_id)
        if posting is None:
            raise NotFound(f"matching knows no posting {posting_id}")
        return posting

    @rpc
    def health(self) -> dict:
        self.store.db.command("ping")
        return {"database": "ok"}

    @rpc
    def read_model_counts(self) -> dict:
        return repository.counts(self.store.db)
