"""make bench-relay: the outbox relay against publishing with one confirm awaited per message, same run.

Both publish the same N persistent, mandatory envelopes to the same durable queue on the local RabbitMQ (a vhost
of the benchmark's own) and wait for every confirm. The relay also reads them from the outbox and marks them
published in the embedded database (with the platform's outbox indexes, as a service has them), so its figure
includes that work. Each round measures both; the ratio is reported per round (median and spread) and best of
rounds. Target: relay >= 3x per-message.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from bson import ObjectId  # noqa: E402
from kombu import Connection, Exchange, Queue  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from shared.runtime.envelope import amqp_headers, build  # noqa: E402
from shared.runtime.outbox import OutboxRelay  # noqa: E402
from shared.runtime.persistence import ensure_platform_indexes  # noqa: E402
from shared.tools import embedded  # noqa: E402
from shared.vocabulary.times import utc_now  # noqa: E402
from tests.support.infra import free_port, local_vhost  # noqa: E402

SERVICE = "benchrelay"
EVENT = "bench.tick.v1"
N = int(os.environ.get("BENCH_RELAY_EVENTS", "5000"))
ROUNDS = int(os.environ.get("BENCH_RELAY_ROUNDS", "3"))


def envelopes(n: int) -> list[dict]:
    return [build(service=SERVICE, routing_key=EVENT, subject=f"tick-{i}", data={"seq": i, "pad": "x" * 200},
                  lane="smb") for i in range(n)]


def per_message(amqp_uri: str, events: list[dict]) -> float:
    exchange = Exchange(f"{SERVICE}.events", type="topic", durable=True)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        started = time.perf_counter()
        for envelope in events:
            producer.publish(envelope, exchange=exchange, routing_key=EVENT, serializer="json", mandatory=True,
                             delivery_mode=2, headers=amqp_headers(envelope), message_id=envelope["id"])
        return time.perf_counter() - started


def relay_publish_path(amqp_uri: str, db, events: list[dict], batch_size: int) -> float:
    """The relay's broker path alone (pipelined confirms, mandatory), from documents already in memory."""
    docs = [{"_id": ObjectId(), "event_id": e["id"], "routing_key": EVENT, "envelope": e, "headers": amqp_headers(e)}
            for e in events]
    publisher = OutboxRelay(db=db, amqp_uri=amqp_uri, service=SERVICE, batch_size=batch_size)
    publisher.subscribed_types = frozenset({EVENT})
    started = time.perf_counter()
    for first in range(0, len(docs), batch_size):
        batch = docs[first:first + batch_size]
        assert len(publisher._publish_batch(batch)) == len(batch)
    elapsed = time.perf_counter() - started
    publisher.stop()
    return elapsed


def relay(amqp_uri: str, db, events: list[dict], batch_size: int) -> float:
    db.outbox.delete_many({})
    db.relay_lease.delete_many({})  # each round is a fresh relay, not a competing replica
    db.outbox.insert_many([
        {"_id": ObjectId(), "event_id": e["id"], "exchange": f"{SERVICE}.events", "routing_key": EVENT,
         "envelope": e, "headers": amqp_headers(e), "status": "pending", "created_at": utc_now()} for e in events
    ])
    publisher = OutboxRelay(db=db, amqp_uri=amqp_uri, service=SERVICE, batch_size=batch_size)
    publisher.subscribed_types = frozenset({EVENT})  # a returned event would be a failure here, not "nobody wants it"
    started = time.perf_counter()
    assert publisher.acquire_lease()
    published = publisher.publish_pending()
    elapsed = time.perf_counter() - started
    publisher.stop()
    assert published == len(events) and db.outbox.count_documents({"status": "pending"}) == 0
    return elapsed


def main() -> None:
    console = Console()
    port = free_port()
    database = embedded.start(":memory:", port)
    try:
        with local_vhost() as amqp_uri, MongoClient(embedded.uri_for(port), tz_aware=True) as client:
            sink = Queue("bench-relay-sink", exchange=Exchange(f"{SERVICE}.events", type="topic", durable=True),
                         routing_key=EVENT, durable=True)
            with Connection(amqp_uri) as connection:
                sink(connection.channel()).declare()
            db = client["bench_relay"]
            ensure_platform_indexes(db)
            events = envelopes(N)
            results = {"events": N, "rounds": ROUNDS, "per_message": [], "relay": {}, "round_ratios": []}
            for _ in range(ROUNDS):
                baseline = N / per_message(amqp_uri, events)
                results["per_message"].append(baseline)
                rates = []
                for batch in (100, 500):
                    rates.append(N / relay(amqp_uri, db, events, batch))
                    results["relay"].setdefault(str(batch), []).append(rates[-1])
                results["round_ratios"].append(max(rates) / baseline)
                results.setdefault("publish_path", []).append(N / relay_publish_path(amqp_uri, db, events, 500))
                with Connection(amqp_uri) as connection:
                    sink(connection.channel()).purge()
    finally:
        database.terminate()
        database.wait(timeout=15)

    baseline = max(results["per_message"])
    table = Table(title=f"outbox relay vs one confirm per message ({N} events, best of {ROUNDS})")
    table.add_column("publisher")
    table.add_column("events/s", justify="right")
    table.add_column("x per-message", justify="right")
    table.add_row("kombu, confirm awaited per message", f"{baseline:,.0f}", "1.0")
    for batch, rates in results["relay"].items():
        best = max(rates)
        table.add_row(f"relay, pipelined confirms, batch {batch} (reads + marks the outbox too)", f"{best:,.0f}",
                      f"{best / baseline:.1f}")
    best_path = max(results["publish_path"])
    table.add_row("relay broker path alone (pipelined confirms, batch 500, no outbox I/O)", f"{best_path:,.0f}",
                  f"{best_path / baseline:.1f}")
    console.print(table)
    best_relay = max(max(r) for r in results["relay"].values())
    results["ratio"] = best_relay / baseline
    results["median_round_ratio"] = statistics.median(results["round_ratios"])
    results["target_met"] = results["median_round_ratio"] >= 3
    rounds = ", ".join(f"{r:.2f}" for r in results["round_ratios"])
    console.print(f"relay / per-message in each round (best batch size): {rounds}; median "
                  f"{results['median_round_ratio']:.2f}x; best of rounds {results['ratio']:.2f}x")
    console.print(f"target 3x: {'met' if results['target_met'] else 'NOT met'}")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "relay.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
