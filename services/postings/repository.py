"""The postings service's MongoDB collections: tenants and postings, their indexes and their stored form.

The stored form differs from the Python form in three places: money amounts and SLA targets are ``Decimal128``
(exact, sortable), dates are ``YYYY-MM-DD`` strings (MongoDB has no date-only type and these sort correctly),
and the document's ``_id`` is the resource id. Every read and write in a transaction passes the unit of work's
session.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bson.decimal128 import Decimal128
from pymongo import ASCENDING
from pymongo.database import Database as MongoDatabase

from shared.runtime.outbox import pending_count
from shared.runtime.persistence import SessionRepository
from shared.vocabulary import apikeys
from shared.vocabulary.apikeys import KeyRing
from shared.vocabulary.money import Money
from shared.vocabulary.stored import current_time as current_time  # re-exported: the service reads its clock here
from shared.vocabulary.stored import new_id as new_id

TENANTS = "tenants"
POSTINGS = "postings"
SHORTLISTS = "shortlists"
INVITATIONS = "invitations"
PROPOSALS = "proposals"


def ensure_indexes(db: MongoDatabase) -> None:
    # A tenant keeps its first key's digest (unique, as before); its keys live in the key ring, which alone
    # authenticates.
    db[TENANTS].create_index([("api_key_digest", ASCENDING)], name="api_key_digest", unique=True)
    apikeys.ensure_indexes(db, TENANTS)
    # Listing pages through one tenant's postings in id order, with or without a status filter.
    db[POSTINGS].create_index(
        [("tenant_id", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)], name="tenant_status_id"
    )
    db[POSTINGS].create_index([("tenant_id", ASCENDING), ("_id", ASCENDING)], name="tenant_id")
    # Only postings created with a key take part: most have none, and they must not collide on a missing key.
    db[POSTINGS].create_index(
        [("tenant_id", ASCENDING), ("idempotency_key", ASCENDING)],
        name="tenant_idempotency_key",
        unique=True,
        partialFilterExpression={"idempotency_key": {"$type": "string"}},
    )
    # A provider is invited to a posting once; inviting again answers the same invitation.
    db[INVITATIONS].create_index([("posting_id", ASCENDING), ("provider_id", ASCENDING)],
                                 name="posting_provider", unique=True)
    # A provider's inbox, paged in id order, with or without a status filter.
    db[INVITATIONS].create_index([("provider_id", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)],
                                 name="provider_status_id")
    db[INVITATIONS].create_index([("provider_id", ASCENDING), ("_id", ASCENDING)], name="provider_id")
    # One negotiation per invitation.
    db[PROPOSALS].create_index([("invitation_id", ASCENDING)], name="invitation_id", unique=True)
    db[PROPOSALS].create_index([("posting_id", ASCENDING), ("_id", ASCENDING)], name="posting_id")


# -- stored form ---------------------------------------------------------------------------------------------


def _tenant_from_document(document: dict) -> dict:
    tenant = {key: value for key, value in document.items() if key not in ("_id", "api_key_digest")}
    return {"id": document["_id"], **tenant}


def _posting_to_document(posting: dict) -> dict:
    document = {key: value for key, value in posting.items() if key != "id"}
    document["budget"] = posting["budget"].to_bson() if posting["budget"] is not None else None
    document["start_date"] = posting["start_date"].isoformat() if posting["start_date"] is not None else None
    document["sla_requirements"] = [
        {**requirement, "target": Decimal128(requirement["target"])}
        for requirement in posting["sla_requirements"]
    ]
    return document


def _posting_from_document(document: dict) -> dict:
    posting = {key: value for key, value in document.items()
               if key not in ("_id", "idempotency_key", "request_fingerprint")}
    posting["budget"] = Money.from_bson(document["budget"]) if document["budget"] is not None else None
    posting["start_date"] = date.fromisoformat(document["start_date"]) if document["start_date"] else None
    posting["sla_requirements"] = [
        {**requirement, "target": requirement["target"].to_decimal()}
        for requirement in document["sla_requirements"]
    ]
    return {"id": document["_id"], **posting}


# -- access --------------------------------------------------------------------------------------------------


class Repository(SessionRepository):
    """Tenants and postings, read and written inside one transaction (or, for queries, outside any)."""

    # tenants

    def insert_tenant(self, tenant: dict, api_key_digest: str) -> None:
        document = {key: value for key, value in tenant.items() if key != "id"}
        self.db[TENANTS].insert_one(
            {"_id": tenant["id"], **document, "api_key_digest": api_key_digest}, session=self.session
        )

    def tenant(self, tenant_id: Any) -> dict | None:
        if not isinstance(tenant_id, str):
            return None
        document = self.db[TENANTS].find_one({"_id": tenant_id}, session=self.session)
        return _tenant_from_document(document) if document else None

    def key_ring(self) -> KeyRing:
        """The tenants' API keys, in this repository's transaction."""
        return KeyRing(self.db, apikeys.CLIENT, self.session)

    def health(self) -> dict:
        """Raises when the database does not answer; else the number of events still to publish."""
        self.db.command("ping")
        return {"database": "ok", "outbox_backlog": pending_count(self.db)}

    # postings

    def insert_posting(self, posting: dict, *, idempotency_key: str | None = None,
                       request_fingerprint: str | None = None) -> None:
        document = {"_id": posting["id"], **_posting_to_document(posting)}
        if idempotency_key is not None:
            document["idempotency_key"] = idempotency_key
            document["request_fingerprint"] = request_fingerprint
        self.db[POSTINGS].insert_one(document, session=self.session)

    def posting(self, tenant_id: Any, posting_id: Any) -> dict | None:
        """A tenant's posting; another tenant's is as absent as an unknown one."""
        if not isinstance(tenant_id, str) or not isinstance(posting_id, str):
            return None
        document = self.db[POSTINGS].find_one(
            {"_id": posting_id, "tenant_id": tenant_id}, session=self.session
        )
        return _posting_from_document(document) if document else None

    def posting_by_idempotency_key(
        self, tenant_id: str, idempotency_key: str
    ) -> tuple[dict, str | None] | None:
        """The posting an earlier request with this key created, and that request's fingerprint."""
        document = self.db[POSTINGS].find_one(
            {"tenant_id": tenant_id, "idempotency_key": idempotency_key}, session=self.session
        )
        if document is None:
            return None
        return _posting_from_document(document), document.get("request_fingerprint")

    def replace_posting(self, posting: dict, *, expected_version: int) -> bool:
        """Stores a new version if the stored one is still ``expected_version``; False if another won."""
        fields = _posting_to_document(posting)
        result = self.db[POSTINGS].update_one(
            {"_id": posting["id"], "tenant_id": posting["tenant_id"], "version": expected_version},
            {"$set": fields},
            session=self.session,
        )
        return result.matched_count == 1

    def postings_page(
        self, tenant_id: str, *, status: str | None, after: str | None, limit: int
    ) -> list[dict]:
        """Up to ``limit`` of a tenant's postings in id order, starting after the id ``after``."""
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if status is not None:
            query["status"] = status
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self.db[POSTINGS].find(query, session=self.session).sort("_id", ASCENDING).limit(limit)
        return [_posting_from_document(document) for document in cursor]


