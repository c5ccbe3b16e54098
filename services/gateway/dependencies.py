"""The gateway's DependencyProviders: RPC calls that give up in time, and the health probe."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import eventlet
from kombu import Connection
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import ReplyListener, RpcProxy, ServiceProxy

from services.gateway.errors import ServiceTimeout, ServiceUnavailable
from shared.runner import runnable_services

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0
# The services whose health the gateway reports: every service of the platform that runs in this deployment.
CALLED_SERVICES = tuple(name for name in runnable_services() if name != "gateway")


def call_with_timeout(method: Any, *args: Any, timeout: float, **kwargs: Any) -> Any:
    """Call a nameko RPC method (``self.postings.get_posting``), waiting at most ``timeout`` seconds.

    nameko's own call waits forever; a request stuck on a slow service would hold an HTTP worker and the client
    indefinitely. A late answer is dropped by the reply listener (unknown correlation id). The timeout covers
    sending the request too: its publish waits for the broker's confirm, which a broker under a resource alarm
    holds back. The proxies' requests expire after the same time (``TimedRpcProxy``), so one the service did not
    take in time is never run after the client was told to retry.
    """
    timer = eventlet.Timeout(timeout)
    try:
        try:
            reply = method.call_async(*args, **kwargs)
        except UnknownService as exc:
            raise ServiceUnavailable(
                "A service this request needs is not running; try again later.", {"service": exc.args[0]}
            ) from exc
        return reply.result()
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        raise ServiceTimeout(
            "The service did not answer in time. The request may or may not have been applied: it is safe to "
            "retry (for POST /v1/postings, with the same Idempotency-Key).",
            {"timeout_seconds": timeout},
        ) from None
    finally:
        timer.cancel()


class TimedRpcProxy(RpcProxy):
    """``RpcProxy`` whose requests expire (a message TTL of ``RPC_TIMEOUT_SECONDS``) when the caller stops waiting.

    A request still queued then (its service was down, or busy with others) has been answered 504 and the client
    retries; run later, it would do the work a second time. Expired, the broker drops it unread.
    """

    def setup(self) -> None:
        super().setup()
        self.options = {**self.options, "expiration": float(self.container.config.get("RPC_TIMEOUT_SECONDS", 30))}


class TimedRpc(DependencyProvider):
    """``self.rpc(self.postings.get_posting, tenant_id, posting_id)``: a call bounded by ``RPC_TIMEOUT_SECONDS``."""

    def setup(self) -> None:
        self.timeout = float(self.container.config.get("RPC_TIMEOUT_SECONDS", 30))

    def get_dependency(self, worker_ctx) -> Callable[..., Any]:
        timeout = self.timeout

        def call(method: Any, *args: Any, **kwargs: Any) -> Any:
            return call_with_timeout(method, *args, timeout=timeout, **kwargs)

        return call


def health_report(broker: dict, gateway: dict, services: dict[str, dict]) -> dict:
    """``ok`` only when the broker, the gateway's own database and every service (with its database) answer."""
    components = (broker, gateway, *services.values())
    healthy = all(component["status"] == "ok" for component in components)
    return {"status": "ok" if healthy else "degraded", "broker": broker, "gateway": gateway, "services": services}


class HealthProbe(DependencyProvider):
    """Asks the broker, the gateway's own database (through ``own_check``) and each called service (and through
    it, its database) whether they answer."""

    rpc_reply_listener = ReplyListener()

    def setup(self) -> None:
        self.amqp_uri = self.container.config["AMQP_URI"]

    def get_dependency(self, worker_ctx) -> Callable[[Callable[[], dict]], dict]:
        def probe(own_check: Callable[[], dict]) -> dict:
            replies = {name: self._ask(worker_ctx, name) for name in CALLED_SERVICES}
            deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
            # Checked while the services' answers are on their way.
            gateway = own_check()
            services = {name: self._answer(name, reply, deadline) for name, reply in replies.items()}
            return health_report(self._broker(), gateway, services)

        return probe

    def _ask(self, worker_ctx, service: str) -> Any:
        # Sent together, awaited one by one: the probe takes one timeout, not one per service. A broker holding
        # back its confirm (a resource alarm) makes the service unavailable rather than the probe hang.
        proxy = ServiceProxy(worker_ctx, service, self.rpc_reply_listener, expiration=HEALTH_TIMEOUT_SECONDS)
        timer = eventlet.Timeout(HEALTH_TIMEOUT_SECONDS)
        try:
            return proxy.health.call_async()
        except UnknownService:
            return None
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            log.warning("health: the broker did not take the question to %s in time", service)
            return None
        except Exception:
            log.warning("health: could not ask %s", service, exc_info=True)
            return None
        finally:
            timer.cancel()

    @staticmethod
    def _answer(service: str, reply: Any, deadline: float) -> dict:
        if reply is None:
            return {"status": "unavailable", "database": "unknown", "error": "service not running"}
        timer = eventlet.Timeout(max(deadline - time.monotonic(), 0.01))
        try:
            answer = reply.result()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            return {"status": "unavailable", "database": "unknown", "error": "no answer in time"}
        except Exception as exc:
            # The service answered but its own check failed: that is its database.
            log.warning("health: %s reports a failure: %s", service, exc)
            return {"status": "degraded", "database": "unavailable", "error": type(exc).__name__}
        finally:
            timer.cancel()
        database = (answer or {}).get("database", "unknown")
        return {"status": "ok" if database == "ok" else "degraded", "database": database}

    def _broker(self) -> dict:
        try:
            with eventlet.Timeout(HEALTH_TIMEOUT_SECONDS):
                with Connection(self.amqp_uri, connect_timeout=HEALTH_TIMEOUT_SECONDS) as connection:
                    connection.connect()
            return {"status": "ok"}
        except (Exception, eventlet.Timeout) as exc:
            log.warning("health: broker check failed: %s", exc)
            return {"status": "unavailable", "error": type(exc).__name__}
