"""Tenants provisioned for broker-path tests, and reading a queue as the platform."""

from __future__ import annotations

from kombu import Connection, Queue

from tests.support import samples
from tests.support.waiting import wait_for


def new_tenant(postings, admin, name: str):
    """A tenant the postings service knows, and its broker user's credentials."""
    tenant = postings.create_tenant({**samples.tenant(), "name": name})["tenant"]
    return tenant, admin.grant(tenant["id"])


def take(amqp_uri: str, queue: str, timeout: float = 10.0):
    """The next message of ``queue`` (acked), waiting for it up to ``timeout`` seconds."""
    taken = []

    def arrived() -> bool:
        with Connection(amqp_uri) as connection:
            message = Queue(queue, no_declare=True)(connection.channel()).get(no_ack=True)
        if message is not None:
            taken.append(message)
        return bool(taken)

    assert wait_for(arrived, timeout=timeout), f"nothing arrived in {queue}"
    return taken[0]
