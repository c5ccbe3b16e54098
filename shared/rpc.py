"""nameko's ``@rpc``, with the platform's domain errors declared as expected.

nameko logs an unexpected exception with a traceback at ERROR; a refused request (404, 409, 422 …) is an answer,
not a fault, so it is logged as a warning instead and still reaches the caller as itself.
"""

from __future__ import annotations

from nameko.rpc import Rpc

from shared.errors import DomainError


def rpc(fn=None, *, expected_exceptions=(DomainError,), **kwargs):
    decorator = Rpc.decorator(expected_exceptions=expected_exceptions, **kwargs)
    return decorator(fn) if fn is not None else decorator
