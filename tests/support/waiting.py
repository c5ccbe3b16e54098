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
