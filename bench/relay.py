"""make bench-relay: the outbox relay, draining a backlog and keeping up with sustained producers.

1. Draining (each round): N persistent, mandatory envelopes are published to a durable queue on the local RabbitMQ
   (a vhost of the benchmark's own) with one confirm awaited per message (kombu); then the same number, committed
   to the outbox in transactions of ``BENCH_RELAY_TX_EVENTS`` events (as services write them, ``outbox_event``: each
   envelope's JSON text), are drained by the relay (change stream read, pipelined confirms, its position stored at
   most every 0.25 s). Target: relay >= 3x per-message, in every round. Also reported: the CPU time per event of the
   relay, the database and the broker over each drain (the broker's all of it, other vhosts' work included).
2. Sustained (``BENCH_RELAY_SECONDS``, 60 s): a producer process commits events in transactions of
   ``BENCH_RELAY_TX_EVENTS`` at twice the per-message rate of the rounds (median) while the relay runs as in a
   service. Publish lag = broker confirm - the event's commit time. Targets: p99 lag < 1 s, and the outbox's size
   bounded (never above what segment + retention can hold at that rate, and all published at the end).

The sustained run uses 5 s segments (made ahead by the relay, as a service's relay makes its 60 s ones) dropped 5 s
after the relay passed them (production: ``TASKLINKR_OUTBOX_RETENTION_SECONDS``, at least 90 s), so that segments come
and go within the minute. It also reports where the relay's time went (``RELAY_CALLS``: wall time of its calls).
Figures go to bench-results/relay.json and relay.md. Ends with ``targets met: N of M``; exits 1 when one is missed.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from kombu import Connection, Exchange, Queue  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.write_concern import WriteConcern  # noqa: E402

from bench.common import broker_pid, stop_cleanly_on_sigterm, tree_cpu  # noqa: E402
from shared.runtime.envelope import amqp_headers, build  # noqa: E402
from shared.runtime.outbox import (  # noqa: E402
    OutboxRelay,  # noqa: E402
    outbox_document,
    outbox_event,
    pending_count,
    readable,
    segment_name,
    segments,
)
from shared.tools import embedded  # noqa: E402
from shared.vocabulary.times import utc_now  # noqa: E402
from tests.support.infra import free_port, local_vhost  # noqa: E402

SERVICE = "benchrelay"
EVENT = "bench.tick.v1"
N = int(os.environ.get("BENCH_RELAY_EVENTS", "5000"))
ROUNDS = int(os.environ.get("BENCH_RELAY_ROUNDS", "3"))
TX_EVENTS = int(os.environ.get("BENCH_RELAY_TX_EVENTS", "20"))
SECONDS = float(os.environ.get("BENCH_RELAY_SECONDS", "60"))
SEGMENT = 5
RETENTION = 5.0
DATABASE = "bench_relay"
# Where the relay's time goes in the sustained run: (label, object path on the relay, method). Wall time of each call;
# the stream read runs while a batch is out at the broker, so the rows overlap and do not add up to the run.
RELAY_CALLS = (
    ("idle: waiting for a wake-up or the poll interval", "_wake", "get"),
    ("reading the stream (a read that finds nothing awaits 50 ms)", "", "_read"),
    ("writing batches to the broker", "_publisher", "send"),
    ("waiting for a batch's confirms (the next batch at the broker meanwhile)", "_publisher", "outcomes"),
    ("storing the position", "", "_store_position"),
    ("dropping passed segments, making the next ones", "", "_drop_passed"),
    ("exporting the backlog gauges", "", "export_backlog"),
)


def envelopes(n: int, first: int = 0) -> list[dict]:
    return [build(service=SERVICE, routing_key=EVENT, subject=f"tick-{(first + i) % 997}",
                  data={"seq": first + i, "pad": "x" * 200}, lane="smb") for i in range(n)]


def outbox_events(batch: list[dict]) -> list[dict]:
    return [outbox_event(e, EVENT) for e in batch]


def per_message(amqp_uri: str, events: list[dict]) -> float:
    exchange = Exchange(f"{SERVICE}.events", type="topic", durable=True)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        started = time.perf_counter()
        for envelope in events:
            producer.publish(envelope, exchange=exchange, routing_key=EVENT, serializer="json", mandatory=True,
                             delivery_mode=2, headers=amqp_headers(envelope), message_id=envelope["id"])
        return time.perf_counter() - started


def relay_for(amqp_uri: str, db, **options) -> OutboxRelay:
    relay = OutboxRelay(db=db, amqp_uri=amqp_uri, service=SERVICE, lane="smb", batch_size=500, **options)
    relay.subscribed_types = frozenset({EVENT})  # a returned event would be a failure here, not "nobody wants it"
    # Each drain is a fresh relay taking over the last one's lease (and position), not a competing replica.
    db.relay_lease.update_many({}, {"$set": {"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}})
    assert relay.acquire_lease()
    # Connected before it is timed, as a running service's relay is (and as the per-message publisher is).
    relay._publisher._ensure_channel()
    return relay


def clock_calls(relay: OutboxRelay) -> dict[str, list[float]]:
    """Wrap the relay's calls named in ``RELAY_CALLS``; each label gets [calls, total seconds, longest seconds]."""
    clocks: dict[str, list[float]] = {}
    for label, path, name in RELAY_CALLS:
        owner = getattr(relay, path) if path else relay
        clocks[label] = clock = [0, 0.0, 0.0]
        setattr(owner, name, _clocked(getattr(owner, name), clock))
    return clocks


