"""The inbox: the record of which event each consumer has applied, kept in the consumer's own database.

``persistence`` writes the claim in the handler's transaction (``UnitOfWork.claim_event``) and ``messaging`` reads it
to tell a redelivered event from a handler's own duplicate key. Both need its name and key, and ``persistence``
imports ``messaging``: they live here so that ``messaging`` does not import ``persistence`` back.
"""

from __future__ import annotations

APPLIED_EVENTS = "applied_events"


def claim_id(consumer: str, event_id: str) -> str:
    """The ``applied_events`` record of ``consumer`` having applied ``event_id``."""
    return f"{consumer}:{event_id}"
