"""Transactions against a real database: they give up in their time, leave nothing locked, and say what happened."""

import time
import uuid

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from shared.runtime.persistence import TRANSIENT, UNKNOWN_COMMIT, Database, run_transaction
from shared.runtime.rpc import rpc
from shared.vocabulary.errors import OutcomeUnknown, Unavailable

pytestmark = pytest.mark.integration


def test_a_write_locked_by_an_open_transaction_gives_up_in_its_time_every_time_and_succeeds_once_that_ends(
    mongo_client, database
):
    database.things.create_index("key", unique=True)
    # A writer that crashed mid-transaction leaves one like this open until the server's lifetime limit (60 s).
    holder = mongo_client.start_session()
    holder.start_transaction()
    database.things.insert_one({"_id": "crashed", "key": "k"}, session=holder)

    def insert_mine(session):
        return database.things.insert_one({"_id": "mine", "key": "k"}, session=session).inserted_id

    took = []
    for _ in range(8):  # the caller's retries: each must be answered, none may hold its worker for minutes
        started = time.monotonic()
        with pytest.raises(PyMongoError), mongo_client.start_session() as session:
            run_transaction(session, insert_mine, seconds=1)
        took.append(time.monotonic() - started)
    assert max(took) < 10, took  # a second each, with room for a busy machine; pymongo's own loop took 120 s

    holder.abort_transaction()
    holder.end_session()
    with mongo_client.start_session() as session:
        assert run_transaction(session, insert_mine, seconds=10) == "mine"
    assert [d["_id"] for d in database.things.find({"key": "k"})] == ["mine"]


def test_an_attempt_that_runs_out_of_time_after_writing_is_aborted_on_the_server_and_locks_nothing(
    mongo_client, mongo_uri, database
):
    database.things.create_index("key", unique=True)

    def slow_writer(session):
        database.things.insert_one({"_id": "slow", "key": "k"}, session=session)
        time.sleep(1.5)  # past its time: pymongo sends nothing more under the expired timeout, not even an abort

    with pytest.raises(PyMongoError) as raised, mongo_client.start_session() as session:
        run_transaction(session, slow_writer, seconds=1)
    assert raised.value.timeout

    # Left open, the slow writer's insert would keep the key locked for the server's 60 s transaction lifetime.
    # Another process writes next (a session of this client could reuse the server session, which ends it anyway).
    other = MongoClient(mongo_uri)
    things = other[database.name].things
    started = time.monotonic()
    with other.start_session() as session:
        run_transaction(session, lambda s: things.insert_one({"_id": "next", "key": "k"}, session=s), seconds=30)
    assert time.monotonic() - started < 15  # not the 60 s of a lock left behind
    other.close()
    assert [d["_id"] for d in database.things.find({"key": "k"})] == ["next"]


class Writer:
    name = "txwriter"
    store = Database()

    @rpc
    def write(self, failure_label: str) -> None:
        def work(uow):
            uow.db.things.insert_one({"_id": f"w-{uuid.uuid4()}"}, session=uow.session)
            raise OperationFailure("the database's answer was lost", 6, {"errorLabels": [failure_label]})

        self.store.transact(work)


def test_a_lost_commit_answer_is_reported_as_unknown_and_a_transient_failure_as_busy_once_its_time_is_up(
    container_factory, service_config, amqp_uri, database
):
    container = container_factory(Writer, dict(service_config, TRANSACTION_TIMEOUT_SECONDS=1))
    container.start()
    with ServiceRpcProxy("txwriter", {"AMQP_URI": amqp_uri}) as proxy:
        # The client must not be told "busy, retry" when the change may have been applied.
        with pytest.raises(OutcomeUnknown):
            proxy.write(UNKNOWN_COMMIT)
        started = time.monotonic()
        with pytest.raises(Unavailable):
            proxy.write(TRANSIENT)
        assert time.monotonic() - started < 10  # retried for its second, then answered (not pymongo's 120 s)
    assert database.things.count_documents({}) == 0  # every attempt was rolled back