def _clocked(call, clock: list[float]):
    @functools.wraps(call)
    def clocked(*args, **kwargs):
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            took = time.perf_counter() - started
            clock[0] += 1
            clock[1] += took
            clock[2] = max(clock[2], took)
    return clocked


def drain(amqp_uri: str, db, events: list[dict], tx_events: int, cpu: dict[str, list[int]] | None = None,
          spent: dict[str, list[float]] | None = None) -> float:
    """The relay draining ``events`` committed in transactions of ``tx_events``, from its stored position. Given
    ``cpu`` (process ids by name), the CPU time per event (microseconds) of each over the drain goes to ``spent``."""
    relay = relay_for(amqp_uri, db)
    relay.publish_pending()  # its position: everything after it is the backlog
    segment = segment_name()
    db[segment].insert_many([outbox_document(outbox_events(events[i:i + tx_events]), utc_now())
                             for i in range(0, len(events), tx_events)])
    used = {name: tree_cpu(pids) for name, pids in (cpu or {}).items()}
    started = time.perf_counter()
    published = relay.publish_pending()
    elapsed = time.perf_counter() - started
    for name, pids in (cpu or {}).items():
        spent.setdefault(name, []).append(round(1e6 * (tree_cpu(pids) - used[name]) / len(events), 1))
    relay.stop()
    assert published == len(events), (published, len(events))
    db.drop_collection(segment)
    return elapsed


def produce(uri: str, rate: float, seconds: float, tx_events: int) -> None:
    """The producer process: transactions of ``tx_events`` events at ``rate`` events/s for ``seconds``."""
    with MongoClient(uri, tz_aware=True) as client:
        db = client[DATABASE]
        started, committed = time.monotonic(), 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            if committed >= due:
                time.sleep(min(0.01, (committed + tx_events - due) / rate))
                continue
            batch = outbox_events(envelopes(tx_events, committed))
            with client.start_session() as session:
                session.start_transaction(write_concern=WriteConcern("majority"))
                db[segment_name(seconds=SEGMENT)].insert_one(outbox_document(batch, utc_now()), session=session)
                session.commit_transaction()
            committed += tx_events
        print(json.dumps({"committed": committed}))


