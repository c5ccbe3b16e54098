"""run_transaction's commit: a lost commit answer is sent again, within the transaction's time, never past it."""

import time

import pytest
from pymongo.errors import ExecutionTimeout, OperationFailure, PyMongoError

from shared.runtime.persistence import TRANSIENT, UNKNOWN_COMMIT, run_transaction
from shared.vocabulary.errors import is_transient


class Session:
    """The part of a pymongo session run_transaction uses; commit answers are lost ``lost`` times (the driver
    labels such an error UnknownTransactionCommitResult)."""

    def __init__(self, lost: int = 0, error: PyMongoError | None = None):
        self.lost, self.error = lost, error
        self.in_transaction = False
        self.started = self.commits = self.aborts = 0

    def start_transaction(self, **_options):
        self.in_transaction = True
        self.started += 1

    def commit_transaction(self):
        self.commits += 1
        if self.commits <= self.lost:
            raise self.error or PyMongoError("the answer was lost", error_labels=[UNKNOWN_COMMIT])
        self.in_transaction = False

    def abort_transaction(self):
        self.aborts += 1
        self.in_transaction = False


def test_a_commit_whose_answer_was_lost_is_sent_again_without_running_the_work_again():
    session = Session(lost=2)
    ran = []
    assert run_transaction(session, lambda s: ran.append(1) or "done", seconds=5) == "done"
    assert (len(ran), session.started, session.commits) == (1, 1, 3)


def test_lost_commit_answers_are_resent_only_within_the_transactions_time():
    session = Session(lost=10**9)
    started = time.monotonic()
    with pytest.raises(PyMongoError) as raised:
        run_transaction(session, lambda s: None, seconds=0.3)
    assert raised.value.has_error_label(UNKNOWN_COMMIT)
    assert time.monotonic() - started < 3


def test_a_commit_that_ran_out_of_server_time_is_not_resent():
    expired = OperationFailure("operation exceeded time limit", 50, {"errorLabels": [UNKNOWN_COMMIT]})
    session = Session(lost=1, error=expired)
    with pytest.raises(OperationFailure):
        run_transaction(session, lambda s: None, seconds=5)
    assert session.commits == 1


def test_a_transient_commit_failure_runs_the_whole_transaction_again():
    session = Session(lost=1, error=PyMongoError("write conflict at commit", error_labels=[TRANSIENT]))
    ran = []
    assert run_transaction(session, lambda s: ran.append(1) or "done", seconds=5) == "done"
    assert (len(ran), session.started, session.commits) == (2, 2, 2)


def conflict_then(error: BaseException):
    """Work whose first try meets a write conflict and whose every later try raises ``error``; and the conflict."""
    conflict = PyMongoError("write conflict", error_labels=[TRANSIENT])
    tries = []

    def work(_session):
        tries.append(1)
        raise conflict if len(tries) == 1 else error

    return work, conflict


def test_running_out_of_time_after_the_database_failed_a_try_is_reported_as_that_failure():
    work, conflict = conflict_then(ExecutionTimeout("operation would exceed time limit", 50))
    with pytest.raises(ExecutionTimeout) as raised:
        run_transaction(Session(), work, seconds=5)
    assert raised.value.__context__ is conflict and is_transient(raised.value)


def test_a_request_that_alone_outlives_its_time_is_not_transient():
    def work(_session):
        raise ExecutionTimeout("operation would exceed time limit", 50)

    with pytest.raises(ExecutionTimeout) as raised:
        run_transaction(Session(), work, seconds=5)
    assert not is_transient(raised.value)


def test_a_handler_that_fails_in_the_try_after_a_conflict_fails_on_its_own_not_transiently():
    # A conflict on the first try says nothing about the handler's own error on the next: that error is the
    # message's (retried, then parked), not the database's (deferred with its attempts unchanged).
    work, _conflict = conflict_then(RuntimeError("the handler failed"))
    with pytest.raises(RuntimeError) as raised:
        run_transaction(Session(), work, seconds=5)
    assert raised.value.__context__ is None and not is_transient(raised.value)
