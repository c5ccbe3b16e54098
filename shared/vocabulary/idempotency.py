"""Idempotency keys: a request's own, and those of a batch (each item's ``key``, or the request's ``Idempotency-Key``
plus its position), and the claim of a keyed batch against what was recorded before."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def claim_batch(items: list[dict], recorded: Callable[[str], dict | None], same: Iterable[str], noun: str,
                check: Callable[[dict], str | None], refused: str) -> list[tuple[dict, dict | None]]:
    """Each item of a keyed batch with what was recorded before under its key (None: it is new).

    A key recorded before with the same ``same`` fields is a duplicate; with other content it is refused. A new
    item is refused when ``check`` gives a reason (``check`` sees the new items in order, so it can count what the
    batch adds). One refusal refuses the whole batch: ``ValidationFailed(refused)`` with the reasons per key, and
    nothing of it is recorded."""
    fields = tuple(same)
    problems: dict[str, list[str]] = {}
    claims: list[tuple[dict, dict | None]] = []
    for item in items:
        earlier = recorded(item["key"])
        if earlier is not None:
            if any(earlier.get(k) != item.get(k) for k in fields):
                problems[item["key"]] = [f"This key was already used for a different {noun}."]
        elif (why := check(item)) is not None:
            problems[item["key"]] = [why]
        claims.append((item, earlier))
    if problems:
        raise ValidationFailed(refused, details=problems)
    return claims
