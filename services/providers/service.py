"""The providers service: RPC entrypoints over provider profiles. Rules live in ``domain``, storage in
``repository``, edge formats in ``schemas``, event payloads in ``events``."""

from __future__ import annotations

from shared import apikeys
from shared.envelope import utc_now
from shared.persistence import Database, UnitOfWork
from shared.rpc import rpc
from shared.tracing import Tracing

from . import domain, events, repository, schemas


class ProvidersService:
    name = "providers"

    store = Database(ensure_indexes=repository.ensure_indexes)
    correlation_id = Tracing()

    @rpc
    def register(self, profile: dict) -> dict:
        fields = schemas.load_registration(profile)
        domain.require_valid(fields)
        api_key = apikeys.generate(apikeys.PROVIDER)
        provider = domain.new_provider(fields, provider_id=domain.new_provider_id(), now=utc_now())

        def work(uow: UnitOfWork) -> None:
            repository.insert(uow, provider, apikeys.digest(api_key))
            uow.emit(events.REGISTERED, subject=provider["id"], data=events.registered(provider),
                     lane=domain.lane_for(provider["kind"]))

        self.store.transact(work)
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
            domain.require_valid(proposed)
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
        if not isinstance(api_key, str) or apikeys.kind_of(api_key) != apikeys.PROVIDER:
            return None
        provider_id = repository.provider_id_for_key(self.store.db, apikeys.digest(api_key))
        return {"provider_id": provider_id} if provider_id else None

    @rpc
    def health(self) -> dict:
        repository.ping(self.store.db)
        return {"database": "ok"}
