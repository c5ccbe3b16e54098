"""The providers service's MongoDB collection: documents, indexes and queries.

One document per provider, ``_id`` = provider id. Money is stored as ``Decimal128`` so rates compare
exactly in queries; ``available_from`` as an ISO date string (a calendar date, not an instant, and ISO
dates sort); the API key only as its SHA-256 digest.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database as MongoDatabase

from shared.runtime.outbox import pending_count
from shared.runtime.persistence import SessionRepository
from shared.vocabulary import apikeys
from shared.vocabulary.apikeys import KeyRing
from shared.vocabulary.errors import Conflict, NotFound
from shared.vocabulary.money import Money
from shared.vocabulary.terms import category_aliases

from . import domain

PROVIDERS = "providers"


def ensure_indexes(db: MongoDatabase) -> None:
    """One index per search filter, each ending in ``_id``: results are paged in ``_id`` order."""
    providers = db[PROVIDERS]
    # A provider keeps its first key's digest (unique, as before); its keys live in the key ring, which alone
    # authenticates.
    providers.create_index([("api_key_digest", ASCENDING)], name="api_key_digest", unique=True)
    apikeys.ensure_indexes(db, PROVIDERS)
    for name, field in (
        ("kind", "kind"),
        ("model", "models"),
        ("category", "categories"),
        ("country", "country"),
        ("language", "languages"),
        ("verified", "verified"),
        ("availability", "availability.status"),
    ):
        providers.create_index([(field, ASCENDING), ("_id", ASCENDING)], name=f"by_{name}")
    providers.create_index([("skills.name", ASCENDING), ("skills.level", ASCENDING)], name="by_skill")
    providers.create_index([("currency", ASCENDING), ("rates.hourly.amount", ASCENDING)],
                           name="by_hourly_rate")


# -- documents -----------------------------------------------------------------------------------------------


def _money_to_bson(value: Money | None) -> dict | None:
    return value.to_bson() if value is not None else None


def _money_from_bson(value: dict | None) -> Money | None:
    return Money.from_bson(value) if value is not None else None


def to_document(profile: dict) -> dict:
    doc = {k: v for k, v in profile.items() if k != "id"}
    doc["_id"] = profile["id"]
    rates = profile["rates"]
    doc["rates"] = {
        "hourly": _money_to_bson(rates.get("hourly")),
        "monthly_retainer": _money_to_bson(rates.get("monthly_retainer")),
        "per_unit": [{"unit": r["unit"], "price": r["price"].to_bson()} for r in rates.get("per_unit") or []],
    }
    available_from = profile["availability"].get("available_from")
    doc["availability"] = {
        "status": profile["availability"]["status"],
        "available_from": available_from.isoformat() if available_from else None,
    }
    return doc


def from_document(doc: dict) -> dict:
    profile = {k: v for k, v in doc.items() if k not in ("_id", "api_key_digest")}
    profile["id"] = doc["_id"]
    rates = doc["rates"]
    profile["rates"] = {
        "hourly": _money_from_bson(rates.get("hourly")),
        "monthly_retainer": _money_from_bson(rates.get("monthly_retainer")),
        "per_unit": [{"unit": r["unit"], "price": Money.from_bson(r["price"])}
                     for r in rates.get("per_unit") or []],
    }
    available_from = doc["availability"].get("available_from")
    profile["availability"] = {
        "status": doc["availability"]["status"],
        "available_from": date.fromisoformat(available_from) if available_from else None,
    }
    return profile


def search_query(filters: dict, today: date) -> dict:
    """Equality and range conditions only, so each filter can be served by its index."""
    query: dict = {}
    for name, field in (("kind", "kind"), ("model", "models"), ("category", "categories"),
                        ("country", "country"), ("language", "languages"), ("verified", "verified")):
        if name in filters:
            query[field] = filters[name]
    if "category" in filters:
        # A taxonomy category finds the providers that serve it under a legacy id too (helpdesk: it_support).
        aliases = category_aliases(filters["category"])
        query["categories"] = aliases[0] if len(aliases) == 1 else {"$in": list(aliases)}
    if "skill" in filters:
        query["skills"] = {"$elemMatch": {"name": filters["skill"],
                                          "level": {"$gte": filters.get("min_skill_level", 1)}}}
    if "max_hourly_rate" in filters:
        ceiling: Money = filters["max_hourly_rate"]
        query["currency"] = ceiling.currency
        query["rates.hourly.amount"] = {"$lte": ceiling.to_bson()["amount"]}
    if "available" in filters:
        # Mirrors domain.is_available_on: an available or limited status whose start date (if any) has come.
        day = today.isoformat()
        available = {"$and": [
            {"availability.status": {"$in": list(domain.AVAILABLE_STATUSES)}},
            {"$or": [{"availability.available_from": None}, {"availability.available_from": {"$lte": day}}]},
        ]}
        unavailable = {"$or": [
            {"availability.status": {"$nin": list(domain.AVAILABLE_STATUSES)}},
            {"availability.available_from": {"$gt": day}},
        ]}
        query.setdefault("$and", []).append(available if filters["available"] else unavailable)
    return query


# -- reads and writes ----------------------------------------------------------------------------------------


class Repository(SessionRepository):
    """The providers collection, its key ring and its outbox backlog: in a unit of work's transaction (``of``), or,
    for queries, outside any."""

    def get(self, provider_id: Any) -> dict:
        doc = None
        if isinstance(provider_id, str):
            doc = self.db[PROVIDERS].find_one({"_id": provider_id}, session=self.session)
        if doc is None:
            raise NotFound(f"No provider {provider_id!r}.")
        return from_document(doc)

    def insert(self, profile: dict, api_key_digest: str) -> None:
        doc = to_document(profile)
        doc["api_key_digest"] = api_key_digest
        self.db[PROVIDERS].insert_one(doc, session=self.session)

    def save(self, profile: dict, *, expected_version: int) -> None:
        """Write ``profile`` only if nobody wrote since ``expected_version`` was read (optimistic concurrency)."""
        doc = to_document(profile)
        provider_id = doc.pop("_id")
        result = self.db[PROVIDERS].update_one({"_id": provider_id, "version": expected_version}, {"$set": doc},
                                               session=self.session)
        if result.matched_count != 1:
            raise Conflict(f"Provider {provider_id!r} changed meanwhile; read it again and retry.")

    def search(self, filters: dict, *, today: date, after: str | None, limit: int) -> list[dict]:
        """Up to ``limit`` providers in ``_id`` order after ``after``."""
        query = search_query(filters, today)
        if after is not None:
            query["_id"] = {"$gt": after}
        docs = self.db[PROVIDERS].find(query, session=self.session).sort("_id", ASCENDING).limit(limit)
        return [from_document(d) for d in docs]

    def key_ring(self) -> KeyRing:
        """The providers' API keys, in this repository's transaction."""
        return KeyRing(self.db, apikeys.PROVIDER, self.session)

    def health(self) -> dict:
        """Raises when the database does not answer; else the number of events still to publish."""
        self.db.command("ping")
        return {"database": "ok", "outbox_backlog": pending_count(self.db)}
