"""What a service emitted, read from its outbox (written in the same transaction as the change)."""

from shared.runtime import contracts


def outbox(database, routing_key: str) -> list[dict]:
    """The envelopes of ``routing_key`` in the order written, each checked against its contract."""
    envelopes = [doc["envelope"] for doc in database.outbox.find({"routing_key": routing_key}).sort("_id", 1)]
    for envelope in envelopes:
        assert contracts.errors(envelope) == [], envelope["type"]
    return envelopes
