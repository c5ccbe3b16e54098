"""The postings service: client organisations (tenants) and their task postings.

Entrypoints only. Each state change and the event it causes commit in one transaction (``store.transact``);
the outbox relay publishes the events afterwards. Rules live in ``domain``, validation in ``schemas``,
storage in ``repository``, event payloads in ``events``.
"""

from __future__ import annotations

from typing import Any

from shared import apikeys
from shared.errors import Conflict, NotFound
from shared.persistence import Database, UnitOfWork, is_duplicate
from shared.rpc import rpc
from shared.tracing import Tracing

from . import domain, events, repository, schemas
from .repository import Repository


def _tenant(repo: Repository, tenant_id: Any) -> dict:
    tenant = repo.tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"Tenant {tenant_id} not found.")
    return tenant


def _posting(repo: Repository, tenant_id: Any, posting_id: Any) -> dict:
    posting = repo.posting(tenant_id, posting_id)
    if posting is None:
        raise NotFound(f"Posting {posting_id} not found.")
    return posting


def _store_new_version(repo: Repository, before: dict, after: dict) -> None:
    # The transaction already conflicts with a concurrent writer; the version filter keeps that guarantee
    # explicit, and holds even on a server that would let both commit.
    if not repo.replace_posting(after, expected_version=before["version"]):
        raise Conflict("The posting was changed by someone else meanwhile; reload it and try again.")


class PostingsService:
    name = "postings"

    store = Database(ensure_indexes=repository.ensure_indexes)
    correlation_id = Tracing()

    # -- tenants ---------------------------------------------------------------------------------------------

    @rpc
    def create_tenant(self, tenant: dict) -> dict:
        fields = schemas.load_new_tenant(tenant)
        api_key = apikeys.generate(apikeys.CLIENT)

        def work(uow: UnitOfWork) -> dict:
            created = domain.new_tenant(tenant_id=repository.new_id("ten"), fields=fields,
                                        now=repository.current_time())
            Repository.of(uow).insert_tenant(created, apikeys.digest(api_key))
            wire = schemas.tenant_to_wire(created)
            uow.emit(events.TENANT_REGISTERED, subject=created["id"], data=events.tenant_registered(wire),
                     lane=created["segment"], tenant=created["id"])
            return wire

        return {"tenant": self.store.transact(work), "api_key": api_key}

    @rpc
    def get_tenant(self, tenant_id: str) -> dict:
        return schemas.tenant_to_wire(_tenant(Repository(self.store.db), tenant_id))

    @rpc
    def authenticate(self, api_key: str) -> dict | None:
        if not isinstance(api_key, str) or apikeys.kind_of(api_key) != apikeys.CLIENT:
            return None
        tenant_id = Repository(self.store.db).tenant_id_for_key(apikeys.digest(api_key))
        return {"tenant_id": tenant_id, "role": "owner"} if tenant_id else None

    # -- postings --------------------------------------------------------------------------------------------

    @rpc
    def create_posting(self, tenant_id: str, posting: dict, idempotency_key: str | None = None) -> dict:
        fields = schemas.load_new_posting(posting)
        key = schemas.load_idempotency_key(idempotency_key)
        fingerprint = domain.request_fingerprint(posting) if key else None

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
            tenant = _tenant(repo, tenant_id)
            created = earlier(repo)
            if created is None:
                created = domain.new_posting(posting_id=repository.new_id("pst"), tenant=tenant,
                                             fields=fields, now=repository.current_time())
                repo.insert_posting(created, idempotency_key=key, request_fingerprint=fingerprint)
            # A draft is private to its tenant: creating one tells nobody.
            return schemas.posting_to_wire(created)

        try:
            return self.store.transact(work)
        except Exception as exc:
            # The same key arrived twice at once and the other request committed first: answer with that.
            if not (key and is_duplicate(exc)):
                raise
            return schemas.posting_to_wire(earlier(Repository(self.store.db)))

    @rpc
    def update_posting(self, tenant_id: str, posting_id: str, changes: dict) -> dict:
        loaded = schemas.load_posting_changes(changes)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            tenant = _tenant(repo, tenant_id)
            before = _posting(repo, tenant_id, posting_id)
            after, changed = domain.edit(before, loaded, tenant, repository.current_time())
            if not changed:
                return schemas.posting_to_wire(before)
            _store_new_version(repo, before, after)
            wire = schemas.posting_to_wire(after)
            if after["status"] == domain.Status.OPEN:
                uow.emit(events.POSTING_UPDATED, subject=after["id"],
                         data=events.posting_updated(wire, changed),
                         lane=tenant["segment"], tenant=tenant["id"])
            return wire

        return self.store.transact(work)

    @rpc
    def publish_posting(self, tenant_id: str, posting_id: str, confirm_core: bool = False) -> dict:
        confirmed = schemas.load_confirm_core(confirm_core)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            tenant = _tenant(repo, tenant_id)
            before = _posting(repo, tenant_id, posting_id)
            if before["status"] == domain.Status.OPEN:
                # Already done: an RPC redelivered after a crash, or a client retry. Same answer, no second event.
                return schemas.posting_to_wire(before)
            after = domain.publish(before, tenant, confirm_core=confirmed, now=repository.current_time())
            _store_new_version(repo, before, after)
            wire = schemas.posting_to_wire(after)
            uow.emit(events.POSTING_PUBLISHED, subject=after["id"], data=events.posting_published(wire),
                     lane=tenant["segment"], tenant=tenant["id"])
            return wire

        return self.store.transact(work)

    @rpc
    def cancel_posting(self, tenant_id: str, posting_id: str, reason: str) -> dict:
        why = schemas.load_cancellation_reason(reason)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            tenant = _tenant(repo, tenant_id)
            before = _posting(repo, tenant_id, posting_id)
            if before["status"] == domain.Status.CANCELLED:
                return schemas.posting_to_wire(before)  # already done (a retry): same answer, no second event
            after = domain.cancel(before, reason=why, now=repository.current_time())
            _store_new_version(repo, before, after)
            wire = schemas.posting_to_wire(after)
            # Only providers who could see the posting need to hear that it is gone.
            if before["status"] == domain.Status.OPEN:
                uow.emit(events.POSTING_CANCELLED, subject=after["id"], data=events.posting_cancelled(wire),
                         lane=tenant["segment"], tenant=tenant["id"])
            return wire

        return self.store.transact(work)

    @rpc
    def get_posting(self, tenant_id: str, posting_id: str) -> dict:
        return schemas.posting_to_wire(_posting(Repository(self.store.db), tenant_id, posting_id))

    @rpc
    def list_postings(self, tenant_id: str, status: str | None = None, limit: int = schemas.DEFAULT_PAGE,
                      cursor: str | None = None) -> dict:
        status, limit, after = schemas.load_page(status, limit, cursor)
        repo = Repository(self.store.db)
        _tenant(repo, tenant_id)
        # One extra row tells whether another page exists without a second query.
        rows = repo.postings_page(tenant_id, status=status, after=after, limit=limit + 1)
        page = rows[:limit]
        next_cursor = schemas.encode_cursor(page[-1]["id"]) if len(rows) > limit else None
        return {"items": [schemas.posting_to_wire(row) for row in page], "next_cursor": next_cursor}

    @rpc
    def health(self) -> dict:
        self.store.db.command("ping")
        return {"database": "ok"}
