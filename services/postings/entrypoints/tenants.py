"""Entrypoints of client organisations (tenants) and their API keys."""

from __future__ import annotations

from shared.runtime.rpc import rpc
from shared.vocabulary import apikeys

from .. import schemas
from ..handlers import tenants
from ..repository import Repository


class TenantEntrypoints:
    @rpc
    def create_tenant(self, tenant: dict) -> dict:
        fields = schemas.load_new_tenant(tenant)
        wire, api_key = self.store.transact(lambda uow: tenants.create_tenant(uow, fields))
        return {"tenant": wire, "api_key": api_key}

    @rpc
    def get_tenant(self, tenant_id: str) -> dict:
        return tenants.get_tenant(Repository(self.store.db), tenant_id)

    @rpc
    def authenticate(self, api_key: str) -> dict | None:
        return tenants.authenticate(Repository(self.store.db), api_key)

    # -- a tenant's API keys: issued, rotated and revoked by its owner (or an operator) -------------------------

    @rpc
    def list_keys(self, tenant_id: str) -> dict:
        return {"items": tenants.list_keys(Repository(self.store.db), tenant_id)}

    @rpc
    def create_key(self, tenant_id: str, role: str, label: str | None = None) -> dict:
        role, limit = schemas.load_key_role(role), apikeys.max_live_keys(self.config)
        return self.store.transact(lambda uow: tenants.create_key(uow, tenant_id, role, label, limit))

    @rpc
    def rotate_key(self, tenant_id: str, key_id: str, grace_seconds: int) -> dict:
        limit = apikeys.max_live_keys(self.config)
        return self.store.transact(lambda uow: tenants.rotate_key(uow, tenant_id, key_id, grace_seconds, limit))

    @rpc
    def revoke_key(self, tenant_id: str, key_id: str) -> dict:
        limit = apikeys.max_live_keys(self.config)
        return self.store.transact(lambda uow: tenants.revoke_key(uow, tenant_id, key_id, limit))
