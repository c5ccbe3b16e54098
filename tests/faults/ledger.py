"""A producer and a consumer that count every message, for fault tests.

The producer commits ``ledger.entry.v1`` events through the real outbox; the consumer applies each through the
real idempotent, retrying handler and records its effect with a counter that is *not* idempotent by itself, so a
double application shows as ``times == 2``. The ledger then compares:

- lost: committed by the producer (accepted) but never applied;
- doubled: applied more than once;
- unexpected: applied but never committed by the producer.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

import eventlet
from pymongo import MongoClient, UpdateOne

from shared.runtime.batches import subscribe_batch
from shared.runtime.messaging import subscribe
from shared.runtime.outbox import outbox_events, pending_count
from shared.runtime.persistence import Database, Store
from shared.runtime.rpc import rpc
from shared.runtime.tracing import handled_event

EVENT = "ledger.entry.v1"
PRODUCER = "ledgerproducer"
CONSUMER = "ledgerconsumer"
CATALOG = {"events": [{"type": EVENT, "producer": PRODUCER,
                       "consumers": [{"service": CONSUMER, "handler": "on_ledger_entry"}]}]}


class LedgerProducer:
    name = PRODUCER
    store = Database()

    @rpc
    def emit(self, first_seq: int, count: int, behaviour: dict | None = None) -> list[str]:
        """Commit ``count`` events in one transaction; returns their ids once committed."""

        def work(uow):
            return [
                uow.emit(EVENT, subject=f"entry-{seq}", lane="smb",
                         data={"seq": seq, **(behaviour or {})})["id"]
                for seq in range(first_seq, first_seq + count)
            ]

        return self.store.transact(work)

    @rpc
    def ping(self) -> bool:
        return True


class DyingStore(Store):
    """A store whose process dies at one exact point when the event asks for it (``die_after_commit``): after the
    handler's transaction committed and before the delivery is acknowledged. Once per event (remembered outside
    the transaction), so its redelivery runs normally."""

    def transact(self, work, **options):
        result = super().transact(work, **options)
        args = self._worker_ctx.args or ((),)
        handled = args[0] if isinstance(args[0], list) else [handled_event(self._worker_ctx) or {}]  # a batch, or one
        for event in handled:
            if (event.get("data") or {}).get("die_after_commit") and \
                    self.db.died_after_commit.find_one({"_id": event["id"]}) is None:
                self.db.died_after_commit.insert_one({"_id": event["id"]})
                os.kill(os.getpid(), signal.SIGKILL)
        return result


class DyingDatabase(Database):
    def get_dependency(self, worker_ctx) -> Store:
        return DyingStore(self, worker_ctx)


class LedgerConsumer:
    name = CONSUMER
    store = DyingDatabase()

    @subscribe(PRODUCER, EVENT, check_contract=False)
    def on_ledger_entry(self, uow, envelope):
        behave(self.store.db, envelope)
        uow.db.effects.update_one(
            {"_id": envelope["id"]}, {"$inc": {"times": 1}, "$set": {"seq": envelope["data"]["seq"]}}, upsert=True,
            session=uow.session,
        )


class BatchedLedgerConsumer:
    """The same consumer through ``subscribe_batch`` (the fault rig runs it with ``TASKLINKR_FAULTS_CONSUMER=batched``):
    the same queue, the same behaviours per entry, every effect of a batch in one bulk write."""

    name = CONSUMER
    store = DyingDatabase()

    @subscribe_batch(PRODUCER, EVENT, check_contract=False)
    def on_ledger_entry(self, uow, envelopes):
        for envelope in envelopes:
            behave(self.store.db, envelope)
        uow.db.effects.bulk_write([UpdateOne({"_id": envelope["id"]}, {"$inc": {"times": 1},
                                                                       "$set": {"seq": envelope["data"]["seq"]}},
                                             upsert=True) for envelope in envelopes], session=uow.session)


def behave(db, envelope: dict) -> None:
    """What an entry asks its handler to do before its effect: be slow, hang, fail always, or fail once."""
    data = envelope["data"]
    if data.get("slow_ms"):
        eventlet.sleep(data["slow_ms"] / 1000)
    if data.get("hang"):
        eventlet.sleep(3600)
    if data.get("fail") == "always":
        raise RuntimeError(f"entry {data['seq']} always fails")
    if data.get("fail_every") and data["seq"] % data["fail_every"] == 0:
        # Fail the first attempt only; remembered outside the transaction so the retry succeeds.
        if db.failed_once.find_one({"_id": envelope["id"]}) is None:
            db.failed_once.insert_one({"_id": envelope["id"]})
            raise RuntimeError(f"entry {data['seq']} fails once")


@dataclass
class Ledger:
    committed: set[str]
    applied: dict[str, int]
    parked: set[str] = field(default_factory=set)

    @property
    def lost(self) -> set[str]:
        return self.committed - set(self.applied) - self.parked

    @property
    def doubled(self) -> dict[str, int]:
        return {event_id: times for event_id, times in self.applied.items() if times > 1}

    @property
    def unexpected(self) -> set[str]:
        return set(self.applied) - self.committed

    def __str__(self) -> str:
        return (f"ledger: committed={len(self.committed)} applied={len(self.applied)} parked={len(self.parked)} "
                f"lost={len(self.lost)} doubled={len(self.doubled)} unexpected={len(self.unexpected)}")


def read_ledger(mongo_uri: str, producer_db: str, consumer_db: str, parked: set[str] | None = None) -> Ledger:
    with MongoClient(mongo_uri) as client:
        committed = {event["event_id"] for event in outbox_events(client[producer_db])}
        applied = {doc["_id"]: doc["times"] for doc in client[consumer_db].effects.find({}, {"times": 1})}
    return Ledger(committed=committed, applied=applied, parked=parked or set())


def backlog(mongo_uri: str, producer_db: str) -> int:
    with MongoClient(mongo_uri) as client:
        return pending_count(client[producer_db])
