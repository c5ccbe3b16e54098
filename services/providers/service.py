"""The providers service: RPC entrypoints over provider profiles.

Entrypoints only: each decodes its input (``schemas``), calls one use case of ``handlers`` (a change in one
transaction with its events, ``store.transact``; the outbox relay publishes them afterwards) and answers in the wire
form (``schemas``). Rules live in ``domain``, storage in ``repository``, routing keys and payloads in ``events``.
"""

from __future__ import annotations

from nameko.dependency_providers import Config

from shared.runtime.persistence import Database
from shared.runtime.rpc import rpc
from shared.runtime.tracing import Tracing
from shared.vocabulary import apikeys, paging

from . import handlers, repository, schemas
from .repository import Repository


class ProvidersService:
    name = "providers"

    store = Database(ensure_indexes=repository.ensure_indexes)
    correlation_id = Tracing()
    config = Config()

    @rpc
    def register(self, profile: dict) -> dict:
        provider, api_key = handlers.register(self.store.transact, schemas.load_registration(profile))
        return {"provider": schemas.to_wire(provider), "api_key": api_key}

    @rpc
    def get(self, provider_id: str) -> dict:
        return schemas.to_wire(handlers.get(Repository(self.store.db), provider_id))

    @rpc
    def update(self, provider_id: str, changes: dict) -> dict:
        wanted = schemas.load_changes(changes)
        return schemas.to_wire(self.store.transact(lambda uow: handlers.update(uow, provider_id, wanted)))

    @rpc
    def set_availability(self, provider_id: str, changes: dict) -> dict:
        wanted = schemas.load_availability_changes(changes)
        return schemas.to_wire(self.store.transact(lambda uow: handlers.set_availability(uow, provider_id, wanted)))

    @rpc
    def verify(self, provider_id: str, verified_by: str, note: str | None = None) -> dict:
        verification = schemas.load_verification(verified_by, note)
        return schemas.to_wire(self.store.transact(lambda uow: handlers.verify(uow, provider_id, verification)))

    @rpc
    def search(self, filters: dict | None = None, limit: int = paging.DEFAULT_LIMIT,
               cursor: str | None = None) -> dict:
        wanted = schemas.load_search(filters)
        limit, after = schemas.load_page(limit, cursor)
        providers, next_cursor = handlers.search(Repository(self.store.db), wanted, limit, after)
        return {"items": [schemas.to_wire(p) for p in providers], "next_cursor": next_cursor}

    @rpc
    def authenticate(self, api_key: str) -> dict | None:
        return handlers.authenticate(Repository(self.store.db), api_key)

    # -- a provider's API keys: issued, rotated and revoked by the provider itself (or an operator) ------------

    @rpc
    def list_keys(self, provider_id: str) -> dict:
        return {"items": handlers.list_keys(Repository(self.store.db), provider_id)}

    @rpc
    def create_key(self, provider_id: str, label: str | None = None) -> dict:
        limit = apikeys.max_live_keys(self.config)
        return self.store.transact(lambda uow: handlers.create_key(uow, provider_id, label, limit))

    @rpc
    def rotate_key(self, provider_id: str, key_id: str, grace_seconds: int) -> dict:
        limit = apikeys.max_live_keys(self.config)
        return self.store.transact(lambda uow: handlers.rotate_key(uow, provider_id, key_id, grace_seconds, limit))

    @rpc
    def revoke_key(self, provider_id: str, key_id: str) -> dict:
        limit = apikeys.max_live_keys(self.config)
        return self.store.transact(lambda uow: handlers.revoke_key(uow, provider_id, key_id, limit))

    @rpc
    def health(self) -> dict:
        return handlers.health(Repository(self.store.db))
