"""Small test-only services and helpers that exercise the platform kit against a real broker and database."""


import eventlet
from kombu import Connection, Exchange, Producer
from nameko.rpc import rpc
from pymongo import UpdateOne

from shared.runtime.batches import subscribe_batch
from shared.runtime.envelope import build
from shared.runtime.messaging import dead_letter_queue, subscribe
from shared.runtime.persistence import Database, Store

FIXED: set[str] = set()  # thing ids whose handler has been "fixed" (for replay tests)


class KitProducer:
    name = "kitproducer"
    store = Database()

    @rpc
    def make(self, thing_id, fail=False):
        def work(uow):
            uow.db.things.insert_one({"_id": thing_id}, session=uow.session)
            uow.emit("thing.made.v1", subject=thing_id, data={"thing_id": thing_id}, lane="smb", tenant="t1")
            if fail:
                raise RuntimeError("boom after the writes")

        self.store.transact(work)


class KitConsumer:
    name = "kitconsumer"
    store = Database()

    @subscribe("kitproducer", "thing.made.v1", check_contract=False)
    def on_thing_made(self, uow, envelope):
        uow.db.seen.update_one(
            {"_id": envelope["data"]["thing_id"]}, {"$inc": {"times": 1}}, upsert=True, session=uow.session
        )


CATALOG = {
    "events": [
        {
            "type": "thing.made.v1",
            "producer": "kitproducer",
            "consumers": [{"service": "kitconsumer", "handler": "on_thing_made"}],
        }
    ]
}




FAILURES: dict[str, int] = {}


class FlakyConsumer:
    name = "flakyconsumer"
    store = Database()

    @subscribe("kitproducer", "thing.made.v1", check_contract=False)
    def on_thing_made(self, uow, envelope):
        thing_id = envelope["data"]["thing_id"]
        failures_wanted = envelope["data"].get("fail_times", 0)
        if thing_id not in FIXED and FAILURES.get(thing_id, 0) < failures_wanted:
            FAILURES[thing_id] = FAILURES.get(thing_id, 0) + 1
            raise RuntimeError(f"{thing_id} fails on purpose")
        if "serial" in envelope["data"]:  # unique per thing where the test indexes it
            uow.db.serials.insert_one({"_id": thing_id, "serial": envelope["data"]["serial"]}, session=uow.session)
        uow.db.seen.update_one({"_id": thing_id}, {"$inc": {"times": 1}}, upsert=True, session=uow.session)


FLAKY_CATALOG = {
    "events": [
        {
            "type": "thing.made.v1",
            "producer": "kitproducer",
            "consumers": [{"service": "flakyconsumer", "handler": "on_thing_made"}],
        }
    ]
}


def publish_raw(amqp_uri, body, content_type="application/json"):
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        Producer(conn.channel()).publish(
            body, exchange=Exchange("kitproducer.events", type="topic", durable=True),
            routing_key="thing.made.v1", content_type=content_type, content_encoding="utf-8", mandatory=True,
        )


def thing(thing_id, **data):
    return build(service="kitproducer", routing_key="thing.made.v1", subject=thing_id,
                 data={"thing_id": thing_id, **data}, lane="smb")


def dead_letters(amqp_uri, service):
    parked = []
    with Connection(amqp_uri) as conn:
        queue = dead_letter_queue(service)(conn.channel())
        queue.declare()  # a fresh vhost has none until a consumer of the service started
        while (message := queue.get(no_ack=False)) is not None:
            parked.append((message.body, dict(message.headers)))
            message.ack()
    return parked




# -- a batched consumer (shared.runtime.batches) --------------------------------------------------------------------

BATCH_CATALOG = {"events": [{"type": "thing.made.v1", "producer": "kitproducer",
                             "consumers": [{"service": "batchconsumer", "handler": "on_things_made"}]}]}


class PausingStore(Store):
    """A store that, once per thing marked ``pause_after_commit``, waits for ever after its batch committed: the
    deliveries stay unacknowledged until the test kills the container (``paused`` records it, outside the
    transaction)."""

    def transact(self, work, **options):
        result = super().transact(work, **options)
        batch = (self._worker_ctx.args or [[]])[0]
        marked = [e for e in batch if isinstance(e, dict) and (e.get("data") or {}).get("pause_after_commit")]
        if marked and self.db.paused.find_one({"_id": marked[0]["id"]}) is None:
            self.db.paused.insert_one({"_id": marked[0]["id"]})
            eventlet.sleep(3600)
        return result


class PausingDatabase(Database):
    def get_dependency(self, worker_ctx) -> Store:
        return PausingStore(self, worker_ctx)


class BatchConsumer:
    """Applies things in batches: each batch recorded (its size and things), each thing counted, and a
    ``thing.counted.v1`` emitted per thing; a thing marked ``poison`` always fails, one with ``fail_times`` fails
    that many times (counted in ``FAILURES``)."""

    name = "batchconsumer"
    store = PausingDatabase()

    @subscribe_batch("kitproducer", "thing.made.v1", check_contract=False, max_batch=20, max_wait_ms=300)
    def on_things_made(self, uow, envelopes):
        things = [envelope["data"]["thing_id"] for envelope in envelopes]
        for envelope in envelopes:
            data = envelope["data"]
            if data.get("poison"):
                raise RuntimeError(f"{data['thing_id']} is poison")
            if FAILURES.get(data["thing_id"], 0) < data.get("fail_times", 0):
                FAILURES[data["thing_id"]] = FAILURES.get(data["thing_id"], 0) + 1
                raise RuntimeError(f"{data['thing_id']} fails on purpose")
        uow.db.batches.insert_one({"things": things, "size": len(envelopes)}, session=uow.session)
        uow.db.seen.bulk_write([UpdateOne({"_id": thing_id}, {"$inc": {"times": 1}}, upsert=True)
                                for thing_id in things], session=uow.session)
        for envelope in envelopes:
            with uow.caused_by(envelope):
                uow.emit("thing.counted.v1", subject=envelope["subject"], lane="smb",
                         data={"thing_id": envelope["data"]["thing_id"]})
