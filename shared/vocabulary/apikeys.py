"""API keys: ``tlk_<kind>_<secret>``, shown once, stored only as a SHA-256 hash.

A key carries 256 random bits, so a plain SHA-256 (not a slow password hash) is the right store: it cannot be
brute-forced, and lookup by hash is one indexed read. The kind tells the gateway which service owns the key:
``c`` a client organisation's key (postings), ``p`` a provider's key (providers).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database as MongoDatabase
from pymongo.errors import DuplicateKeyError

from shared.vocabulary.errors import Conflict, NotFound
from shared.vocabulary.times import rfc3339

CLIENT = "c"
PROVIDER = "p"
KINDS = (CLIENT, PROVIDER)


def generate(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown key kind {kind!r}")
    return f"tlk_{kind}_{secrets.token_urlsafe(32)}"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def kind_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) == 3 and parts[0] == "tlk" and parts[1] in KINDS and len(parts[2]) >= 32:
        return parts[1]
    return None


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# -- the key ring: each key-issuing service keeps its keys in an ``api_keys`` collection of its own database ------

KEYS = "api_keys"
RINGS = "api_key_rings"  # one document per owner, written by each issue and each revocation of a last-key role
OWNER_ROLE = "owner"
# A client organisation's keys carry one of these; a provider's keys are all "provider".
CLIENT_ROLES = (OWNER_ROLE, "manager", "finance")
PROVIDER_ROLE = "provider"
# A rotated key keeps working this long at most (the API refuses a longer grace).
MAX_GRACE_SECONDS = 30 * 24 * 3600
# Live keys one owner may hold (``TASKLINKR_MAX_API_KEYS``): past it issuing and rotating are refused.
DEFAULT_MAX_LIVE_KEYS = 20
_MIGRATED = "api_keys_adopted"


def ensure_indexes(db: MongoDatabase, owners: str) -> None:
    """The key ring's indexes, and (once) every key an ``owners`` document still carries as ``api_key_digest``.

    Before key rotation a tenant's or provider's one key lived on its own document; adopting them keeps those
    keys working as owner keys that can now be listed, rotated and revoked.
    """
    db[KEYS].create_index([("digest", ASCENDING)], name="digest", unique=True)
    db[KEYS].create_index([("owner_id", ASCENDING), ("_id", ASCENDING)], name="owner_id")
    if db["migrations"].find_one({"_id": _MIGRATED}) is not None:
        return
    for document in db[owners].find({"api_key_digest": {"$type": "string"}}, {"api_key_digest": 1}):
        try:
            db[KEYS].insert_one(_record(document["_id"], OWNER_ROLE, None, document["api_key_digest"],
                                        datetime.now(UTC)))
        except DuplicateKeyError:
            pass
    db["migrations"].update_one({"_id": _MIGRATED}, {"$set": {"at": datetime.now(UTC)}}, upsert=True)


def _record(owner_id: str, role: str, label: str | None, key_digest: str, now: datetime) -> dict:
    return {"_id": f"key_{uuid.uuid4().hex}", "owner_id": owner_id, "role": role, "label": label,
            "digest": key_digest, "created_at": now, "expires_at": None, "revoked_at": None,
            "replaced_by": None, "replaces": None}


def status_of(record: dict, now: datetime) -> str:
    if record["revoked_at"] is not None:
        return "revoked"
    if record["expires_at"] is not None:
        return "expiring" if record["expires_at"] > now else "expired"
    return "active"


def to_wire(record: dict, now: datetime) -> dict:
    """A key as the API shows it: never its digest, never the key."""
    def moment(value: datetime | None) -> str | None:
        return rfc3339(value) if value else None

    return {"id": record["_id"], "role": record["role"], "label": record["label"], "status": status_of(record, now),
            "created_at": moment(record["created_at"]), "expires_at": moment(record["expires_at"]),
            "revoked_at": moment(record["revoked_at"]), "replaced_by": record["replaced_by"],
            "replaces": record["replaces"]}


def max_live_keys(config: dict) -> int:
    """The ``MAX_API_KEYS`` of a service's configuration."""
    return int(config.get("MAX_API_KEYS", DEFAULT_MAX_LIVE_KEYS))


class Transaction(Protocol):
    """What a key ring change needs of its unit of work (``shared.runtime.persistence.UnitOfWork``): the service's
    database and the session of the transaction. Named by shape, so the vocabulary does not import the runtime."""

    db: MongoDatabase
    session: ClientSession


def apply(uow: Transaction, kind: str, change: Callable[[KeyRing, datetime], tuple[str | None, dict]],
          max_live_keys: int = DEFAULT_MAX_LIVE_KEYS) -> dict:
    """Run one change of the key ring in ``uow``'s transaction; its answer: the key record, and a new key once."""
    now = datetime.now(UTC)
    api_key, record = change(KeyRing(uow.db, kind, uow.session, max_live_keys), now)
    answer = {"key": to_wire(record, now)}
    return dict(answer, api_key=api_key) if api_key else answer


