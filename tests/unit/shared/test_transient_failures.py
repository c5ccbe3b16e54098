"""Which failures spend a message's retry budget: only its own, never the infrastructure's."""

import pytest
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from shared.runtime.messaging import deferral_delay
from shared.vocabulary.errors import OutcomeUnknown, Unavailable, ValidationFailed, is_transient


def raised_from(outer: Exception, cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as inner:
            raise outer from inner
    except Exception as exc:
        return exc


@pytest.mark.parametrize("failure", [
    ServerSelectionTimeoutError("no servers"),
    AutoReconnect("connection reset"),
    NetworkTimeout("timed out"),
    NotPrimaryError("not primary"),
    OperationFailure("interrupted at shutdown", code=11600),
    PyMongoError("write conflict", error_labels=["TransientTransactionError"]),
    raised_from(Unavailable("busy"), ServerSelectionTimeoutError("no servers")),
    raised_from(OutcomeUnknown("lost"), PyMongoError("lost", error_labels=["UnknownTransactionCommitResult"])),
    Unavailable("another service is down"),  # as it arrives over RPC, with no cause of its own
])
def test_the_infrastructure_failing_is_transient(failure):
    assert is_transient(failure)


@pytest.mark.parametrize("failure", [
    RuntimeError("the handler has a bug"),
    KeyError("data"),
    DuplicateKeyError("E11000 on the handler's own index"),
    ValidationFailed("bad amount"),
    # The transaction outlived its time: a handler that never finishes in time is the message's problem.
    raised_from(Unavailable("busy"), ExecutionTimeout("ran out of time before its commit", code=50)),
])
def test_a_failure_of_the_message_itself_is_not_transient(failure):
    assert not is_transient(failure)


def test_deferrals_back_off_through_the_retry_delays_but_never_past_30_seconds():
    assert [deferral_delay((1, 5, 30, 120), n) for n in range(1, 7)] == [1, 5, 30, 30, 30, 30]
    assert [deferral_delay((0.2, 0.4), n) for n in range(1, 4)] == [0.2, 0.4, 0.4]
    assert deferral_delay((60, 300), 5) == 60
