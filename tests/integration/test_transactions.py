"""Transactions against a real database: a write blocked by another writer's open transaction gives up in time."""

import time

import pymongo
import pytest
from pymongo.errors import PyMongoError

from shared.persistence import run_transaction

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
        with pytest.raises(PyMongoError), pymongo.timeout(1), mongo_client.start_session() as session:
            run_transaction(session, insert_mine, seconds=1)
        took.append(time.monotonic() - started)
    assert max(took) < 3, took

    holder.abort_transaction()
    holder.end_session()
    with pymongo.timeout(1), mongo_client.start_session() as session:
        assert run_transaction(session, insert_mine, seconds=1) == "mine"
    assert [d["_id"] for d in database.things.find({"key": "k"})] == ["mine"]