class KeyRing:
    """The keys of one service's principals (tenants in postings, providers in providers), by owner.

    Rotation issues a new key with the same role; the old one keeps working for the grace period the caller
    chose (0: refused at once) and then expires. Revocation refuses a key at once. Only the digest is stored. An
    owner holds at most ``max_live_keys`` live keys (a rotated key in its grace period counts: it still works).
    """

    def __init__(self, db: MongoDatabase, kind: str, session: ClientSession | None = None,
                 max_live_keys: int = DEFAULT_MAX_LIVE_KEYS):
        self.db = db
        self.kind = kind
        self.session = session
        self.max_live_keys = max_live_keys

    @property
    def keys(self) -> Collection:
        return self.db[KEYS]

    def issue(self, owner_id: str, role: str, label: str | None, now: datetime,
              replaces: str | None = None) -> tuple[str, dict]:
        """Another key of an owner: the key itself (shown once) and its record; 409 when the owner holds its most
        live keys."""
        # Two issues at once each count the keys of their own snapshot: both writing the owner's ring document
        # makes the later one conflict, and its retry counts the earlier one's key.
        self.db[RINGS].update_one({"_id": owner_id}, {"$inc": {"issued": 1}}, upsert=True, session=self.session)
        live = self.keys.count_documents(
            {"owner_id": owner_id, "revoked_at": None, "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]},
            session=self.session,
        )
        if live >= self.max_live_keys:
            raise Conflict(f"At most {self.max_live_keys} live keys: revoke one before issuing another.",
                           {"live_keys": live, "max_live_keys": self.max_live_keys})
        return self.first_key(owner_id, role, label, now, replaces)

    def first_key(self, owner_id: str, role: str, label: str | None, now: datetime,
                  replaces: str | None = None) -> tuple[str, dict]:
        """A key for an owner that has none yet (it is being created): the key itself and its record."""
        key = generate(self.kind)
        record = _record(owner_id, role, label, digest(key), now)
        record["replaces"] = replaces
        self.keys.insert_one(record, session=self.session)
        return key, record

    def live(self, key: str, now: datetime) -> dict | None:
        """The record of a key that may be used now: issued by this service, not revoked, not expired."""
        if not isinstance(key, str) or kind_of(key) != self.kind:
            return None
        record = self.keys.find_one({"digest": digest(key), "revoked_at": None}, session=self.session)
        if record is None or (record["expires_at"] is not None and record["expires_at"] <= now):
            return None
        return record

    def of(self, owner_id: str) -> list[dict]:
        return list(self.keys.find({"owner_id": owner_id}, session=self.session).sort("_id", ASCENDING))

    def get(self, owner_id: str, key_id: str) -> dict:
        record = self.keys.find_one({"_id": key_id, "owner_id": owner_id}, session=self.session)
        if record is None:
            raise NotFound(f"No key {key_id!r}.")
        return record

    def rotate(self, owner_id: str, key_id: Any, grace_seconds: int, now: datetime) -> tuple[str, dict]:
        """A new key replacing ``key_id``, which stops working ``grace_seconds`` from now."""
        old = self.get(owner_id, key_id if isinstance(key_id, str) else "")
        if status_of(old, now) in ("revoked", "expired") or old["replaced_by"] is not None:
            raise Conflict("Only a live key that was not rotated yet can be rotated; rotate its replacement.",
                           {"key_id": old["_id"], "status": status_of(old, now)})
        key, new = self.issue(owner_id, old["role"], old["label"], now, replaces=old["_id"])
        ends = now + timedelta(seconds=max(0, min(int(grace_seconds), MAX_GRACE_SECONDS)))
        # The filter is the precondition: a concurrent rotation or revocation of the same key loses here.
        changed = self.keys.update_one(
            {"_id": old["_id"], "revoked_at": None, "replaced_by": None},
            {"$set": {"replaced_by": new["_id"], "expires_at": ends}}, session=self.session,
        )
        if changed.matched_count != 1:
            raise Conflict("The key was rotated or revoked meanwhile.", {"key_id": old["_id"]})
        return key, new

    def revoke(self, owner_id: str, key_id: Any, now: datetime) -> dict:
        """Refuse ``key_id`` from now on (repeating it answers the same key); the last live owner key stays."""
        record = self.get(owner_id, key_id if isinstance(key_id, str) else "")
        if record["revoked_at"] is not None:
            return record
        # Nobody locks themselves out: a tenant keeps one live owner key, a provider one live key.
        if record["role"] in (OWNER_ROLE, PROVIDER_ROLE) and status_of(record, now) == "active":
            # Two revocations of the last two such keys each see the other key live in their own snapshot and
            # write different documents: both would commit. Both writing the owner's ring document makes the
            # later one conflict, and its retry sees the earlier one's revocation.
            self.db[RINGS].update_one({"_id": owner_id}, {"$inc": {"revocations": 1}}, upsert=True,
                                      session=self.session)
            others = [r for r in self.of(owner_id) if r["_id"] != record["_id"] and r["role"] == record["role"]
                      and status_of(r, now) == "active"]
            if not others:
                raise Conflict(f"This is the last {record['role']} key: rotate it (grace_seconds 0 refuses it at "
                               f"once) or create another {record['role']} key first.", {"key_id": record["_id"]})
        self.keys.update_one({"_id": record["_id"], "revoked_at": None}, {"$set": {"revoked_at": now}},
                             session=self.session)
        return dict(record, revoked_at=now)
