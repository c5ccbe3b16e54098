"""The batching logic of ``shared.runtime.batches``: when a batch is handed on, and what happens to its deliveries
after its handler call (acknowledged, deferred, split, retried or parked)."""

import copy
import sys
import time

import eventlet
import pytest
from eventlet.queue import LightQueue
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError, OperationFailure

from shared.runtime import config
from shared.runtime.batches import (
    DEFAULT_MAX_BATCH,
    BatchedEventHandler,
    batch_settings,
    collect,
    refused_as_duplicate,
    top_up,
)
from shared.runtime.messaging import ATTEMPTS_HEADER, ParkingQueueConsumer


class Message:
    def __init__(self, name: str, attempts: int = 0):
        self.name = name
        self.headers = {ATTEMPTS_HEADER: attempts} if attempts else {}


class Container:
    """What the entrypoint asks of nameko's container: workers (recorded, run on demand) and managed threads
    (run at once)."""

    service_name = "svc"
    max_workers = 10

    def __init__(self, config=None):
        self.config = config or {}
        self.workers: list[tuple] = []

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        self.workers.append((args[0], handle_result))

    def spawn_managed_thread(self, run, identifier=None):
        return eventlet.spawn(run)


class Recording(BatchedEventHandler):
    """The entrypoint with its broker side recorded: what it would ack, defer, retry or park."""

    def __init__(self, **kwargs):
        super().__init__("src", "thing.made.v1", lane="smb", check_contract=False, **kwargs)
        self.container = Container()
        self.method_name = "on_things"
        self.done: list[tuple[str, str]] = []
        self.configure_batching()

    def unpack_message_headers(self, message):
        return {}

    def settle(self, message, *, requeue):
        self.done.append(("requeued" if requeue else "acked", message.name))

    def defer(self, message, exc):
        self.done.append(("deferred", message.name))

    def retry_or_park(self, message, exc_info):
        self.done.append(("retried", message.name))

    def park(self, message, reason, attempts, kind):
        self.done.append((f"parked {kind}", message.name))


def envelope(name: str) -> dict:
    return {"id": name, "type": "t", "data": {}}


def deliver(handler: Recording, *names: str, attempts: int = 0) -> None:
    for name in names:
        handler.handle_message(envelope(name), Message(name, attempts))


def failure(exc: BaseException):
    try:
        raise exc
    except BaseException:
        return sys.exc_info()


def queued(*items) -> LightQueue:
    inbox = LightQueue()
    for item in items:
        inbox.put(item)
    return inbox


def test_a_batch_takes_what_arrived_up_to_its_size_and_leaves_the_rest():
    inbox = queued(*"abcde")
    assert collect(inbox, max_batch=3, max_wait=10) == ["a", "b", "c"]
    assert collect(inbox, max_batch=3, max_wait=0) == ["d", "e"]


def test_a_batch_waits_for_its_first_delivery_then_at_most_the_wait():
    inbox = LightQueue()
    eventlet.spawn_after(0.05, inbox.put, "late")
    eventlet.spawn_after(0.06, inbox.put, "just in time")
    eventlet.spawn_after(0.5, inbox.put, "too late")
    started = time.monotonic()
    assert collect(inbox, max_batch=50, max_wait=0.1) == ["late", "just in time"]
    assert 0.1 <= time.monotonic() - started < 0.4


def test_a_batch_waiting_for_its_slot_is_topped_up_with_what_arrived_meanwhile():
    assert top_up(queued("c", "d", "e"), ["a", "b"], max_batch=4) == ["a", "b", "c", "d"]


def test_one_batch_at_a_time_the_next_one_growing_while_it_is_handled():
    handler = Recording(max_batch=50, max_wait_ms=1)
    dispatcher = eventlet.spawn(handler.dispatch)
    deliver(handler, "a")
    eventlet.sleep(0.05)
    deliver(handler, "b", "c", "d")
    eventlet.sleep(0.05)
    assert [[e["id"] for e in batch] for batch, _ in handler.container.workers] == [["a"]]
    handler.container.workers[0][1](None, exc_info=None)  # the first is settled: its slot is free
    eventlet.sleep(0.05)
    assert [[e["id"] for e in batch] for batch, _ in handler.container.workers] == [["a"], ["b", "c", "d"]]
    dispatcher.kill()


def test_a_handler_taking_two_batches_at_once_starts_the_second_while_the_first_is_handled():
    handler = Recording(max_batch=2, max_wait_ms=1, in_flight=2)
    dispatcher = eventlet.spawn(handler.dispatch)
    deliver(handler, "a", "b", "c", "d", "e")
    eventlet.sleep(0.05)
    assert [[e["id"] for e in batch] for batch, _ in handler.container.workers] == [["a", "b"], ["c", "d"]]
    handler.container.workers[1][1](None, exc_info=None)  # the second is settled first: its slot is free
    eventlet.sleep(0.05)
    assert [[e["id"] for e in batch] for batch, _ in handler.container.workers] == [["a", "b"], ["c", "d"], ["e"]]
    assert ("acked", "c") in handler.done and ("acked", "a") not in handler.done
    dispatcher.kill()


def test_a_batched_handler_takes_at_least_one_batch_at_a_time():
    with pytest.raises(ValueError):
        Recording(in_flight=0)


def test_a_message_back_from_a_delay_queue_is_handled_alone():
    handler = Recording(max_batch=50, max_wait_ms=10_000)
    deliver(handler, "fresh")
    deliver(handler, "retried", attempts=1)
    assert [[e["id"] for e in batch] for batch, _ in handler.container.workers] == [["retried"]]
    assert [body["id"] for body, _ in top_up(handler.inbox, [], 10)] == ["fresh"]


