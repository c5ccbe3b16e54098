"""Every error the gateway answers, mapped to its HTTP status in one place.

Domain errors come back from the services as themselves (shared.vocabulary.errors registers them for RPC) and carry
their own status; the gateway adds the few that only exist at the HTTP edge. Anything else is a bug or an outage: the
client gets a generic 500 with the correlation id, the log gets the traceback.
"""

from __future__ import annotations

import logging

from marshmallow import ValidationError
from nameko.exceptions import UnknownService
from werkzeug.exceptions import RequestEntityTooLarge

from shared.vocabulary.errors import DomainError, OutcomeUnknown, Unauthorized, Unavailable, ValidationFailed

log = logging.getLogger(__name__)


class MalformedJson(DomainError):
    status = 400
    code = "malformed_json"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"


class LengthRequired(DomainError):
    status = 411
    code = "length_required"


class RouteNotFound(DomainError):
    status = 404
    code = "not_found"


class MethodNotAllowed(DomainError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, allowed: list[str]):
        super().__init__(message, {"allowed": allowed})
        self.allowed = allowed


class TooManyRequests(DomainError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"


class ServiceTimeout(DomainError):
    status = 504
    code = "timeout"


def validation_failed(error: ValidationError) -> ValidationFailed:
    """marshmallow's messages as the API's 422 body: ``{field: [messages]}``, nested fields nested."""
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return ValidationFailed("The request is not valid.", messages)


def error_response(exc: BaseException, correlation_id: str) -> tuple[int, dict, dict[str, str]]:
    """Status, JSON body and extra headers for any exception a request ended with."""
    if isinstance(exc, RequestEntityTooLarge):
        exc = PayloadTooLarge("The request body is larger than this API accepts.")
    elif isinstance(exc, ValidationError):
        exc = validation_failed(exc)
    elif isinstance(exc, UnknownService):
        exc = ServiceUnavailable(
            "A service this request needs is not running; try again later.", {"service": exc.args[0]}
        )

    if isinstance(exc, DomainError):
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        elif isinstance(exc, MethodNotAllowed):
            headers["Allow"] = ", ".join(exc.allowed)
        elif isinstance(exc, ServiceUnavailable | ServiceTimeout | OutcomeUnknown):
            headers["Retry-After"] = "1"
        elif isinstance(exc, Unavailable | TooManyRequests):
            headers["Retry-After"] = str(exc.details.get("retry_after_seconds", 5))
        return exc.status, exc.to_dict(), headers

    log.error(
        "unexpected error answering a request (correlation id %s)",
        correlation_id,
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"correlation_id": correlation_id},
    )
    body = {
        "error": "internal_error",
        "message": "Something went wrong on our side. Quote the correlation id when you report it.",
        "details": {"correlation_id": correlation_id},
    }
    return 500, body, {}
