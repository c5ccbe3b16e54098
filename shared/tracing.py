"""Correlation ids that follow a request across HTTP, RPC and events, and reach every log line.

nameko copies ``worker_ctx.data`` into the headers of every RPC call and event it sends and back into the
receiving worker's ``data``; the outbox relay writes the envelope's ``correlationid`` into the same header, so one
id follows a request from the HTTP edge through every service it touches.
"""

from __future__ import annotations

import contextvars
import uuid

from nameko.extensions import DependencyProvider

CORRELATION_KEY = "correlation_id"

correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
causation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("causation_id", default=None)


def new_id() -> str:
    return str(uuid.uuid4())


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


class Tracing(DependencyProvider):
    """Gives every worker a correlation id (inherited, or new) and exposes it to logging.

    For an event handler the incoming envelope's id becomes the causation id of whatever the worker emits.
    """

    # nameko calls get_dependency before worker_setup, so either may be the first to need the id.
    def get_dependency(self, worker_ctx) -> str:
        return self._ensure(worker_ctx)

    def worker_setup(self, worker_ctx) -> None:
        self._ensure(worker_ctx)

    @staticmethod
    def _ensure(worker_ctx) -> str:
        correlation_id = worker_ctx.data.get(CORRELATION_KEY)
        causation_id = None
        if worker_ctx.args:
            first = worker_ctx.args[0]
            if isinstance(first, dict) and "specversion" in first:
                correlation_id = correlation_id or first.get("correlationid")
                causation_id = first.get("id")
            elif hasattr(first, "headers") and hasattr(first, "environ"):
                correlation_id = first.headers.get("X-Correlation-ID") or correlation_id
        correlation_id = correlation_id or new_id()
        worker_ctx.data[CORRELATION_KEY] = correlation_id
        correlation_id_var.set(correlation_id)
        causation_id_var.set(causation_id)
        return correlation_id