def sustained(amqp_uri: str, uri: str, db, rate: float) -> dict:
    relay = relay_for(amqp_uri, db, poll_seconds=0.05, retention_seconds=RETENTION, drop_grace=RETENTION,
                      segment_seconds=SEGMENT)
    relay.publish_pending()
    clocks = clock_calls(relay)
    lags: list[float] = []
    confirmed_of = relay._confirmed

    def measured(batch, sent):
        confirmed = set(confirmed_of(batch, sent))
        now = utc_now()
        lags.extend((now - datetime.fromisoformat(readable(doc)["envelope"]["time"])).total_seconds()
                    for doc in batch if doc["_id"] in confirmed)
        return list(confirmed)

    relay._confirmed = measured
    runner = eventlet.spawn(relay.run)
    started = time.monotonic()
    producer = subprocess.Popen([sys.executable, "-m", "bench.relay", "produce", uri, str(rate), str(SECONDS),
                                 str(TX_EVENTS)], stdout=subprocess.PIPE, text=True)
    sizes: list[int] = []
    while producer.poll() is None:
        eventlet.sleep(1.0)
        # Documents (metadata, no scan) x events per document: reading every document would load the server the
        # relay is measured on.
        sizes.append(sum(db[name].estimated_document_count() for name in segments(db)) * TX_EVENTS)
    committed = json.loads(producer.stdout.read().strip().splitlines()[-1])["committed"]
    deadline = time.monotonic() + 30
    while len(lags) < committed and time.monotonic() < deadline:
        eventlet.sleep(0.2)
    caught_up = time.monotonic() - (deadline - 30)
    ran = time.monotonic() - started
    relay.stop()
    runner.wait()
    lags.sort()
    bound = int(rate * (SEGMENT + RETENTION + 5))
    return {
        "rate_target": rate, "committed": committed, "published": len(lags), "seconds": SECONDS,
        "caught_up_after_producers_stopped_s": round(caught_up, 2),
        "lag_p50_s": lags[len(lags) // 2] if lags else None,
        "lag_p99_s": lags[int(len(lags) * 0.99)] if lags else None,
        "lag_max_s": lags[-1] if lags else None,
        "outbox_size_max": max(sizes), "outbox_size_last": sizes[-1], "outbox_size_bound": bound,
        "outbox_sizes": sizes, "pending_at_end": pending_count(db), "relay_ran_s": round(ran, 1),
        "relay_time": [{"call": label, "calls": int(calls), "total_s": round(total, 2),
                        "longest_ms": round(1000 * most, 1)} for label, (calls, total, most) in clocks.items()],
    }


def main() -> None:
    stop_cleanly_on_sigterm()
    port = free_port()
    database = embedded.start(":memory:", port)
    uri = embedded.uri_for(port)
    try:
        with local_vhost() as amqp_uri, MongoClient(uri, tz_aware=True) as client:
            sink = Queue("bench-relay-sink", exchange=Exchange(f"{SERVICE}.events", type="topic", durable=True),
                         routing_key=EVENT, durable=True)
            with Connection(amqp_uri) as connection:
                sink(connection.channel()).declare()
            db = client[DATABASE]
            events = envelopes(N)
            broker = broker_pid(amqp_uri)
            cpu = {"relay": [os.getpid()], "database": [database.pid], **({"broker": [broker]} if broker else {})}
            results: dict = {"events": N, "rounds": ROUNDS, "tx_events": TX_EVENTS, "per_message": [],
                             "relay": [], "relay_single_event_tx": [], "round_ratios": [],
                             "relay_cpu_us_per_event": {}}

            def emptied(measure, *args) -> float:
                """``measure(*args)`` publishing into the empty sink queue: each measurement finds the broker as the
                others do (not holding the previous one's 5,000 persistent messages)."""
                with Connection(amqp_uri) as connection:
                    sink(connection.channel()).purge()
                return measure(*args)

            for _ in range(ROUNDS):
                baseline = N / emptied(per_message, amqp_uri, events)
                rate = N / emptied(drain, amqp_uri, db, events, TX_EVENTS, cpu, results["relay_cpu_us_per_event"])
                single = N / emptied(drain, amqp_uri, db, events, 1)
                results["per_message"].append(baseline)
                results["relay"].append(rate)
                results["relay_single_event_tx"].append(single)
                results["round_ratios"].append(rate / baseline)
            results["sustained"] = emptied(sustained, amqp_uri, uri, db, 2 * statistics.median(results["per_message"]))
            with Connection(amqp_uri) as connection:
                sink(connection.channel()).purge()
    finally:
        database.terminate()
        database.wait(timeout=15)
    report(results)


def report(results: dict) -> None:
    s = results["sustained"]
    targets = [(f"round {i + 1}: relay >= 3x per-message ({r:.2f}x)", r >= 3)
               for i, r in enumerate(results["round_ratios"])]
    targets.append((f"sustained: publish lag p99 < 1 s ({s['lag_p99_s']:.3f} s)",
                    s["lag_p99_s"] is not None and s["lag_p99_s"] < 1.0 and s["published"] >= s["committed"]))
    targets.append((f"sustained: outbox bounded (max {s['outbox_size_max']:,} events, bound {s['outbox_size_bound']:,}"
                    f"; {s['pending_at_end']} pending at the end)",
                    s["outbox_size_max"] <= s["outbox_size_bound"] and s["pending_at_end"] == 0))
    results["targets"] = [{"target": name, "met": met} for name, met in targets]
    met = sum(met for _, met in targets)
    lines = [
        f"# make bench-relay ({results['events']:,} events, {results['rounds']} rounds, "
        f"{results['tx_events']} events per transaction)", "",
        "| round | per-message confirms | relay drain | relay / per-message | relay, 1 event per transaction |",
        "|---|---|---|---|---|",
    ]
    for i, (base, rate, ratio, single) in enumerate(zip(results["per_message"], results["relay"],
                                                        results["round_ratios"], results["relay_single_event_tx"],
                                                        strict=True)):
        lines.append(f"| {i + 1} | {base:,.0f}/s | {rate:,.0f}/s | {ratio:.2f}x | {single:,.0f}/s "
                     f"({single / base:.2f}x) |")
    if cpu := results["relay_cpu_us_per_event"]:
        lines += ["", "CPU time per event over the relay's drains (median of the rounds; the broker's all of its CPU, "
                  "other vhosts' work included): " + ", ".join(f"{name} {statistics.median(rounds):.0f} us"
                                                              for name, rounds in cpu.items())]
    lines += ["", f"Sustained {s['seconds']:.0f} s at {s['rate_target']:,.0f} events/s (2x per-message, median): "
              f"{s['committed']:,} committed, {s['published']:,} published; publish lag p50 {s['lag_p50_s']:.3f} s, "
              f"p99 {s['lag_p99_s']:.3f} s, max {s['lag_max_s']:.3f} s; outbox size max {s['outbox_size_max']:,}, "
              f"last {s['outbox_size_last']:,} (bound {s['outbox_size_bound']:,}); caught up "
              f"{s['caught_up_after_producers_stopped_s']:.1f} s after the producers stopped.", "",
              f"Where the relay's {s['relay_ran_s']:.0f} s went (wall time of its calls; the stream read overlaps "
              "publishing):", "", "| call | calls | total | mean | longest |", "|---|---|---|---|---|"]
    lines += [f"| {row['call']} | {row['calls']:,} | {row['total_s']:.2f} s | "
              f"{1000 * row['total_s'] / max(row['calls'], 1):.1f} ms | {row['longest_ms']:.0f} ms |"
              for row in s["relay_time"]]
    lines += [""]
    lines += [f"- {'met' if ok else 'NOT met'}: {name}" for name, ok in targets]
    lines += ["", f"targets met: {met} of {len(targets)}"]
    text = "\n".join(lines)
    print(text)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "relay.json").write_text(json.dumps(results, indent=2))
    (out / "relay.md").write_text(text + "\n")
    if met < len(targets):
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["produce"]:
        produce(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
