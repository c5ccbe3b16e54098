"""Consuming events: one decorator that makes a nameko event handler idempotent.

    @subscribe("providers", "provider.registered.v1")
    def on_provider_registered(self, uow, envelope): ...

The handler runs inside a transaction of the service's ``Database`` (attribute ``store`` by default) together with
the record that this consumer applied this event id: a redelivered or duplicated event changes nothing the second
time. Queues follow nameko's naming, ``evt-<source>-<type>--<service>.<method>``, and are declared before anyone
publishes by ``shared.topology`` from ``contracts-schema/catalog.json``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from nameko.events import SERVICE_POOL, event_handler
from pymongo.errors import DuplicateKeyError

log = logging.getLogger(__name__)


def queue_name(source: str, routing_key: str, service: str, method: str) -> str:
    return f"evt-{source}-{routing_key}--{service}.{method}"


def subscribe(source: str, routing_key: str, *, store_attr: str = "store") -> Callable:
    def decorator(method: Callable) -> Callable:
        @functools.wraps(method)
        def handle(self, envelope: dict):
            if not isinstance(envelope, dict) or "id" not in envelope or "data" not in envelope:
                log.error("dropping a message on %s that is not an event envelope", routing_key)
                return None
            store = getattr(self, store_attr)
            consumer = f"{self.name}.{method.__name__}"

            def work(uow):
                if not uow.claim_event(envelope["id"], consumer):
                    log.info("event %s already applied by %s", envelope["id"], consumer)
                    return None
                return method(self, uow, envelope)

            try:
                return store.transact(work)
            except DuplicateKeyError:
                # A concurrent delivery of the same event committed first.
                log.info("event %s applied concurrently by %s", envelope["id"], consumer)
                return None

        return event_handler(source, routing_key, handler_type=SERVICE_POOL, reliable_delivery=True)(handle)

    return decorator
