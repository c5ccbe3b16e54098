"""Entrypoints of a posting's lifecycle."""

from __future__ import annotations

from shared.runtime.rpc import rpc
from shared.vocabulary import idempotency, paging

from .. import domain, schemas
from ..handlers import postings
from ..repository import Repository


class PostingEntrypoints:
    @rpc
    def create_posting(self, tenant_id: str, posting: dict, idempotency_key: str | None = None,
                       publish: bool = False, confirm_core: bool = False) -> dict:
        """A draft; with ``publish``, created and published in one transaction."""
        fields, confirmed = schemas.load_new_posting(posting), schemas.load_confirm_core(confirm_core)
        key = idempotency.load_key(idempotency_key)
        fingerprint = domain.request_fingerprint(posting) if key else None
        return postings.create_posting(self.store, tenant_id, fields, key=key, fingerprint=fingerprint,
                                       publish=publish, confirm_core=confirmed)

    @rpc
    def update_posting(self, tenant_id: str, posting_id: str, changes: dict) -> dict:
        loaded = schemas.load_posting_changes(changes)
        return self.store.transact(lambda uow: postings.update_posting(uow, tenant_id, posting_id, loaded))

    @rpc
    def publish_posting(self, tenant_id: str, posting_id: str, confirm_core: bool = False) -> dict:
        confirmed = schemas.load_confirm_core(confirm_core)
        return self.store.transact(lambda uow: postings.publish_posting(uow, tenant_id, posting_id, confirmed))

    @rpc
    def cancel_posting(self, tenant_id: str, posting_id: str, reason: str) -> dict:
        why = schemas.load_cancellation_reason(reason)
        return self.store.transact(lambda uow: postings.cancel_posting(uow, tenant_id, posting_id, why))

    @rpc
    def get_posting(self, tenant_id: str, posting_id: str) -> dict:
        return postings.get_posting(Repository(self.store.db), tenant_id, posting_id)

    @rpc
    def list_postings(self, tenant_id: str, status: str | None = None, limit: int = paging.DEFAULT_LIMIT,
                      cursor: str | None = None) -> dict:
        status, limit, after = schemas.load_page(status, limit, cursor)
        return postings.list_postings(Repository(self.store.db), tenant_id, status, limit, after)
