"""Domain errors shared by every service.

They cross nameko RPC as themselves (``deserialize_to_instance``), so the gateway maps them to HTTP statuses in
one place (``services/gateway/errors.py``) instead of parsing strings.
"""

from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


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
