"""Idempotency keys of a batch: each item's own ``key``, or the request's ``Idempotency-Key`` plus its position."""

from __future__ import annotations

from typing import Any

from shared.errors import ValidationFailed

MAX_HEADER_KEY = 90


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
