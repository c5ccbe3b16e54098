"""Waiting for something that happens asynchronously (an event consumed, a process ready)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05,
             ignore_errors: bool = False) -> bool:
    """Poll ``predicate`` until it is truthy (True) or ``timeout`` seconds pass (False).

    ``ignore_errors`` treats an exception as "not yet", for predicates that probe something still starting.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            if not ignore_errors:
                raise
        time.sleep(interval)
    return False


def applied(container, event_id: str, timeout: float = 20.0) -> bool:
    """Whether the service in ``container`` recorded ``event_id`` as applied within ``timeout`` seconds.

    An event the catalog marks every_lane reaches one queue per lane: an ``entrypoint_waiter`` may return on the
    copy that lost the race (answered as a duplicate, or deferred after a write conflict) before the other commits.
    """
    from pymongo import MongoClient

    config = container.config
    with MongoClient(config["MONGO_URI"]) as client:
        database = client[config["MONGO_DATABASE"]]
        return wait_for(lambda: applied_by_any(database, event_id), timeout=timeout)


def applied_by_any(database, event_id: str) -> bool:
    """Whether some consumer of the service owning ``database`` has recorded ``event_id`` as applied."""
    import re

    from shared.runtime.inbox import APPLIED_EVENTS

    return database[APPLIED_EVENTS].find_one({"claims": {"$regex": f":{re.escape(event_id)}$"}}) is not None
