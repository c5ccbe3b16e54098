"""nameko's ``@rpc``, with domain errors declared as expected and a lost broker not killing the service.

- A refused request (404, 409, 422 …) is an answer, not a fault: nameko logs it as a warning instead of an
  ERROR with a traceback, and it still reaches the caller as itself.
- nameko acknowledges an RPC request only after publishing the reply. If the broker is gone at that moment, the
  publish raises out of the worker and nameko kills the whole service container. Here the failure is logged and the
  request left unacknowledged: its channel died with the connection, so the broker delivers it again once the
  service has reconnected, and it runs again. Requests that change state are idempotent for exactly this reason.
- A request whose caller has stopped waiting (``DEADLINE_HEADER``, a Unix time the gateway sets to when it answers
  504) is acknowledged and dropped unrun: the client was told to retry, and running it too would do the work twice.
"""

from __future__ import annotations

import logging
import time

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.rpc import Rpc

from shared.vocabulary.errors import DomainError

log = logging.getLogger(__name__)

BROKER_GONE = (OperationalError, AmqpConnectionError, ConnectionError, OSError)
DEADLINE_HEADER = "x-tasklinkr-deadline"


class ResilientRpc(Rpc):
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
    decorator = ResilientRpc.decorator(expected_exceptions=expected_exceptions, **kwargs)
    return decorator(fn) if fn is not None else decorator
