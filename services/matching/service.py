"""Matching: ranked, explainable shortlists for published postings, kept current as providers change.

Inputs (all idempotent, each in one transaction with its outbox; the provider events and posting.published in
batches, ``shared.runtime.batches``: up to 100 postings or 50 provider events per transaction, two batches of
posting.published at once; ``TASKLINKR_BATCH_MAX_SIZE`` sets both):
- provider.registered / updated / availability_changed / verified → the provider read model and the index; the
  open postings the provider can affect are re-ranked, ``shortlist.updated.v1`` when one really changes. A
  verification or availability change that overtakes the registration (another queue) is held and applied with it;
- tenant.registered → tenants (their segment is the lane of their postings' shortlists);
- posting.published → rank, store the shortlist, ``matches.proposed.v1``;
- posting.updated → re-rank (``shortlist.updated.v1`` when it changes);
- posting.cancelled / posting.awarded → the posting stops being re-ranked;
- contract.activated / amended / completed / terminated and sla.met / sla.breached (contracting) → one fact per
  contract and per evaluated SLA window; the provider's track record and load are recomputed from its facts and,
  when they change, its open postings are re-ranked like after a provider change. A terminated contract's load
  stays until its effective date; a timer (``MATCHING_NOTICE_RELEASE_INTERVAL_SECONDS``) releases it then.

The provider and contract queues have a single active consumer each (``single_active`` in the catalog): one process
of a lane re-ranks after provider changes, and only it builds and follows the view of the open postings this takes
(before the transaction of the first such change it handles). The others rank published postings only; when the
active one stops the broker makes another active, which builds its view then.

Queries: ``get_shortlist`` and ``explain``, scoped to the posting's tenant (another tenant gets NotFound).

Entrypoints only: the use cases are in ``handlers``, the rules in ``domain`` (and ``ranking``, ``geography``,
``currency``, ``shortlists``), the database in ``repository``, routing keys in ``events``, answers in ``schemas``.
"""

from __future__ import annotations

from services.matching import domain, events, handlers, repository, schemas
from services.matching.dependencies import LiveIndex, MatchingIndex
from services.matching.repository import Repository
from shared.runtime.batches import subscribe_batch
from shared.runtime.messaging import subscribe
from shared.runtime.persistence import Database
from shared.runtime.rpc import rpc
from shared.runtime.timers import configured_timer
from shared.runtime.tracing import Tracing

# posting.published's batch size, unless ``TASKLINKR_BATCH_MAX_SIZE`` is set (see ``on_posting_published``).
POSTINGS_PER_BATCH = 100


def follow_open_postings(service: MatchingService) -> None:
    """Before the transaction of a provider change: the process's view of the open postings, built on the first
    (only the active consumer of matching's provider and contract queues gets them, ``single_active``)."""
    service.matches.follow_postings()


