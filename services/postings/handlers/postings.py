"""A posting's lifecycle: drafted, edited, published, cancelled, read and listed by its tenant."""

from __future__ import annotations

from shared.runtime.persistence import Store, UnitOfWork, is_duplicate
from shared.vocabulary import paging
from shared.vocabulary.errors import Conflict
from shared.vocabulary.terms import lane_of

from .. import domain, events, repository, schemas
from ..repository import NegotiationRepository, Repository
from .common import posting_of, store_posting, tenant_of
from .negotiation import close_negotiations


def create_posting(store: Store, tenant_id: str, fields: dict, *, key: str | None, fingerprint: str | None,
                   publish: bool, confirm_core: bool) -> dict:
    """A draft; with ``publish``, created and published in one transaction (a posting that cannot be published is
    not created either). A request repeated with its idempotency key answers what the first one created."""

    def earlier(repo: Repository) -> dict | None:
        found = repo.posting_by_idempotency_key(tenant_id, key) if key else None
        if found is None:
            return None
        existing, earlier_fingerprint = found
        if earlier_fingerprint != fingerprint:
            raise Conflict("This idempotency key was already used for a different posting.",
                           details={"idempotency_key": ["Already used with a different request."]})
        return existing

    def work(uow: UnitOfWork) -> dict:
        repo = Repository.of(uow)
        tenant = tenant_of(repo, tenant_id)
        created = earlier(repo)
        if created is None:
            created = domain.new_posting(posting_id=repository.new_id("pst"), tenant=tenant, fields=fields,
                                         now=repository.current_time())
            repo.insert_posting(created, idempotency_key=key, request_fingerprint=fingerprint)
        if publish and created["status"] == domain.Status.DRAFT:
            return _publish(uow, repo, tenant, created, confirm_core)
        # A draft is private to its tenant: creating one tells nobody.
        return schemas.posting_to_wire(created)

    try:
        return store.transact(work)
    except Exception as exc:
        # The same key arrived twice at once and the other request committed first: answer with that.
        if not (key and is_duplicate(exc)):
            raise
        return schemas.posting_to_wire(earlier(Repository(store.db)))


def update_posting(uow: UnitOfWork, tenant_id: str, posting_id: str, loaded: dict) -> dict:
    repo = Repository.of(uow)
    tenant = tenant_of(repo, tenant_id)
    before = posting_of(repo, tenant_id, posting_id)
    after, changed = domain.edit(before, loaded, tenant, repository.current_time())
    if not changed:
        return schemas.posting_to_wire(before)
    meaning = domain.changes_what_terms_mean(before, after)
    negotiating = [p["id"] for p in NegotiationRepository.of(uow).proposals_of_posting(before["id"])
                   if p["status"] in domain.OPEN_PROPOSAL_STATUSES]
    if meaning and negotiating:
        raise Conflict("Proposals are being negotiated on this posting's engagement and currency; they cannot "
                       "change under them.", details={name: [f"Negotiating: {', '.join(negotiating)}."]
                                                      for name in meaning})
    store_posting(repo, before, after)
    wire = schemas.posting_to_wire(after)
    if after["status"] == domain.Status.OPEN:
        uow.emit(events.POSTING_UPDATED, subject=after["id"], data=events.posting_updated(wire, changed),
                 lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
    return wire


def publish_posting(uow: UnitOfWork, tenant_id: str, posting_id: str, confirm_core: bool) -> dict:
    repo = Repository.of(uow)
    tenant = tenant_of(repo, tenant_id)
    before = posting_of(repo, tenant_id, posting_id)
    if before["status"] == domain.Status.OPEN:
        # Already done: an RPC redelivered after a crash, or a client retry. Same answer, no second event.
        return schemas.posting_to_wire(before)
    return _publish(uow, repo, tenant, before, confirm_core)


def _publish(uow: UnitOfWork, repo: Repository, tenant: dict, draft: dict, confirm_core: bool) -> dict:
    """The draft published (it must be publishable), stored and announced with ``posting.published.v1``."""
    after = domain.publish(draft, tenant, confirm_core=confirm_core, now=repository.current_time())
    store_posting(repo, draft, after)
    wire = schemas.posting_to_wire(after)
    uow.emit(events.POSTING_PUBLISHED, subject=after["id"], data=events.posting_published(wire),
             lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
    return wire


def cancel_posting(uow: UnitOfWork, tenant_id: str, posting_id: str, reason: str) -> dict:
    repo = Repository.of(uow)
    tenant = tenant_of(repo, tenant_id)
    before = posting_of(repo, tenant_id, posting_id)
    if before["status"] == domain.Status.CANCELLED:
        return schemas.posting_to_wire(before)  # already done (a retry): same answer, no second event
    now = repository.current_time()
    after = domain.cancel(before, reason=reason, now=now)
    store_posting(repo, before, after)
    close_negotiations(NegotiationRepository.of(uow), after["id"], keep=None,
                       reason="The client cancelled the posting.", now=now)
    wire = schemas.posting_to_wire(after)
    # Only providers who could see the posting need to hear that it is gone.
    if before["status"] == domain.Status.OPEN:
        uow.emit(events.POSTING_CANCELLED, subject=after["id"], data=events.posting_cancelled(wire),
                 lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
    return wire


def get_posting(repo: Repository, tenant_id: str, posting_id: str) -> dict:
    return schemas.posting_to_wire(posting_of(repo, tenant_id, posting_id))


def list_postings(repo: Repository, tenant_id: str, status: str | None, limit: int, after: str | None) -> dict:
    tenant_of(repo, tenant_id)
    # One extra row tells whether another page exists without a second query.
    page, next_cursor = paging.split_page(repo.postings_page(tenant_id, status=status, after=after,
                                                             limit=limit + 1), limit)
    return {"items": [schemas.posting_to_wire(row) for row in page], "next_cursor": next_cursor}
