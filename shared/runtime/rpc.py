"""nameko's ``@rpc``, with domain errors declared as expected and a lost broker not killing the service.

- A refused request (404, 409, 422 …) is an answer, not a fault: nameko logs it as a warning instead of an
  ERROR with a traceback, and it still reaches the caller as itself.
- nameko acknowledges an RPC request only after publishing the reply. If the broker is gone at that moment, the
  publish raises out of the worker and nameko kills the whole service container. Here the failure is logged and the
  request left unacknowledged: its channel died with the connection, so the broker delivers it again once the
  service has reconnected, and it runs again. Requests that change state are idempotent for exactly this reason.
- Requests travel in a workload lane, as events and commands do: each service has an RPC queue per lane,
  ``rpc-<service>--<lane>``, bound to the RPC exchange under ``<service>.<lane>.*`` (the default lane's also under
  nameko's own ``<service>.*``, where a caller that names no lane sends). A process run with ``--lane`` serves only
  its lanes' queues, so a flood of one lane's requests does not queue in front of the other's. Callers call in
  their caller's lane (``in_lane``; the gateway: a client's segment, a provider's kind, ``lane_of``).
- A request whose caller has stopped waiting (``DEADLINE_HEADER``, a Unix time the gateway sets to when it answers
  504) is acknowledged and dropped unrun: the client was told to retry, and running it too would do the work twice.
"""

from __future__ import annotations

import logging
import time

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu import Queue, binding
from kombu.exceptions import OperationalError
from nameko.exceptions import MethodNotFound
from nameko.rpc import MethodProxy, Rpc, RpcConsumer, get_rpc_exchange

from shared.vocabulary.errors import DomainError
from shared.vocabulary.terms import DEFAULT_LANE, LANES, known_lanes

log = logging.getLogger(__name__)

BROKER_GONE = (OperationalError, AmqpConnectionError, ConnectionError, OSError)
DEADLINE_HEADER = "x-tasklinkr-deadline"


def rpc_queue_name(service: str, lane: str) -> str:
    """A service's RPC queue of one lane (the ``--<lane>`` suffix of every queue of a lane)."""
    return f"rpc-{service}--{lane}"


def lane_routing_prefix(service: str, lane: str) -> str:
    """What a call to ``service`` in ``lane`` is addressed to: ``<service>.<lane>``, to which nameko appends
    ``.<method>``."""
    return f"{service}.{lane}"


def rpc_routing_keys(service: str, lane: str) -> list[str]:
    """The routing keys that bind ``lane``'s RPC queue: the lane's own and, for the default lane, nameko's lane-less
    ``<service>.*`` (a caller that names no lane calls in the default lane, as a message naming none travels in it)."""
    keys = [f"{lane_routing_prefix(service, lane)}.*"]
    return keys + [f"{service}.*"] if str(lane) == DEFAULT_LANE else keys


def serves_lane(config: dict, lane: str) -> bool:
    """Whether a process of ``config`` serves ``lane`` (config ``LANES``, ``tasklinkr run --lane``; all when unset)."""
    return lane in known_lanes(config.get("LANES"))


def in_lane(method: MethodProxy, lane: str | None) -> MethodProxy:
    """``method`` (``self.billing.submit_items``) called in ``lane``: published to the lane's RPC queue of its
    service. ``None``: as it is (the default lane's queue)."""
    if lane is None:
        return method
    return MethodProxy(method.worker_ctx, lane_routing_prefix(method.service_name, lane), method.method_name,
                       method.reply_listener)


class LaneRpcConsumer(RpcConsumer):
    """nameko's ``RpcConsumer`` of one lane's queue (``rpc-<service>--<lane>``); one per lane the process serves."""

    def __init__(self, lane: str = DEFAULT_LANE):
        self.lane = str(lane)
        super().__init__()

    @property
    def sharing_key(self):
        return type(self), self.lane

    def setup(self):
        if self.queue is not None or not serves_lane(self.container.config, self.lane):
            return  # another process serves this lane
        service = self.container.service_name
        exchange = get_rpc_exchange(self.container.config)
        bindings = [binding(exchange, routing_key=key) for key in rpc_routing_keys(service, self.lane)]
        self.queue = Queue(rpc_queue_name(service, self.lane), durable=True, bindings=bindings)
        self.queue_consumer.register_provider(self)
        self._registered = True

    def stop(self):
        if self.queue is not None:
            super().stop()

    def get_provider_for_method(self, routing_key):
        method_name = routing_key.split(".")[-1]
        for provider in self._providers:
            if provider.method_name == method_name:
                return provider
        raise MethodNotFound(method_name)


class ResilientRpc(Rpc):
    """An RPC entrypoint of one lane (``rpc`` registers one per lane)."""

    def __init__(self, lane: str = DEFAULT_LANE, **kwargs):
        self.lane = str(lane)
        self.rpc_consumer = LaneRpcConsumer(self.lane)
        super().__init__(**kwargs)

    def setup(self):
        self.serving = serves_lane(self.container.config, self.lane)
        if self.serving:
            super().setup()

    def stop(self):
        if getattr(self, "serving", False):
            super().stop()

    def handle_message(self, body, message):
        deadline = (message.headers or {}).get(DEADLINE_HEADER)
        late = time.time() - deadline if isinstance(deadline, int | float) else 0
        if late > 0:
            log.warning("dropped a %s request %.1f s after its caller stopped waiting",
                        message.delivery_info.get("routing_key"), late)
            self.rpc_consumer.queue_consumer.ack_message(message)
            return
        super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except BROKER_GONE as exc:
            log.warning("could not answer %s (the broker is unreachable: %s); the request will be delivered again",
                        worker_ctx.call_id, exc)
            return result, exc_info


def rpc(fn=None, *, expected_exceptions=(DomainError,), **kwargs):
    def decorator(method):
        for lane in LANES:  # one entrypoint per lane, each served from its lane's queue
            method = ResilientRpc.decorator(expected_exceptions=expected_exceptions, lane=lane, **kwargs)(method)
        return method

    return decorator(fn) if fn is not None else decorator
