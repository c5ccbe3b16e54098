"""A service's stored form of its resources: the Python form, except that decimal strings under the given keys
(money ``amount`` and the like) are ``Decimal128`` (exact, sortable) and the resource's ``id`` is ``_id``.

Reading a ``Decimal128`` back gives the same decimal string, so a value survives a round trip unchanged; times
are taken at the millisecond precision MongoDB keeps (``current_time``) for the same reason.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bson.decimal128 import Decimal128


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def current_time() -> datetime:
    """Now, in UTC, at the millisecond precision MongoDB stores, so a value reads back exactly as written."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class StoredForm:
    def __init__(self, decimal_keys: frozenset[str]):
        self.decimal_keys = decimal_keys

    def to_stored(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: self.to_stored(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.to_stored(v) for v in value]
        if key in self.decimal_keys and isinstance(value, str):
            return Decimal128(Decimal(value))
        return value

    def from_stored(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.from_stored(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.from_stored(v) for v in value]
        if isinstance(value, Decimal128):
            return format(value.to_decimal(), "f")
        return value

    def document(self, resource: dict) -> dict:
        return {"_id": resource["id"], **self.to_stored({k: v for k, v in resource.items() if k != "id"})}

    def resource(self, document: dict | None) -> dict | None:
        if document is None:
            return None
        return {"id": document["_id"], **self.from_stored({k: v for k, v in document.items() if k != "_id"})}
