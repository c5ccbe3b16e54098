"""The inbox against a real database: one record per transaction however many events it applies, each event
applied once per consumer, and what a consumer recorded before this shape still recognised."""

import threading
import time

import pytest
from pymongo.errors import DuplicateKeyError

from shared.runtime.inbox import APPLIED_EVENTS, CLAIMS_INDEX, applied_claims, claim_id, claim_record
from shared.runtime.persistence import UnitOfWork, ensure_platform_indexes, run_transaction
from shared.vocabulary.times import utc_now

pytestmark = pytest.mark.integration

CONSUMER = "kitconsumer.on_thing_made"


def claimed(mongo_client, database, event_ids: list[str]) -> list[str]:
    with mongo_client.start_session() as session:
        return run_transaction(session, lambda s: UnitOfWork(database, s, "kit", None, None).claim_events(
            event_ids, CONSUMER), seconds=10)


def test_a_batch_is_claimed_in_one_record_and_its_events_are_refused_to_any_later_claim(mongo_client, database):
    ensure_platform_indexes(database)

    assert claimed(mongo_client, database, ["e1", "e2", "e2", "e3"]) == ["e1", "e2", "e3"]
    assert claimed(mongo_client, database, ["e3", "e4", "e1"]) == ["e4"]

    records = list(database[APPLIED_EVENTS].find().sort("_id", 1))  # each named after its first claim
    assert [record["claims"] for record in records] == [
        [claim_id(CONSUMER, e) for e in ("e1", "e2", "e3")], [claim_id(CONSUMER, "e4")]]
    with pytest.raises(DuplicateKeyError):  # a single delivery's claim: refused by the index, no look-up first
        database[APPLIED_EVENTS].insert_one(claim_record(CONSUMER, ["e2"], utc_now()))
    other = "billing.on_thing_made"  # another consumer applies the same event for itself
    database[APPLIED_EVENTS].insert_one(claim_record(other, ["e2"], utc_now()))
    assert applied_claims(database[APPLIED_EVENTS], [claim_id(other, "e2"), claim_id(other, "e1")]) == {
        claim_id(other, "e2")}


def test_two_transactions_claiming_one_event_at_once_apply_it_once(mongo_client, database):
    ensure_platform_indexes(database)
    first = mongo_client.start_session()
    first.start_transaction()
    assert UnitOfWork(database, first, "kit", None, None).claim_events(["a", "b"], CONSUMER) == ["a", "b"]

    second: list[list[str]] = []
    racing = threading.Thread(target=lambda: second.append(claimed(mongo_client, database, ["b", "c"])))
    racing.start()
    time.sleep(0.5)  # the second tries while the first holds its claims uncommitted
    first.commit_transaction()
    first.end_session()
    racing.join(timeout=20)

    assert second == [["c"]]
    holders = [record["_id"] for record in database[APPLIED_EVENTS].find({"claims": claim_id(CONSUMER, "b")})]
    assert holders == [claim_id(CONSUMER, "a")]


def test_what_a_consumer_recorded_before_one_record_per_transaction_is_still_recognised(mongo_client, database):
    legacy = database[APPLIED_EVENTS]
    legacy.insert_many([{"_id": claim_id(CONSUMER, event_id), "consumer": CONSUMER, "event_id": event_id,
                         "applied_at": utc_now()} for event_id in ("old-1", "old-2")])

    ensure_platform_indexes(database)
    ensure_platform_indexes(database)  # every start: the index is made once

    assert CLAIMS_INDEX in legacy.index_information()
    assert applied_claims(legacy, [claim_id(CONSUMER, "old-2"), claim_id(CONSUMER, "new")]) == {
        claim_id(CONSUMER, "old-2")}
    assert claimed(mongo_client, database, ["old-1", "new", "old-2"]) == ["new"]
