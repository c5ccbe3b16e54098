"""The gateway's DependencyProviders: RPC calls that give up in time, the health probe, dead-letter counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import eventlet
from kombu import Connection
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import ReplyListener, ServiceProxy

from services.gateway.errors import ServiceTimeout, ServiceUnavailable
from shared.runtime import metrics
from shared.runtime.rpc import DEADLINE_HEADER
from shared.runtime.rpc import in_lane as rpc_in_lane
from shared.tools.brokeradmin import BrokerAdmin
from shared.tools.operations import dead_letter_counts
from shared.tools.runner import runnable_services
from shared.tools.tenantsweep import DEFAULT_MAX_QUEUES, TenantSweep
from shared.vocabulary.errors import NotFound
from shared.vocabulary.terms import DEFAULT_LANE, LANES

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0
# The services whose health the gateway reports: every service of the platform that runs in this deployment.
CALLED_SERVICES = tuple(name for name in runnable_services() if name != "gateway")


def bounded(method: Any, seconds: float) -> Any:
    """``method`` (a nameko ``MethodProxy``) whose next request stops counting after ``seconds``: the broker drops it
    unread when it is still queued then (a message TTL), and the service drops it when it arrives later than that
    (``shared.runtime.rpc.DEADLINE_HEADER``: published late, or held in a busy service's prefetch). The caller has
    answered 504 and the client retries by then; run late, it would do the work a second time."""
    publisher = method.publisher  # each attribute access of a ServiceProxy makes a new MethodProxy and publisher
    publisher.expiration = seconds
    publisher.publish_kwargs = {**publisher.publish_kwargs,
                                "headers": {DEADLINE_HEADER: time.time() + seconds}}
    return method


def forget(method: Any, reply: Any) -> None:
    """Stop waiting for ``reply``: nameko's listener drops its entry only when an answer arrives, and a request that
    expired unread never gets one."""
    events = method.reply_listener._reply_events
    for correlation_id, event in list(events.items()):
        if event is reply.reply_event:
            events.pop(correlation_id, None)


def call_with_timeout(method: Any, *args: Any, timeout: float, in_lane: str | None = None, **kwargs: Any) -> Any:
    """Call a nameko RPC method (``self.postings.get_posting``) in the workload lane ``in_lane`` (its service's RPC
    queue of that lane, ``shared.runtime.rpc``; None: the default lane's), waiting at most ``timeout`` seconds.

    nameko's own call waits forever; a request stuck on a slow service would hold an HTTP worker and the client
    indefinitely. The timer also runs while the request is published (its confirm can be slow). The request
    expires with the timeout (``bounded``), so one the service did not start in time is not run after the client
    was told to retry. (Under a broker resource alarm nameko's publisher still waits on closing its connection.)
    """
    reply = None
    outcome = "error"
    service, name = getattr(method, "service_name", "?"), getattr(method, "method_name", "?")
    method = rpc_in_lane(method, in_lane)
    started = time.perf_counter()
    timer = eventlet.Timeout(timeout)
    try:
        try:
            reply = bounded(method, timeout).call_async(*args, **kwargs)
        except UnknownService as exc:
            outcome = "unavailable"
            raise ServiceUnavailable(
                "A service this request needs is not running; try again later.",
                {"service": str(exc.args[0]).split(".")[0]},  # the service, not the lane it was called in
            ) from exc
        result = reply.result()
        outcome = "ok"
        return result
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        outcome = "timeout"
        if reply is not None:
            forget(method, reply)
        raise ServiceTimeout(
            "The service did not answer in time. The request may or may not have been applied: it is safe to "
            "retry (for POST /v1/postings, with the same Idempotency-Key).",
            {"timeout_seconds": timeout},
        ) from None
    finally:
        timer.cancel()
        metrics.RPC_CALLS.labels(service, name, outcome).inc()
        metrics.RPC_SECONDS.labels(service, name).observe(time.perf_counter() - started)


class LanedCalls:
    """A worker's ``self.rpc``: ``self.rpc(self.postings.get_posting, tenant_id, posting_id)`` calls in ``lane``, the
    lane of whom the worker acts for (set once the caller is known: a route's caller, a command's sender; None until
    then: the default lane), bounded by ``RPC_TIMEOUT_SECONDS``.

    Two more ways to call a service deployed in cells (docs/operations.md, Cells), whose records live in the cell of
    their contract's lane: ``first_found`` for a record the caller's lane need not hold, ``in_every_lane`` for what
    every cell must do."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.lane: str | None = None

    def __call__(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return call_with_timeout(method, *args, timeout=self.timeout, in_lane=self.lane, **kwargs)

    def first_found(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """The call in the caller's lane, and when it answers NotFound, in each other lane: the first answer that
        finds the record, else the caller's lane's 404. A provider's lane (its kind) need not be its contract's (its
        client's segment), so the cell of the provider's lane may not hold the contract. Without cells every lane
        reads the same database: a genuine 404 costs one call more per lane. Only for calls that change nothing
        when they answer NotFound."""
        try:
            return self(method, *args, **kwargs)
        except NotFound as not_here:
            missing = not_here
        own = self.lane or DEFAULT_LANE
        for lane in (lane for lane in LANES if lane != own):
            try:
                return call_with_timeout(method, *args, timeout=self.timeout, in_lane=lane, **kwargs)
            except NotFound:
                continue
        raise missing

    def in_every_lane(self, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The call in every lane at once (each cell of the service; without cells, every lane's queue of one
        database): each lane's answer by lane. The first failure is raised once all have answered."""
        answers, failures = self.in_every_lane_settled(method, *args, **kwargs)
        for failure in failures.values():
            raise failure
        return answers

    def in_every_lane_settled(self, method: Any, *args: Any,
                              **kwargs: Any) -> tuple[dict[str, Any], dict[str, Exception]]:
        """``in_every_lane``, but what each lane answered and how each other lane failed, by lane (in the lanes'
        order): for work every cell does on its own, where one cell down must not hide what the others did."""
        def settled(lane: str) -> tuple[str, Any, Exception | None]:
            try:
                return lane, call_with_timeout(method, *args, timeout=self.timeout, in_lane=lane, **kwargs), None
            except Exception as exc:  # noqa: BLE001 - each lane's failure is the caller's to weigh
                return lane, None, exc

        pile = eventlet.GreenPile(len(LANES))
        for lane in LANES:
            pile.spawn(settled, str(lane))
        outcomes = list(pile)
        return ({lane: answer for lane, answer, failure in outcomes if failure is None},
                {lane: failure for lane, _, failure in outcomes if failure is not None})


class TimedRpc(DependencyProvider):
    """Each worker's ``LanedCalls``."""

    def setup(self) -> None:
        self.timeout = float(self.container.config.get("RPC_TIMEOUT_SECONDS", 30))

    def get_dependency(self, worker_ctx) -> LanedCalls:
        return LanedCalls(self.timeout)


HEALTH_ORDER = ("ok", "degraded", "unavailable")


def service_health(by_lane: dict[str, dict]) -> dict:
    """One service's health from each lane's answer (each lane's processes, in cells with a database of their own):
    the default lane's figures, the worst lane's status, and every lane's answer under ``lanes``."""
    worst = max((answer["status"] for answer in by_lane.values()), key=HEALTH_ORDER.index)
    return {**by_lane[str(DEFAULT_LANE)], "status": worst, "lanes": by_lane}


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
            # Each service in each lane: a lane's processes (its cell's database) can fail alone.
            lanes = [str(lane) for lane in LANES]
            replies = {(name, lane): self._ask(worker_ctx, name, lane) for name in CALLED_SERVICES for lane in lanes}
            deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
            # Checked while the services' answers are on their way.
            gateway = own_check()
            services = {name: service_health({lane: self._answer(f"{name} ({lane})", replies[name, lane], deadline)
                                              for lane in lanes})
                        for name in CALLED_SERVICES}
            return health_report(self._broker(), gateway, services)

        return probe

    def _ask(self, worker_ctx, service: str, lane: str) -> Any:
        # Sent together, awaited one by one: the probe takes one timeout, not one per service. A confirm the broker
        # is slow to send makes the service unavailable rather than the probe wait.
        method = bounded(rpc_in_lane(ServiceProxy(worker_ctx, service, self.rpc_reply_listener).health, lane),
                         HEALTH_TIMEOUT_SECONDS)
        timer = eventlet.Timeout(HEALTH_TIMEOUT_SECONDS)
        try:
            return method, method.call_async()
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
    def _answer(service: str, asked: tuple[Any, Any] | None, deadline: float) -> dict:
        if asked is None:
            return {"status": "unavailable", "database": "unknown", "error": "service not running"}
        method, reply = asked
        timer = eventlet.Timeout(max(deadline - time.monotonic(), 0.01))
        try:
            answer = reply.result()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            forget(method, reply)
            return {"status": "unavailable", "database": "unknown", "error": "no answer in time"}
        except Exception as exc:
            # The service answered but its own check failed: that is its database.
            log.warning("health: %s reports a failure: %s", service, exc)
            return {"status": "degraded", "database": "unavailable", "error": type(exc).__name__}
        finally:
            timer.cancel()
        database = (answer or {}).get("database", "unknown")
        component = {"status": "ok" if database == "ok" else "degraded", "database": database}
        if "outbox_backlog" in (answer or {}):
            component["outbox_backlog"] = answer["outbox_backlog"]
        return component

    def _broker(self) -> dict:
        try:
            with eventlet.Timeout(HEALTH_TIMEOUT_SECONDS):
                with Connection(self.amqp_uri, connect_timeout=HEALTH_TIMEOUT_SECONDS) as connection:
                    connection.connect()
            return {"status": "ok"}
        except (Exception, eventlet.Timeout) as exc:
            log.warning("health: broker check failed: %s", exc)
            return {"status": "unavailable", "error": type(exc).__name__}


class DeadLetterCounts(DependencyProvider):
    """How many messages each consuming service (the gateway too) has parked in its dead-letter queue, as the
    broker counts them; read-only."""

    def setup(self) -> None:
        self.amqp_uri = self.container.config["AMQP_URI"]

    def get_dependency(self, worker_ctx) -> Callable[[], dict[str, int | None]]:
        def counts() -> dict[str, int | None]:
            try:
                with eventlet.Timeout(HEALTH_TIMEOUT_SECONDS):
                    return dead_letter_counts(self.amqp_uri)
            except (Exception, eventlet.Timeout) as exc:
                log.warning("dead letters: the broker did not answer: %s", exc)
                raise ServiceUnavailable("The broker did not answer; the dead-letter queues cannot be counted.",
                                         {"broker": type(exc).__name__}) from None

        return counts


class TenantSweeper(DependencyProvider):
    """The tenant sweep (``shared.tools.tenantsweep``) on the broker of ``AMQP_URI``, through the management API at
    ``RABBITMQ_MANAGEMENT_URL``; None (no sweep) when the config names none."""

    def setup(self) -> None:
        config = self.container.config
        url = config.get("RABBITMQ_MANAGEMENT_URL")
        self.sweep = TenantSweep(BrokerAdmin(url, config["AMQP_URI"], timeout=5.0),
                                 int(config.get("TENANT_MAX_QUEUES") or DEFAULT_MAX_QUEUES)) if url else None

    def get_dependency(self, worker_ctx) -> TenantSweep | None:
        return self.sweep
