"""What a service emitted, read from its outbox (written in the same transaction as the change)."""

from shared.runtime import contracts
from shared.runtime.outbox import outbox_events


def outbox(database, routing_key: str) -> list[dict]:
    """The envelopes of ``routing_key`` in the order written, each checked against its contract."""
    envelopes = [doc["envelope"] for doc in outbox_events(database, {"routing_key": routing_key})]
    for envelope in envelopes:
        assert contracts.errors(envelope) == [], envelope["type"]
    return envelopes