# -- shortlists, invitations and proposals: stored form --------------------------------------------------------


def _money_in(value: Money | None) -> dict | None:
    return value.to_bson() if value is not None else None


def _money_out(value: dict | None) -> Money | None:
    return Money.from_bson(value) if value is not None else None


def _date_in(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date_out(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _terms_in(terms: dict) -> dict:
    return {**terms, "price": _money_in(terms["price"]), "available_from": _date_in(terms["available_from"])}


def _terms_out(terms: dict) -> dict:
    return {**terms, "price": _money_out(terms["price"]), "available_from": _date_out(terms["available_from"])}


def _invitation_to_document(invitation: dict) -> dict:
    summary = invitation["posting"]
    document = {key: value for key, value in invitation.items() if key != "id"}
    document["posting"] = {**summary, "budget": _money_in(summary["budget"]),
                           "start_date": _date_in(summary["start_date"])}
    return document


def _invitation_from_document(document: dict) -> dict:
    invitation = {key: value for key, value in document.items() if key != "_id"}
    summary = document["posting"]
    invitation["posting"] = {**summary, "budget": _money_out(summary["budget"]),
                             "start_date": _date_out(summary["start_date"])}
    return {"id": document["_id"], **invitation}


def _proposal_to_document(proposal: dict) -> dict:
    document = {key: value for key, value in proposal.items() if key != "id"}
    document["terms"] = _terms_in(proposal["terms"])
    document["history"] = [{**step, "terms": _terms_in(step["terms"])} for step in proposal["history"]]
    return document


def _proposal_from_document(document: dict) -> dict:
    proposal = {key: value for key, value in document.items() if key != "_id"}
    proposal["terms"] = _terms_out(document["terms"])
    proposal["history"] = [{**step, "terms": _terms_out(step["terms"])} for step in document["history"]]
    return {"id": document["_id"], **proposal}


class NegotiationRepository(Repository):
    """The shortlist projection, invitations and proposals of the postings database."""

    # shortlists (a projection of matching's events; scores stay decimal strings as matching sent them)

    def shortlist(self, posting_id: str) -> dict | None:
        document = self.db[SHORTLISTS].find_one({"_id": posting_id}, session=self.session)
        return {"posting_id": document["_id"], **{k: v for k, v in document.items() if k != "_id"}} \
            if document else None

    def save_shortlist(self, shortlist: dict) -> None:
        document = {key: value for key, value in shortlist.items() if key != "posting_id"}
        self.db[SHORTLISTS].replace_one({"_id": shortlist["posting_id"]}, document, upsert=True,
                                        session=self.session)

    # invitations

    def insert_invitation(self, invitation: dict) -> None:
        self.db[INVITATIONS].insert_one({"_id": invitation["id"], **_invitation_to_document(invitation)},
                                        session=self.session)

    def invitation(self, invitation_id: Any) -> dict | None:
        if not isinstance(invitation_id, str):
            return None
        document = self.db[INVITATIONS].find_one({"_id": invitation_id}, session=self.session)
        return _invitation_from_document(document) if document else None

    def invitation_of(self, posting_id: str, provider_id: str) -> dict | None:
        document = self.db[INVITATIONS].find_one({"posting_id": posting_id, "provider_id": provider_id},
                                                 session=self.session)
        return _invitation_from_document(document) if document else None

    def invitations_of_posting(self, posting_id: str) -> list[dict]:
        cursor = self.db[INVITATIONS].find({"posting_id": posting_id}, session=self.session).sort("_id", ASCENDING)
        return [_invitation_from_document(document) for document in cursor]

    def invitations_page(self, provider_id: str, *, status: str | None, after: str | None,
                         limit: int) -> list[dict]:
        query: dict[str, Any] = {"provider_id": provider_id}
        if status is not None:
            query["status"] = status
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self.db[INVITATIONS].find(query, session=self.session).sort("_id", ASCENDING).limit(limit)
        return [_invitation_from_document(document) for document in cursor]

    def replace_invitation(self, invitation: dict, *, expected_version: int) -> bool:
        result = self.db[INVITATIONS].update_one(
            {"_id": invitation["id"], "version": expected_version},
            {"$set": _invitation_to_document(invitation)}, session=self.session,
        )
        return result.matched_count == 1

    # proposals

    def insert_proposal(self, proposal: dict) -> None:
        self.db[PROPOSALS].insert_one({"_id": proposal["id"], **_proposal_to_document(proposal)},
                                      session=self.session)

    def proposal(self, proposal_id: Any) -> dict | None:
        if not isinstance(proposal_id, str):
            return None
        document = self.db[PROPOSALS].find_one({"_id": proposal_id}, session=self.session)
        return _proposal_from_document(document) if document else None

    def proposals_of_posting(self, posting_id: str) -> list[dict]:
        cursor = self.db[PROPOSALS].find({"posting_id": posting_id}, session=self.session).sort("_id", ASCENDING)
        return [_proposal_from_document(document) for document in cursor]

    def replace_proposal(self, proposal: dict, *, expected_version: int) -> bool:
        result = self.db[PROPOSALS].update_one(
            {"_id": proposal["id"], "version": expected_version},
            {"$set": _proposal_to_document(proposal)}, session=self.session,
        )
        return result.matched_count == 1
