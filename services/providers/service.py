"""The providers service: RPC entrypoints over provider profiles. Rules live in ``domain``, storage in
``repository``, edge formats in ``schemas``, event payloads in ``events``."""

from __future__ import annotations

from nameko.dependency_providers import Config

from shared import apikeys
from shared.apikeys import KeyRing
from shared.envelope import utc_now
from shared.outbox import pending_count
from shared.persistence import Database, UnitOfWork
from shared.rpc import rpc
from shared.tracing import Tracing

from . import domain, events, repository, schemas


class ProvidersService:
    name = "providers"

    store = Database(ensure_indexes=repository.ensure_indexes)
    correlation_id = Tracing()
    config = Config()

    @rpc
    def register(self, profile: dict) -> dict:
        fields = schemas.load_registration(profile)
        domain.require_valid(fields)
        provider = domain.new_provider(fields, provider_id=domain.new_provider_id(), now=utc_now())

        def work(uow: UnitOfWork) -> str:
            api_key, _ = KeyRing(uow.db, apikeys.PROVIDER, uow.session).first_key(
                provider["id"], apikeys.PROVIDER_ROLE, None, utc_now())
            repository.insert(uow, provider, apikeys.digest(api_key))
            uow.emit(events.REGISTERED, subject=provider["id"], data=events.registered(provider),
                     lane=domain.lane_for(provider["kind"]))
            return api_key

        api_key = self.store.transact(work)
        return {"provider": schemas.to_wire(provider), "api_key": api_key}

    @rpc
    def get(self, provider_id: str) -> dict:
        return schemas.to_wire(repository.get(self.store.db, provider_id))

    @rpc
    def update(self, provider_id: str, changes: dict) -> dict:
        wanted = schemas.load_changes(changes)

        def work(uow: UnitOfWork) -> dict:
            current = repository.get(uow.db, provider_id, session=uow.session)
            proposed = domain.apply_changes(current, wanted)
            domain.require_valid_change(proposed, wanted)
            changed = domain.changed_fields(current, proposed)
            if not changed:
                return current
            provider = domain.stamped(proposed, previous_version=current["version"], now=utc_now())
            repository.save(uow, provider, expected_version=current["version"])
            lane = domain.lane_for(provider["kind"])
            uow.emit(events.UPDATED, subject=provider_id, data=events.updated(provider, changed), lane=lane)
            if domain.is_availability_change(current, provider):
                uow.emit(events.AVAILABILITY_CHANGED, subject=provider_id,
                         data=events.availability_changed(provider), lane=lane)
            return provider

        return schemas.to_wire(self.store.transact(work))

    @rpc
    def set_availability(self, provider_id: str, changes: dict) -> dict:
        wanted = schemas.load_availability_changes(changes)

        def work(uow: UnitOfWork) -> dict:
            current = repository.get(uow.db, provider_id, session=uow.session)
            proposed = domain.apply_availability(current, wanted)
            if not domain.is_availability_change(current, proposed):
                return current
            provider = domain.stamped(proposed, previous_version=current["version"], now=utc_now())
            repository.save(uow, provider, expected_version=current["version"])
            uow.emit(events.AVAILABILITY_CHANGED, subject=provider_id,
                     data=events.availability_changed(provider), lane=domain.lane_for(provider["kind"]))
            return provider

        return schemas.to_wire(self.store.transact(work))

    @rpc
    def verify(self, provider_id: str, verified_by: str, note: str | None = None) -> dict:
        verification = schemas.load_verification(verified_by, note)

        def work(uow: UnitOfWork) -> dict:
            current = repository.get(uow.db, provider_id, session=uow.session)
            if current["verified"]:
                return current
            provider = domain.verified(current, now=utc_now())
            provider.update(verified_by=verification["verified_by"],
                            verification_note=verification.get("note"))
            repository.save(uow, provider, expected_version=current["version"])
            uow.emit(events.VERIFIED, subject=provider_id,
                     data=events.verified(provider_id, provider["verified_at"], provider["verified_by"]),
                     lane=domain.lane_for(provider["kind"]))
            return provider

        return schemas.to_wire(self.store.transact(work))

    @rpc
    def search(self, filters: dict | None = None, limit: int = schemas.DEFAULT_LIMIT,
               cursor: str | None = None) -> dict:
        wanted = schemas.load_search(filters)
        limit, after = schemas.load_page(limit, cursor)
        providers, more = repository.search(self.store.db, wanted, today=utc_now().date(), after=after,
                                            limit=limit)
        return {
            "items": [schemas.to_wire(p) for p in providers],
            "next_cursor": schemas.encode_cursor(providers[-1]["id"]) if more else None,
        }

    @rpc
    def authenticate(self, api_key: str) -> dict | None:
        record = KeyRing(self.store.db, apikeys.PROVIDER).live(api_key, utc_now())
        return {"provider_id": record["owner_id"], "key_id": record["_id"]} if record else None

    # -- a provider's API keys: issued, rotated and revoked by the provider itself (or an operator) ------------

    @rpc
    def list_keys(self, provider_id: str) -> dict:
        repository.get(self.store.db, provider_id)
        now = utc_now()
        return {"items": [apikeys.to_wire(r, now) for r in KeyRing(self.store.db, apikeys.PROVIDER).of(provider_id)]}

    @rpc
    def create_key(self, provider_id: str, label: str | None = None) -> dict:
        return self._keys(provider_id, lambda ring, now: ring.issue(provider_id, apikeys.PROVIDER_ROLE, label, now))

    @rpc
    def rotate_key(self, provider_id: str, key_id: str, grace_seconds: int) -> dict:
        return self._keys(provider_id, lambda ring, now: ring.rotate(provider_id, key_id, grace_seconds, now))

    @rpc
    def revoke_key(self, provider_id: str, key_id: str) -> dict:
        return self._keys(provider_id, lambda ring, now: (None, ring.revoke(provider_id, key_id, now)))["key"]

    def _keys(self, provider_id: str, change) -> dict:
        def work(uow: UnitOfWork) -> dict:
            repository.get(uow.db, provider_id, session=uow.session)
            return apikeys.apply(uow, apikeys.PROVIDER, change, apikeys.max_live_keys(self.config))

        return self.store.transact(work)

    @rpc
    def health(self) -> dict:
        repository.ping(self.store.db)
        return {"database": "ok", "outbox_backlog": pending_count(self.store.db)}