def test_a_message_breaking_its_contract_is_parked_alone_and_never_batched():
    handler = Recording(max_batch=2, max_wait_ms=10_000)
    handler.handle_message({"no": "envelope"}, Message("junk"))
    deliver(handler, "a")
    assert handler.done == [("parked contract", "junk")]
    assert [body["id"] for body, _ in top_up(handler.inbox, [], 10)] == ["a"]


def run_batch(handler: Recording, *names: str, exc: BaseException | None = None) -> None:
    handler.spawn([(envelope(name), Message(name)) for name in names], slot=True)
    (_, handle_result), = handler.container.workers[-1:]
    handle_result(None, exc_info=failure(exc) if exc else None)
    eventlet.sleep(0)  # a split spawns its singles from a thread of its own


def test_a_committed_batch_acknowledges_every_delivery():
    handler = Recording(max_batch=3)
    run_batch(handler, "a", "b", "c")
    assert handler.done == [("acked", "a"), ("acked", "b"), ("acked", "c")]


def test_a_transient_failure_defers_the_whole_batch():
    handler = Recording(max_batch=2)
    run_batch(handler, "a", "b", exc=AutoReconnect("primary gone"))
    assert handler.done == [("deferred", "a"), ("deferred", "b")]
    assert len(handler.container.workers) == 1


def test_a_failure_of_a_message_splits_the_batch_into_singles_and_spends_no_attempt():
    handler = Recording(max_batch=3)
    run_batch(handler, "a", "poison", "c", exc=RuntimeError("poison"))
    assert handler.done == []
    singles = [[e["id"] for e in batch] for batch, _ in handler.container.workers[1:]]
    assert singles == [["a"], ["poison"], ["c"]]
    # each single settles alone: the good ones acked, the poison retried (its own attempt)
    for (_, handle_result), exc in zip(handler.container.workers[1:], [None, RuntimeError("poison"), None],
                                           strict=True):
        handle_result(None, exc_info=failure(exc) if exc else None)
    assert handler.done == [("acked", "a"), ("retried", "poison"), ("acked", "c")]


def test_a_single_that_fails_transiently_is_deferred_through_the_usual_path():
    handler = Recording(max_batch=1)
    run_batch(handler, "a", exc=AutoReconnect("gone"))
    assert handler.done == [("retried", "a")]  # retry_or_park decides: deferral for a transient failure


def test_batch_settings_come_from_the_services_settings_where_set_else_the_handlers_own_else_the_defaults():
    assert batch_settings({}, None, None) == (DEFAULT_MAX_BATCH, 0.005)
    assert batch_settings({"BATCH_MAX_SIZE": None, "BATCH_MAX_WAIT_MS": None}, 100, None) == (100, 0.005)
    assert batch_settings({"BATCH_MAX_SIZE": 7, "BATCH_MAX_WAIT_MS": 0}, None, None) == (7, 0.0)
    assert batch_settings({"BATCH_MAX_SIZE": 7}, 3, 40) == (7, 0.04)  # an operator's setting wins
    with pytest.raises(ValueError):
        batch_settings({"BATCH_MAX_SIZE": 0}, None, None)


def test_matchings_posting_published_takes_100_a_batch_unless_the_operator_sets_the_size():
    from services.matching.service import MatchingService

    def published_handler(environ: dict) -> BatchedEventHandler:
        declared = next(entrypoint for entrypoint in MatchingService.on_posting_published.nameko_entrypoints
                        if isinstance(entrypoint, BatchedEventHandler))
        handler = copy.copy(declared)  # as nameko binds it, without the broker side
        handler.container = Container(config.nameko_config("matching", environ=environ))
        handler.configure_batching()
        return handler

    default = published_handler({"TASKLINKR_CONFIG_FILE": "/nonexistent.yaml"})
    assert (default.max_batch, default.max_wait, default.prefetch_wanted) == (100, 0.005, 300)
    assert published_handler({"TASKLINKR_CONFIG_FILE": "/nonexistent.yaml",
                              "TASKLINKR_MATCHING_BATCH_MAX_SIZE": "20"}).max_batch == 20


def test_the_consumers_prefetch_holds_one_batch_more_than_its_batched_handlers_take_at_once():
    consumer = ParkingQueueConsumer()
    consumer.container = Container()
    consumer._providers = {Recording(max_batch=40), Recording(max_batch=3)}
    assert consumer.prefetch_count == 80
    consumer._providers = {Recording(max_batch=40), Recording(max_batch=30, in_flight=2)}
    assert consumer.prefetch_count == 90
    consumer._providers = {Recording(max_batch=3)}
    assert consumer.prefetch_count == 10  # never below max_workers


def test_only_a_unique_index_refusing_every_write_sends_a_batch_to_its_second_try():
    duplicate = {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key error"}
    other = {"index": 1, "code": 121, "errmsg": "Document failed validation"}
    assert refused_as_duplicate(DuplicateKeyError("E11000 duplicate key error"))
    assert refused_as_duplicate(BulkWriteError({"writeErrors": [duplicate, {**duplicate, "index": 3}]}))
    assert not refused_as_duplicate(BulkWriteError({"writeErrors": [duplicate, other]}))
    assert not refused_as_duplicate(BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64}]}))
    assert not refused_as_duplicate(OperationFailure("not a write error", code=11000))
