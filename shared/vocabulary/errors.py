"""Domain errors shared by every service.

They cross nameko RPC as themselves (``deserialize_to_instance``), so the gateway maps them to HTTP statuses in
one place (``services/gateway/errors.py``) instead of parsing strings.
"""

from __future__ import annotations

from nameko.exceptions import deserialize_to_instance
from pymongo.errors import ConnectionFailure, PyMongoError


class DomainError(Exception):
    """Base of all errors a caller can act on. ``status`` is the HTTP status the gateway answers."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message, details or {})
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        body = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


@deserialize_to_instance
class ValidationFailed(DomainError):
    """Input broke a schema or a rule; ``details`` maps each field to its messages."""

    status = 422
    code = "validation_failed"


@deserialize_to_instance
class NotFound(DomainError):
    status = 404
    code = "not_found"


@deserialize_to_instance
class Conflict(DomainError):
    """The request is well-formed but the resource's state forbids it (for example an illegal transition)."""

    status = 409
    code = "conflict"


@deserialize_to_instance
class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


@deserialize_to_instance
class Forbidden(DomainError):
    status = 403
    code = "forbidden"


@deserialize_to_instance
class OutcomeUnknown(DomainError):
    """A change was sent but its answer was lost (a commit whose result is unknown): it may or may not have been
    applied. The same answer as a call that timed out; only a request with an idempotency key is safe to retry."""

    status = 504
    code = "timeout"


@deserialize_to_instance
class Unavailable(DomainError):
    """Temporarily unable to serve (for example a write stuck behind a crashed writer's lock): retry later."""

    status = 503
    code = "unavailable"


# Labels and codes the database gives errors that say nothing about the request: its primary stepped down or shut
# down, a transaction lost a conflict, a commit's answer was lost. The same operation succeeds later.
TRANSIENT_LABELS = ("TransientTransactionError", "UnknownTransactionCommitResult", "RetryableWriteError")
NOT_PRIMARY_CODES = frozenset({91, 189, 10058, 10107, 11600, 11602, 13435, 13436})


def is_transient(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an error it was raised from) is the infrastructure failing rather than the request: the
    database unreachable, not primary, a network error or timeout, a transaction conflict or a lost commit answer,
    or another service answering ``Unavailable`` over RPC. Such a failure says nothing about the message that met
    it, so it must not spend that message's retry budget.

    A transaction that ran out of its own time (``ExecutionTimeout`` raised by ``run_transaction``, carrying no
    label) is not transient: a handler that never finishes in time is the message's problem.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ConnectionFailure):
            return True
        if isinstance(exc, PyMongoError) and (any(exc.has_error_label(label) for label in TRANSIENT_LABELS)
                                               or getattr(exc, "code", None) in NOT_PRIMARY_CODES):
            return True
        if isinstance(exc, Unavailable) and exc.__cause__ is None:  # another service's answer, over RPC
            return True
        exc = exc.__cause__ or exc.__context__
    return False
