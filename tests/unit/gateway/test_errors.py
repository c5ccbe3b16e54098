import logging
import time
from types import SimpleNamespace

import eventlet
import pytest
from marshmallow import ValidationError
from nameko.exceptions import UnknownService
from werkzeug.exceptions import RequestEntityTooLarge

from services.gateway.dependencies import call_with_timeout
from services.gateway.errors import (
    MalformedJson,
    MethodNotAllowed,
    PayloadTooLarge,
    ServiceTimeout,
    ServiceUnavailable,
    error_response,
)
from shared.runtime.rpc import DEADLINE_HEADER
from shared.vocabulary.errors import Conflict, Forbidden, NotFound, Unauthorized, Unavailable, ValidationFailed


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ValidationFailed("bad", {"title": ["Missing data for required field."]}), 422, "validation_failed"),
        (NotFound("gone"), 404, "not_found"),
        (Conflict("no"), 409, "conflict"),
        (Forbidden("no"), 403, "forbidden"),
        (Unauthorized("who?"), 401, "unauthorized"),
        (MalformedJson("bad json"), 400, "malformed_json"),
        (PayloadTooLarge("big"), 413, "payload_too_large"),
        (RequestEntityTooLarge(), 413, "payload_too_large"),
        (ServiceTimeout("slow"), 504, "timeout"),
        (UnknownService("postings"), 503, "service_unavailable"),
    ],
)
def test_each_known_error_maps_to_its_status_and_code(error, status, code):
    got_status, body, _ = error_response(error, "c-1")
    assert (got_status, body["error"]) == (status, code)
    assert isinstance(body["message"], str)


def test_domain_error_details_are_the_body_details():
    _, body, _ = error_response(ValidationFailed("bad", {"budget": {"amount": ["x"]}}), "c-1")
    assert body == {"error": "validation_failed", "message": "bad", "details": {"budget": {"amount": ["x"]}}}


def test_a_marshmallow_error_is_a_422_per_field():
    status, body, _ = error_response(ValidationError({"country": ["not a country"]}), "c-1")
    assert status == 422
    assert body["details"] == {"country": ["not a country"]}


def test_401_challenges_for_a_bearer_token_and_405_lists_allowed_methods():
    assert error_response(Unauthorized("x"), "c")[2] == {"WWW-Authenticate": "Bearer"}
    assert error_response(MethodNotAllowed("x", ["GET", "POST"]), "c")[2] == {"Allow": "GET, POST"}
    assert error_response(ServiceUnavailable("x"), "c")[2] == {"Retry-After": "1"}


def test_an_unexpected_error_is_a_generic_500_logged_with_the_correlation_id(caplog):
    with caplog.at_level(logging.ERROR, logger="services.gateway.errors"):
        status, body, headers = error_response(KeyError("secret internal detail"), "corr-42")
    assert status == 500
    assert body["error"] == "internal_error"
    assert body["details"] == {"correlation_id": "corr-42"}
    assert "secret" not in str(body)
    assert "corr-42" in caplog.text
    assert caplog.records[0].exc_info is not None


class FakeMethod:
    """A nameko MethodProxy's surface: its own publisher, the shared reply listener, ``call_async``."""

    def __init__(self, reply=None, raises=None):
        self.reply = reply
        self.raises = raises
        self.publisher = SimpleNamespace(expiration=None, publish_kwargs={})
        self.reply_listener = SimpleNamespace(_reply_events={})
        self.sent_with = None

    def call_async(self, *args, **kwargs):
        self.sent_with = (self.publisher.expiration, dict(self.publisher.publish_kwargs["headers"]))
        if self.raises:
            raise self.raises
        self.reply_listener._reply_events["corr-1"] = self.reply.reply_event
        return self.reply


class Reply:
    def __init__(self, delay, value):
        self.delay = delay
        self.value = value
        self.reply_event = object()

    def result(self):
        eventlet.sleep(self.delay)
        return self.value


def test_a_call_answered_in_time_returns_the_answer():
    assert call_with_timeout(FakeMethod(Reply(0, {"ok": 1})), timeout=1) == {"ok": 1}


def test_a_call_not_answered_in_time_is_a_timeout_that_advises_retrying():
    method = FakeMethod(Reply(1, None))
    sent = time.time()
    with pytest.raises(ServiceTimeout) as caught:
        call_with_timeout(method, timeout=0.05)
    assert "Idempotency-Key" in caught.value.message
    # The request expired with the call (broker TTL, and the deadline the service checks), and the listener no
    # longer waits for an answer that will never come.
    expiration, headers = method.sent_with
    assert expiration == 0.05 and sent < headers[DEADLINE_HEADER] <= time.time() + 0.05
    assert method.reply_listener._reply_events == {}


def test_a_call_to_a_service_that_is_not_running_is_503():
    with pytest.raises(ServiceUnavailable) as caught:
        call_with_timeout(FakeMethod(raises=UnknownService("postings")), timeout=1)
    assert caught.value.details == {"service": "postings"}


def test_a_timeout_that_is_not_ours_is_not_swallowed():
    outer = eventlet.Timeout(0.05)
    try:
        with pytest.raises(eventlet.Timeout) as caught:
            call_with_timeout(FakeMethod(Reply(1, None)), timeout=5)
        assert caught.value is outer
    finally:
        outer.cancel()


def test_a_service_too_busy_to_write_now_is_503_with_when_to_retry():
    busy = Unavailable("The data is busy; retry in a few seconds.", {"retry_after_seconds": 5})
    status, body, headers = error_response(busy, "corr-1")
    assert (status, body["error"], headers["Retry-After"]) == (503, "unavailable", "5")