class MatchingService:
    """Entrypoints only: each decodes its input, calls one use case of ``handlers`` and answers."""

    name = "matching"

    store = Database(ensure_indexes=repository.ensure_indexes)
    matches: LiveIndex = MatchingIndex()
    correlation_id = Tracing()

    # -- provider events -------------------------------------------------------------------------------------

    @subscribe_batch(events.PROVIDERS, events.PROVIDER_REGISTERED, before=follow_open_postings)
    def on_provider_registered(self, uow, envelopes):
        handlers.providers_changed(uow, self.matches, handlers.provider_arrived,
                                   [(envelope["data"]["provider"], envelope) for envelope in envelopes])

    @subscribe_batch(events.PROVIDERS, events.PROVIDER_UPDATED, before=follow_open_postings)
    def on_provider_updated(self, uow, envelopes):
        handlers.providers_changed(uow, self.matches, handlers.provider_arrived,
                                   [(envelope["data"]["provider"], envelope) for envelope in envelopes])

    @subscribe_batch(events.PROVIDERS, events.PROVIDER_AVAILABILITY_CHANGED, before=follow_open_postings)
    def on_provider_availability_changed(self, uow, envelopes):
        handlers.providers_changed(uow, self.matches, handlers.availability_changed,
                                   [(envelope["data"], envelope) for envelope in envelopes])

    @subscribe_batch(events.PROVIDERS, events.PROVIDER_VERIFIED, before=follow_open_postings)
    def on_provider_verified(self, uow, envelopes):
        handlers.providers_changed(uow, self.matches, handlers.provider_verified,
                                   [(envelope["data"], envelope) for envelope in envelopes])

    # -- contracting events: load and track record ------------------------------------------------------------

    @subscribe(events.CONTRACTING, events.CONTRACT_ACTIVATED, before=follow_open_postings)
    def on_contract_activated(self, uow, envelope):
        handlers.contract_changed(uow, self.matches, domain.contract_fact(envelope["data"]["contract"], "active"))

    @subscribe(events.CONTRACTING, events.CONTRACT_AMENDED, before=follow_open_postings)
    def on_contract_amended(self, uow, envelope):
        handlers.contract_changed(uow, self.matches, domain.contract_fact(envelope["data"]["contract"], "active"))

    @subscribe(events.CONTRACTING, events.CONTRACT_COMPLETED, before=follow_open_postings)
    def on_contract_completed(self, uow, envelope):
        data = envelope["data"]
        handlers.contract_changed(uow, self.matches, domain.contract_fact(
            data["contract"], "completed", ended_at=data["completed_at"], rating=data["provider_rating"]["score"]))

    @subscribe(events.CONTRACTING, events.CONTRACT_TERMINATED, before=follow_open_postings)
    def on_contract_terminated(self, uow, envelope):
        data = envelope["data"]
        handlers.contract_changed(uow, self.matches, domain.contract_fact(
            data["contract"], "terminated", ended_at=data["terminated_at"], releases_on=data["effective_date"]))

    @subscribe(events.CONTRACTING, events.SLA_MET, before=follow_open_postings)
    def on_sla_met(self, uow, envelope):
        handlers.sla_evaluated(uow, self.matches, domain.sla_result(envelope["data"]))

    @subscribe(events.CONTRACTING, events.SLA_BREACHED, before=follow_open_postings)
    def on_sla_breached(self, uow, envelope):
        handlers.sla_evaluated(uow, self.matches, domain.sla_result(envelope["data"]))

    @configured_timer("MATCHING_NOTICE_RELEASE_INTERVAL_SECONDS", 3600.0)
    def release_served_notices(self) -> None:
        handlers.release_served_notices(self.store, self.matches)

    # -- client and posting events ---------------------------------------------------------------------------

    @subscribe(events.POSTINGS, events.TENANT_REGISTERED)
    def on_tenant_registered(self, uow, envelope):
        handlers.tenant_registered(uow, envelope["data"]["tenant"])

    # Two batches at once: each posting is its own (a second copy is answered by the inbox, an older snapshot by
    # its version), so the next batch is ranked while one waits on the database. Up to 100 a batch: a batch costs
    # this process and its database about as much as 10 postings (a transaction, its outbox and inbox documents,
    # the relay's read and position), so 100 instead of 50 costs a tenth less CPU per posting over every process of
    # the path (bench-matching, 2026-12-07; docs/design/matching.md, "100 postings a batch").
    @subscribe_batch(events.POSTINGS, events.POSTING_PUBLISHED, in_flight=2, max_batch=POSTINGS_PER_BATCH)
    def on_posting_published(self, uow, envelopes):
        handlers.postings_published(uow, self.matches, [(envelope["data"]["posting"], envelope["lane"], envelope)
                                                        for envelope in envelopes])

    @subscribe(events.POSTINGS, events.POSTING_UPDATED)
    def on_posting_updated(self, uow, envelope):
        handlers.posting_updated(uow, self.matches, envelope["data"]["posting"], envelope["lane"])

    @subscribe(events.POSTINGS, events.POSTING_CANCELLED)
    def on_posting_cancelled(self, uow, envelope):
        handlers.posting_cancelled(uow, envelope["data"]["posting_id"], envelope["data"]["cancelled_at"])

    @subscribe(events.POSTINGS, events.POSTING_AWARDED)
    def on_posting_awarded(self, uow, envelope):
        handlers.posting_awarded(uow, envelope["data"]["posting"]["id"])

    # -- queries ---------------------------------------------------------------------------------------------

    @rpc
    def get_shortlist(self, tenant_id: str, posting_id: str) -> dict:
        return schemas.shortlist_answer(handlers.shortlisted_posting(Repository(self.store.db), tenant_id, posting_id))

    @rpc
    def explain(self, tenant_id: str, posting_id: str, provider_id: str) -> dict:
        return handlers.explain(Repository(self.store.db), self.matches, tenant_id, posting_id, provider_id)

    @rpc
    def free_capacity(self, provider_id: str, centre_id: str | None = None) -> dict:
        """A provider's free hours a week (a firm's: of the delivery centre, or of all its centres). Postings asks
        before it takes a proposal (matching owns the load; postings keeps no copy)."""
        capacity, committed = handlers.capacity_and_load(self.matches, provider_id, centre_id)
        return schemas.free_capacity_answer(provider_id, centre_id, capacity, committed)

    @rpc
    def get_provider(self, provider_id: str) -> dict:
        return handlers.provider(Repository(self.store.db), provider_id)

    @rpc
    def get_posting(self, posting_id: str) -> dict:
        return handlers.posting(Repository(self.store.db), posting_id)

    @rpc
    def health(self) -> dict:
        return handlers.health(Repository(self.store.db))

    @rpc
    def read_model_counts(self) -> dict:
        return handlers.read_model_counts(Repository(self.store.db), self.matches)
