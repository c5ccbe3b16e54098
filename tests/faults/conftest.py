from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

import eventlet
import pytest
import requests
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client.parser import text_string_to_metric_families

from shared.runtime import topology
from shared.runtime.messaging import parse_delays
from tests.faults import ledger
from tests.faults.harness import (
    OwnDatabase,
    ServiceProcess,
    consumers_on,
    management_url_for,
    queue_depths,
    service_env,
    wait_for,
)
from tests.support.infra import free_port, unique_name
from tests.support.kit import dead_letters

# TASKLINKR_FAULTS_CONSUMER=batched runs the fault tests against the batched consumer (shared.runtime.batches).
BATCHED = os.environ.get("TASKLINKR_FAULTS_CONSUMER") == "batched"
CONSUMER_CLASS = "BatchedLedgerConsumer" if BATCHED else "LedgerConsumer"
CONSUMER_QUEUE = f"evt-{ledger.PRODUCER}-{ledger.EVENT}--{ledger.CONSUMER}.on_ledger_entry--smb"
# The management API refreshes its queue figures every 5 s: "no message unacknowledged" is believed only after
# it held for longer than that.
STATS_REFRESH_SECONDS = 5.0


class LedgerRig:
    """A ledger producer and consumer as separate processes on a given broker and database."""

    def __init__(self, amqp_uri: str, mongo_uri: str, logs, management_url: str | None = None,
                 consumer_settings: dict[str, str] | None = None, **settings: str):
        self.amqp_uri = amqp_uri
        self.management_url = management_url or management_url_for(amqp_uri)
        self.mongo_uri = mongo_uri
        self.producer_db = unique_name("ledger_producer")
        self.consumer_db = unique_name("ledger_consumer")
        self.settings = {"retry_delays": "0.2,0.5,1", **settings}
        self.env = service_env(amqp_uri, mongo_uri,
                               {ledger.PRODUCER: self.producer_db, ledger.CONSUMER: self.consumer_db},
                               **self.settings)
        # Each process serves its metrics: the tests count outcomes there, not in log text.
        self.metrics_ports = {ledger.PRODUCER: free_port(), ledger.CONSUMER: free_port()}
        self.env.update({f"TASKLINKR_{service.upper()}_METRICS_PORT": str(port)
                         for service, port in self.metrics_ports.items()})
        topology_env = {f"TASKLINKR_{k.upper()}": v for k, v in self.settings.items()}
        self.queues = [queue.name for queue in topology.declarations(ledger.CATALOG, topology_env)[1]]
        self.longest_retry_delay = max(parse_delays(self.settings["retry_delays"]))
        self._delete_leftovers(topology_env)
        topology.apply(amqp_uri, ledger.CATALOG, environ=topology_env)
        self.producer = ServiceProcess("tests.faults.ledger:LedgerProducer", self.env, logs / "producer.log")
        consumer_env = {**self.env, **{f"TASKLINKR_{k.upper()}": v for k, v in (consumer_settings or {}).items()}}
        self.consumer = ServiceProcess(f"tests.faults.ledger:{CONSUMER_CLASS}", consumer_env, logs / "consumer.log")
        self.parked: set[str] = set()

    def _delete_leftovers(self, environ: dict) -> None:
        """Queues are named after the services: an earlier test's queues (with its messages and its arguments,
        such as a smaller max length) are deleted so every rig starts from the declared topology."""
        _, queues = topology.declarations(ledger.CATALOG, environ)
        with Connection(self.amqp_uri) as connection:
            for queue in queues:
                connection.channel().queue_delete(queue.name)

    def start_producer(self) -> None:
        self.producer.start()
        assert wait_for(lambda: self.call("ping"), timeout=60), self.producer.log()[-3000:]

    def start_consumer(self) -> None:
        self.consumer.start()
        assert wait_for(lambda: consumers_on(self.amqp_uri, CONSUMER_QUEUE) >= 1, timeout=60), \
            self.consumer.log()[-3000:]

    def call(self, method: str, *args, timeout: float = 15):
        with ServiceRpcProxy(ledger.PRODUCER, {"AMQP_URI": self.amqp_uri}, timeout=timeout) as proxy:
            return getattr(proxy, method)(*args)

    def emit(self, first_seq: int, count: int, behaviour: dict | None = None) -> list[str]:
        return self.call("emit", first_seq, count, behaviour)

    @contextlib.contextmanager
    def steady_load(self, behaviour: dict, batch: int = 20, pause: float = 0.1) -> Iterator[list[str]]:
        """Emit batches of ``batch`` events while the block runs; yields the ids the producer accepted (a batch it
        refused, the database being down, is not owed)."""
        accepted: list[str] = []
        running = [True]

        def load():
            seq = 0
            while running[0]:
                try:
                    accepted.extend(self.emit(seq, batch, behaviour))
                except Exception:  # refused: not accepted, so not owed
                    pass
                seq += batch
                time.sleep(pause)

        loader = eventlet.spawn(load)
        try:
            yield accepted
        finally:
            running[0] = False
            loader.wait()

    def under_load(self, inject: Callable[[], object], hold_seconds: float,
                   recover: Callable[[], object] | None = None) -> ledger.Ledger:
        """Start both services under steady load; once work is in flight ``inject`` the fault, keep the load on for
        ``hold_seconds``, ``recover``, and return the settled ledger (every answered request committed)."""
        self.start_producer()
        self.start_consumer()
        with self.steady_load({"slow_ms": 20}, pause=0.05) as accepted:
            assert wait_for(lambda: len(accepted) >= 200, timeout=60)
            in_flight = self.busy()
            inject()
            assert in_flight > 0, "the fault must hit work in flight"
            time.sleep(hold_seconds)
            if recover is not None:
                recover()
        result = self.settled(timeout=240)
        assert set(accepted) <= result.committed, "every answered request must have been committed"
        return result

    def publish_directly(self, envelopes: list[dict]) -> None:
        with Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as connection:
            producer = Producer(connection.channel())
            exchange = Exchange(f"{ledger.PRODUCER}.events", type="topic", durable=True)
            for envelope in envelopes:
                producer.publish(envelope, exchange=exchange, routing_key=ledger.EVENT, serializer="json",
                                 mandatory=True, delivery_mode=2)

    def collect_parked(self) -> set[str]:
        import json

        for body, _headers in dead_letters(self.amqp_uri, ledger.CONSUMER):
            self.parked.add(json.loads(body)["id"])
        return self.parked

    def ledger(self) -> ledger.Ledger:
        return ledger.read_ledger(self.mongo_uri, self.producer_db, self.consumer_db, self.parked)

    def metric(self, service: str, name: str, **labels: str) -> float:
        """The sum of a counter's samples in ``service``'s process (those with ``labels``); 0 before any."""
        text = requests.get(f"http://127.0.0.1:{self.metrics_ports[service]}/metrics", timeout=10).text
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))

    def queue_depths(self) -> dict[str, tuple[int, int]]:
        """Ready and unacknowledged messages of every queue of the rig's topology (retry and dead-letter too)."""
        return queue_depths(self.amqp_uri, self.management_url, self.queues)

    def in_flight(self) -> int:
        """Work not done yet: events pending in the outbox, and messages ready or unacknowledged in any queue."""
        return ledger.backlog(self.mongo_uri, self.producer_db) + sum(map(sum, self.queue_depths().values()))

    def busy(self, timeout: float = 60) -> int:
        """Wait (a while) until work is in flight, so a fault injected next hits it; returns how much was."""
        seen = [0]

        def busy_now():
            seen[0] = self.in_flight()
            return seen[0] > 0

        wait_for(busy_now, timeout=timeout, interval=0.1)
        return seen[0]

    def settled(self, timeout: float = 120) -> ledger.Ledger:
        """Wait until nothing is pending in the outbox, everything committed was applied or parked, and every queue
        (retry and delay queues included) held no message, ready or unacknowledged, for longer than both the
        longest retry delay and the broker's statistics refresh: duplicates still queued and redeliveries still
        waiting are applied (or counted) before the verdict."""
        quiet_for = max(self.longest_retry_delay, STATS_REFRESH_SECONDS) + 1
        quiet_since: list[float] = []

        def done():
            self.collect_parked()
            if ledger.backlog(self.mongo_uri, self.producer_db) or self.ledger().lost or self.in_flight():
                quiet_since.clear()
                return False
            if not quiet_since:
                quiet_since.append(time.monotonic())
            return time.monotonic() - quiet_since[0] > quiet_for

        assert wait_for(done, timeout=timeout, interval=0.5), f"not settled in {timeout}s: {self.ledger()}, " \
            f"queues {self.queue_depths()}"
        result = self.ledger()
        print(result)
        return result

    def stop(self) -> None:
        self.consumer.stop()
        self.producer.stop()

    def kill(self) -> None:
        self.consumer.kill()
        self.producer.kill()


@pytest.fixture
def rig_factory(tmp_path):
    rigs = []

    def make(amqp_uri: str, mongo_uri: str, management_url: str | None = None,
             consumer_settings: dict[str, str] | None = None, **settings: str) -> LedgerRig:
        rig = LedgerRig(amqp_uri, mongo_uri, tmp_path, management_url, consumer_settings, **settings)
        rigs.append(rig)
        return rig

    yield make
    # The ledger is read and judged by now. A graceful stop would wait up to 20 s per process for a broker or
    # database the test has already taken away; nothing is owed any more, so the processes are simply killed.
    for rig in rigs:
        rig.kill()


@pytest.fixture
def own_database(tmp_path):
    """An embedded database of the test's own, started, that it may stop, kill and restart; stopped afterwards.
    ``own_database(test_commands=True)`` enables MongoDB's fault injection on it."""
    databases = []

    def make(test_commands: bool = False) -> OwnDatabase:
        database = OwnDatabase(tmp_path, test_commands=test_commands)
        database.start()
        databases.append(database)
        return database

    yield make
    for database in databases:
        database.stop()
