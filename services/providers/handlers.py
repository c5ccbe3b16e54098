"""The providers service's use cases, one plain function each: register, change and verify a profile, search, and a
provider's API keys.

A change takes the unit of work of its transaction and the decoded input, checks the rules of ``domain``, stores
through ``repository`` and records its events with the keys of ``events``, in the same transaction. A read takes a
``Repository`` on committed data. Each returns the profile in its Python form; ``schemas`` makes the wire form.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.runtime.persistence import UnitOfWork
from shared.vocabulary import apikeys, paging
from shared.vocabulary.apikeys import KeyRing
from shared.vocabulary.times import utc_now

from . import domain, events
from .repository import Repository

Transact = Callable[[Callable[[UnitOfWork], Any]], Any]


def register(transact: Transact, fields: dict) -> tuple[dict, str]:
    """A new provider and its first API key (the key in clear, this once). A profile that breaks the rules opens no
    transaction."""
    fields = domain.priced(fields)
    domain.require_valid(fields)
    provider = domain.new_provider(fields, provider_id=domain.new_provider_id(), now=utc_now())

    def work(uow: UnitOfWork) -> str:
        repo = Repository.of(uow)
        api_key, _ = repo.key_ring().first_key(provider["id"], apikeys.PROVIDER_ROLE, None, utc_now())
        repo.insert(provider, apikeys.digest(api_key))
        uow.emit(events.REGISTERED, subject=provider["id"], data=events.registered(provider),
                 lane=domain.lane_for(provider["kind"]))
        return api_key

    return provider, transact(work)


def update(uow: UnitOfWork, provider_id: str, wanted: dict) -> dict:
    repo = Repository.of(uow)
    current = repo.get(provider_id)
    proposed = domain.priced(domain.apply_changes(current, wanted))
    domain.require_valid_change(proposed, wanted)
    changed = domain.changed_fields(current, proposed)
    if not changed:
        return current
    provider = domain.stamped(proposed, previous_version=current["version"], now=utc_now())
    repo.save(provider, expected_version=current["version"])
    lane = domain.lane_for(provider["kind"])
    uow.emit(events.UPDATED, subject=provider_id, data=events.updated(provider, changed), lane=lane)
    if domain.is_availability_change(current, provider):
        uow.emit(events.AVAILABILITY_CHANGED, subject=provider_id, data=events.availability_changed(provider),
                 lane=lane)
    return provider


def set_availability(uow: UnitOfWork, provider_id: str, wanted: dict) -> dict:
    repo = Repository.of(uow)
    current = repo.get(provider_id)
    proposed = domain.apply_availability(current, wanted)
    if not domain.is_availability_change(current, proposed):
        return current
    provider = domain.stamped(proposed, previous_version=current["version"], now=utc_now())
    repo.save(provider, expected_version=current["version"])
    uow.emit(events.AVAILABILITY_CHANGED, subject=provider_id, data=events.availability_changed(provider),
             lane=domain.lane_for(provider["kind"]))
    return provider


def verify(uow: UnitOfWork, provider_id: str, verification: dict) -> dict:
    repo = Repository.of(uow)
    current = repo.get(provider_id)
    if current["verified"]:
        return current
    provider = domain.verified(current, now=utc_now())
    provider.update(verified_by=verification["verified_by"], verification_note=verification.get("note"))
    repo.save(provider, expected_version=current["version"])
    uow.emit(events.VERIFIED, subject=provider_id,
             data=events.verified(provider_id, provider["verified_at"], provider["verified_by"]),
             lane=domain.lane_for(provider["kind"]))
    return provider


def get(repo: Repository, provider_id: str) -> dict:
    return repo.get(provider_id)


def search(repo: Repository, filters: dict, limit: int, after: str | None) -> tuple[list[dict], str | None]:
    """A page of the providers the filters find, in id order, and the cursor of the next page (its last id)."""
    rows = repo.search(filters, today=utc_now().date(), after=after, limit=limit + 1)
    return paging.split_page(rows, limit)


def authenticate(repo: Repository, api_key: str) -> dict | None:
    """The key's provider and key id, and the provider's own lane (its calls travel in it); None for a dead key."""
    record = repo.key_ring().live(api_key, utc_now())
    if not record:
        return None
    return {"provider_id": record["owner_id"], "key_id": record["_id"],
            "lane": domain.lane_for(repo.get(record["owner_id"])["kind"])}  # a key's provider is never removed


def list_keys(repo: Repository, provider_id: str) -> list[dict]:
    repo.get(provider_id)
    now = utc_now()
    return [apikeys.to_wire(record, now) for record in repo.key_ring().of(provider_id)]


def create_key(uow: UnitOfWork, provider_id: str, label: str | None, max_live_keys: int) -> dict:
    return _change_keys(uow, provider_id, max_live_keys,
                        lambda ring, now: ring.issue(provider_id, apikeys.PROVIDER_ROLE, label, now))


def rotate_key(uow: UnitOfWork, provider_id: str, key_id: str, grace_seconds: int, max_live_keys: int) -> dict:
    return _change_keys(uow, provider_id, max_live_keys,
                        lambda ring, now: ring.rotate(provider_id, key_id, grace_seconds, now))


def revoke_key(uow: UnitOfWork, provider_id: str, key_id: str, max_live_keys: int) -> dict:
    return _change_keys(uow, provider_id, max_live_keys,
                        lambda ring, now: (None, ring.revoke(provider_id, key_id, now)))["key"]


def _change_keys(uow: UnitOfWork, provider_id: str, max_live_keys: int,
                 change: Callable[[KeyRing, datetime], tuple[str | None, dict]]) -> dict:
    """One change of a provider's key ring, for a provider that exists."""
    Repository.of(uow).get(provider_id)
    return apikeys.apply(uow, apikeys.PROVIDER, change, max_live_keys)


def health(repo: Repository) -> dict:
    return repo.health()
