"""Idempotency keys: a request's own, and those of a batch (each item's ``key``, or the request's ``Idempotency-Key``
plus its position)."""

from __future__ import annotations

from typing import Any

from shared.vocabulary.errors import ValidationFailed

MAX_HEADER_KEY = 90
MAX_KEY = 200


def load_key(key: Any) -> str | None:
    """A request's idempotency key: None (not sent), or a string of 1 to ``MAX_KEY`` characters (422 otherwise)."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
        raise ValidationFailed("The idempotency key is not valid.",
                               details={"idempotency_key": [f"A string of 1 to {MAX_KEY} characters."]})
    return key


def key_batch(items: list[dict], idempotency_key: Any, noun: str) -> list[dict]:
    """Give every item of ``items`` (each with ``key`` None or a string) its key; refuse a batch where one has none
    and no usable header key was sent, or where two share one."""
    header = idempotency_key if isinstance(idempotency_key, str) and 0 < len(idempotency_key) <= MAX_HEADER_KEY \
        else None
    for position, item in enumerate(items):
        if item["key"] is None:
            if header is None:
                raise ValidationFailed(f"Each {noun} needs an idempotency key.", details={
                    "key": [f"Give each {noun} a key, or send an Idempotency-Key header."]})
            item["key"] = f"{header}:{position}"
    keys = [item["key"] for item in items]
    if len(set(keys)) != len(keys):
        raise ValidationFailed(f"Two {noun}s in one batch share a key.", details={"key": ["Unique per item."]})
    return items
