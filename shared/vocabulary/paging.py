"""Which page of a list a caller asks for, checked the same way by every service's list RPC.

A list request is an optional status filter, a page size (``limit``, 1 to ``MAX_LIMIT``, default ``DEFAULT_LIMIT``)
and a ``cursor``: the ``next_cursor`` of the page before, which is the last id of that page (``<prefix>_`` and 32
hexadecimal digits, so the API description can give its exact pattern).

Every problem is reported at once, as one ``ValidationFailed`` whose details name the fields: ``status``,
``limit``, ``cursor``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.fields import page_after

MAX_LIMIT = 100
DEFAULT_LIMIT = 20

NOT_VALID = "The list request is not valid."
NOT_ISSUED = "Not a cursor this API gave out."


def load_page(status: Any, limit: Any, cursor: Any, *, statuses: Collection[str] = (),
              prefix: str = "") -> tuple[str | None, int, str | None]:
    """The status filter (one of ``statuses``), the page size and the id to continue after.

    ``limit`` may be a whole number or its decimal string (a query parameter); None means ``DEFAULT_LIMIT``.
    The cursor is a ``<prefix>_…`` id.
    """
    problems: dict[str, list[str]] = {}
    if status is not None and status not in statuses:
        problems["status"] = [f"Must be one of: {', '.join(statuses)}." if statuses else "Lists no status."]
    if limit is None:
        limit = DEFAULT_LIMIT
    if isinstance(limit, str) and limit.isdigit():
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        problems["limit"] = [f"Must be a whole number from 1 to {MAX_LIMIT}."]
    after = None
    if cursor is not None:
        after = page_after(cursor, prefix)
        if after is None:
            problems["cursor"] = [NOT_ISSUED]
    if problems:
        raise ValidationFailed(NOT_VALID, details=problems)
    return status, limit, after


def encode_cursor(last_id: str) -> str:
    """The ``next_cursor`` after a page ending with ``last_id``: that id."""
    return last_id


def split_page(rows: Sequence[dict], limit: int) -> tuple[list[dict], str | None]:
    """A page read with one row more than ``limit`` (so no second query tells whether another follows): its
    first ``limit`` rows and the cursor of the next page, None on the last one."""
    page = list(rows[:limit])
    return page, encode_cursor(page[-1]["id"]) if len(rows) > limit else None
