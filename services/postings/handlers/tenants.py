"""Client organisations (tenants) and their API keys, issued, rotated and revoked by the owner (or an operator)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.runtime.persistence import UnitOfWork
from shared.vocabulary import apikeys
from shared.vocabulary.apikeys import KeyRing
from shared.vocabulary.terms import lane_of

from .. import domain, events, repository, schemas
from ..repository import Repository
from .common import tenant_of


def create_tenant(uow: UnitOfWork, fields: dict) -> tuple[dict, str]:
    """The new tenant and its owner's first API key (in clear, this once)."""
    repo = Repository.of(uow)
    now = repository.current_time()
    created = domain.new_tenant(tenant_id=repository.new_id("ten"), fields=fields, now=now)
    api_key, _ = repo.key_ring().first_key(created["id"], apikeys.OWNER_ROLE, None, now)
    repo.insert_tenant(created, apikeys.digest(api_key))
    wire = schemas.tenant_to_wire(created)
    uow.emit(events.TENANT_REGISTERED, subject=created["id"], data=events.tenant_registered(wire),
             lane=lane_of(segment=created["segment"]), tenant=created["id"])
    return wire, api_key


def get_tenant(repo: Repository, tenant_id: str) -> dict:
    return schemas.tenant_to_wire(tenant_of(repo, tenant_id))


def authenticate(repo: Repository, api_key: str) -> dict | None:
    """The key's tenant, role and key id, and the tenant's lane (its calls travel in it); None for a dead key."""
    record = repo.key_ring().live(api_key, repository.current_time())
    if not record:
        return None
    tenant = repo.tenant(record["owner_id"])
    lane = lane_of(segment=tenant["segment"]) if tenant else lane_of()
    return {"tenant_id": record["owner_id"], "role": record["role"], "key_id": record["_id"], "lane": lane.value}


def list_keys(repo: Repository, tenant_id: str) -> list[dict]:
    tenant_of(repo, tenant_id)
    now = repository.current_time()
    return [apikeys.to_wire(record, now) for record in repo.key_ring().of(tenant_id)]


def create_key(uow: UnitOfWork, tenant_id: str, role: str, label: str | None, max_live_keys: int) -> dict:
    return _change_keys(uow, tenant_id, max_live_keys, lambda ring, now: ring.issue(tenant_id, role, label, now))


def rotate_key(uow: UnitOfWork, tenant_id: str, key_id: str, grace_seconds: int, max_live_keys: int) -> dict:
    return _change_keys(uow, tenant_id, max_live_keys,
                        lambda ring, now: ring.rotate(tenant_id, key_id, grace_seconds, now))


def revoke_key(uow: UnitOfWork, tenant_id: str, key_id: str, max_live_keys: int) -> dict:
    return _change_keys(uow, tenant_id, max_live_keys,
                        lambda ring, now: (None, ring.revoke(tenant_id, key_id, now)))["key"]


def _change_keys(uow: UnitOfWork, tenant_id: str, max_live_keys: int,
                 change: Callable[[KeyRing, datetime], tuple[str | None, dict]]) -> dict:
    """One change of a tenant's key ring, for a tenant that exists."""
    tenant_of(Repository.of(uow), tenant_id)
    return apikeys.apply(uow, apikeys.CLIENT, change, max_live_keys)
