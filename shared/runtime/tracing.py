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


def handled_event(worker_ctx) -> dict | None:
    """The event envelope a worker is handling, when it is an event handler's worker."""
    args = getattr(worker_ctx, "args", None) or ()
    if args and isinstance(args[0], dict) and "specversion" in args[0]:
        return args[0]
    return None


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
        event = handled_event(worker_ctx)
        if event is not None:
            correlation_id = correlation_id or event.get("correlationid")
            causation_id = event.get("id")
        elif worker_ctx.args and hasattr(worker_ctx.args[0], "headers") and hasattr(worker_ctx.args[0], "environ"):
            correlation_id = worker_ctx.args[0].headers.get("X-Correlation-ID") or correlation_id
        correlation_id = correlation_id or new_id()
        worker_ctx.data[CORRELATION_KEY] = correlation_id
        correlation_id_var.set(correlation_id)
        causation_id_var.set(causation_id)
        return correlation_id
