"""nameko's ``@rpc``, with domain errors declared as expected and a lost broker not killing the service.

- A refused request (404, 409, 422 …) is an answer, not a fault: nameko logs it as a warning instead of an
  ERROR with a traceback, and it still reaches the caller as itself.
- nameko acknowledges an RPC request only after publishing the reply. If the broker is gone at that moment, the
  publish raises out of the worker and nameko kills the whole service container. Here the failure is logged and the
  request left unacknowledged: its channel died with the connection, so the broker delivers it again once the
  service has reconnected, and it runs again. Requests that change state are idempotent for exactly this reason.
"""

from __future__ import annotations

import logging

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.rpc import Rpc

from shared.errors import DomainError

log = logging.getLogger(__name__)

BROKER_GONE = (OperationalError, AmqpConnectionError, ConnectionError, OSError)


class ResilientRpc(Rpc):
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
