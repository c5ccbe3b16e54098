"""Matching's own read model, built only from events: providers, tenants and open postings."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.database import Database

PROVIDERS = "providers"
TENANTS = "tenants"
POSTINGS = "postings"


def ensure_indexes(db: Database) -> None:
    db[PROVIDERS].create_index([("models", ASCENDING), ("categories", ASCENDING)], name="model_category")
    db[POSTINGS].create_index([("status", ASCENDING)], name="status")


def upsert_snapshot(db: Database, collection: str, snapshot: dict, session: ClientSession) -> bool:
    """Store a full snapshot unless a newer version is already there (events may arrive out of order).

    Returns whether the read model changed.
    """
    version = snapshot.get("version", 0)
    existing = db[collection].find_one({"_id": snapshot["id"]}, {"version": 1}, session=session)
    if existing is not None and existing.get("version", 0) >= version:
        return False
    document = {k: v for k, v in snapshot.items() if k != "id"}
    db[collection].update_one({"_id": snapshot["id"]}, {"$set": document}, upsert=True, session=session)
    return True


def set_fields(db: Database, collection: str, key: str, fields: dict, session: ClientSession) -> None:
    db[collection].update_one({"_id": key}, {"$set": fields}, upsert=True, session=session)


def get(db: Database, collection: str, key: str) -> dict | None:
    document = db[collection].find_one({"_id": key})
    if document is None:
        return None
    document["id"] = document.pop("_id")
    return document


def counts(db: Database) -> dict:
    return {
        "providers": db[PROVIDERS].estimated_document_count(),
        "tenants": db[TENANTS].estimated_document_count(),
        "open_postings": db[POSTINGS].count_documents({"status": "open"}),
    }
