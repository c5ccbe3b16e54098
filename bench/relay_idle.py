"""make bench-relay-idle: how long an idle relay leaves an event another process committed, what an idle relay
costs, and what counting a lane's backlog costs.

1. Idle lag: a relay runs as in a service (``OutboxRelay.run`` in a greenthread, ``poll_seconds`` 1 s, the
   platform's default) and is idle; a process of its own commits one event at a time, 0.3-1.3 s apart at random (so
   commits fall anywhere within a poll interval), ``BENCH_IDLE_EVENTS`` events. Lag = the event's arrival in a queue
   bound to it - its commit (the committing process's clock once the insert returned; same machine). Target: p99
   below a quarter of the poll interval.
2. Idle cost: nothing committed for ``BENCH_IDLE_SECONDS``: CPU seconds of the database server and of this process
   (the relay), and while it runs, the longest a greenthread ticking every 10 ms waited (the relay's wait must not
   block the hub). Target: the server's idle CPU at most 2% of a core.
3. Backlog count: ``pending_count(db, lane)`` with ``BENCH_IDLE_DOCUMENTS`` outbox documents of 20 events in the
   current segment (two in three of the lane counted): (a) the lane's published position past all but its last 10,
   (b) nothing published. Wall time per call and the database server's CPU per call. Target: (a) below 50 ms.

Figures go to bench-results/relay_idle.json and .md; the last line is ``targets met: N of M`` (exit 1 when missed).
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402

from kombu import Connection, Exchange, Queue  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from bench.common import (  # noqa: E402
    PY,
    RESULTS,
    ROOT,
    cpu_seconds,
    finish,
    percentile,
    start_database,
    stop_cleanly_on_sigterm,
)
from shared.runtime.envelope import build  # noqa: E402
from shared.runtime.outbox import (  # noqa: E402
    RELAY_LEASES,
    OutboxRelay,
    lease_id,
    outbox_documents,
    outbox_event,
    pending_count,
    prepare_segments,
    segment_name,
)
from shared.vocabulary.times import utc_now  # noqa: E402
from tests.support.infra import local_vhost  # noqa: E402

SERVICE = "benchidle"
EVENT = "bench.idled.v1"
DATABASE = "bench_relay_idle"
EVENTS = int(os.environ.get("BENCH_IDLE_EVENTS", "40"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "20"))
DOCUMENTS = int(os.environ.get("BENCH_IDLE_DOCUMENTS", "3000"))
POLL_SECONDS = 1.0


def one_event(seq: int, lane: str = "smb", pad: int = 0) -> dict:
    envelope = build(service=SERVICE, routing_key=EVENT, subject=f"idle-{seq}", data={"seq": seq, "pad": "p" * pad},
                     lane=lane)
    return outbox_event(envelope, EVENT)


def commit_events(uri: str, count: int) -> None:
    """The other process: commits ``count`` events one by one at random moments; prints {event id: commit time}."""
    committed = {}
    with MongoClient(uri, tz_aware=True) as client:
        db = client[DATABASE]
        for seq in range(count):
            time.sleep(random.uniform(0.3, 1.3))
            event = one_event(seq)
            db[segment_name()].insert_many(outbox_documents([event], utc_now()))
            committed[event["event_id"]] = time.time()
    print(json.dumps(committed))


def idle_lag(amqp_uri: str, uri: str, db, sink: Queue, database_pid: int) -> dict:
    relay = OutboxRelay(db=db, amqp_uri=amqp_uri, service=SERVICE, lane="smb", poll_seconds=POLL_SECONDS)
    relay.subscribed_types = frozenset({EVENT})
    arrived: dict[str, float] = {}
    listening = True

    def listen() -> None:
        with Connection(amqp_uri) as connection:
            def received(body, message):
                arrived[message.properties["message_id"]] = time.time()
                message.ack()
            with connection.Consumer(sink, callbacks=[received]):
                while listening:
                    try:
                        connection.drain_events(timeout=0.2)
                    except TimeoutError:
                        continue

    listener = eventlet.spawn(listen)
    running = eventlet.spawn(relay.run)
    try:
        eventlet.sleep(3)  # the relay took its lease, opened its stream and is idle
        committer = subprocess.run([PY, "-m", "bench.relay_idle", "commit", uri, str(EVENTS)], cwd=ROOT,
                                   capture_output=True, text=True, check=True)
        committed = json.loads(committer.stdout.strip().splitlines()[-1])
        deadline = time.monotonic() + 10
        while len(arrived) < len(committed) and time.monotonic() < deadline:
            eventlet.sleep(0.1)
        lags = [arrived[event_id] - at for event_id, at in committed.items() if event_id in arrived]
        # Idle: nothing committed; the server's and this process's CPU, and how late a 10 ms ticker wakes.
        late: list[float] = []

        def tick() -> None:
            end = time.monotonic() + IDLE_SECONDS
            while time.monotonic() < end:
                before = time.monotonic()
                eventlet.sleep(0.01)
                late.append(time.monotonic() - before - 0.01)

        server_before, own_before = cpu_seconds(database_pid), cpu_seconds(os.getpid())
        eventlet.spawn(tick).wait()
        server_cpu, own_cpu = cpu_seconds(database_pid) - server_before, cpu_seconds(os.getpid()) - own_before
    finally:
        listening = False
        relay.stop()
        running.kill()
        listener.wait()
    return {"committed": len(committed), "published": len(lags),
            "lag_p50_s": round(percentile(lags, 0.5), 3) if lags else None,
            "lag_p99_s": round(percentile(lags, 0.99), 3) if lags else None,
            "lag_max_s": round(max(lags), 3) if lags else None,
            "idle_seconds": IDLE_SECONDS, "idle_server_cpu_s": round(server_cpu, 3),
            "idle_relay_process_cpu_s": round(own_cpu, 3),
            "ticker_late_max_ms": round(1000 * max(late), 1) if late else None}


def backlog_count(db, database_pid: int) -> dict:
    """``pending_count`` over DOCUMENTS documents of 20 events, two in three of the lane counted."""
    prepare_segments(db)
    segment = segment_name()
    docs = [outbox_documents([one_event(seq * 20 + k, "smb" if seq % 3 else "enterprise", pad=200)
                              for k in range(20)], utc_now())[0] for seq in range(DOCUMENTS)]
    for first in range(0, len(docs), 500):
        db[segment].insert_many(docs[first:first + 500])
    lane_docs = [doc["_id"] for doc in docs if doc["lane"] == "smb"]
    results = {}
    for label, published in (("position_past_all_but_10", lane_docs[-11]), ("nothing_published", None)):
        db[RELAY_LEASES].delete_many({})
        if published is not None:
            db[RELAY_LEASES].insert_one({"_id": lease_id("smb"), "published_id": published,
                                         "position_time": utc_now()})
        expected = 10 * 20 if published is not None else len(lane_docs) * 20
        calls, server_before, started = 5, cpu_seconds(database_pid), time.perf_counter()
        counts = {pending_count(db, "smb") for _ in range(calls)}
        results[label] = {"count": sorted(counts), "expected": expected,
                          "wall_ms": round(1000 * (time.perf_counter() - started) / calls, 1),
                          "server_cpu_ms": round(1000 * (cpu_seconds(database_pid) - server_before) / calls, 1)}
    return results


def main() -> None:
    stop_cleanly_on_sigterm()
    if sys.argv[1:2] == ["commit"]:
        commit_events(sys.argv[2], int(sys.argv[3]))
        return
    RESULTS.mkdir(exist_ok=True)
    with ExitStack() as stack:
        database, uri = start_database(stack)
        amqp_uri = stack.enter_context(local_vhost())
        client = stack.enter_context(MongoClient(uri, tz_aware=True))
        sink = Queue("bench-relay-idle-sink", exchange=Exchange(f"{SERVICE}.events", type="topic", durable=True),
                     routing_key=EVENT, durable=True)
        with Connection(amqp_uri) as connection:
            sink(connection.channel()).declare()
        load = os.getloadavg()[0]
        results = {"load_1min_before": round(load, 2), "poll_seconds": POLL_SECONDS,
                   "idle": idle_lag(amqp_uri, uri, client[DATABASE], sink, database.pid)}
        client.drop_database(DATABASE)
        results["backlog_count"] = backlog_count(client[DATABASE], database.pid)
        results["load_1min_after"] = round(os.getloadavg()[0], 2)
    report(results)


def report(results: dict) -> None:
    idle, counted = results["idle"], results["backlog_count"]
    near = counted["position_past_all_but_10"]
    checks = {
        f"idle lag p99 < {POLL_SECONDS / 4:.2f} s ({idle['lag_p99_s']} s, {idle['published']} of "
        f"{idle['committed']} published)": idle["lag_p99_s"] is not None and idle["published"] == idle["committed"]
        and idle["lag_p99_s"] < POLL_SECONDS / 4,
        f"idle database server CPU <= 2% of a core ({idle['idle_server_cpu_s']} s in {idle['idle_seconds']:.0f} s)":
            idle["idle_server_cpu_s"] <= 0.02 * idle["idle_seconds"],
        f"backlog count, position near the end < 50 ms ({near['wall_ms']} ms)":
            near["wall_ms"] < 50 and all(row["count"] == [row["expected"]] for row in counted.values()),
    }
    lines = [f"# bench-relay-idle (load {results['load_1min_before']} -> {results['load_1min_after']})", "",
             f"idle lag of an event another process committed (poll {results['poll_seconds']} s): "
             f"p50 {idle['lag_p50_s']} s, p99 {idle['lag_p99_s']} s, max {idle['lag_max_s']} s "
             f"({idle['published']} of {idle['committed']})",
             f"idle {idle['idle_seconds']:.0f} s: database server CPU {idle['idle_server_cpu_s']} s, relay process "
             f"CPU {idle['idle_relay_process_cpu_s']} s, a 10 ms ticker at most {idle['ticker_late_max_ms']} ms late",
             ""]
    for label, row in counted.items():
        lines.append(f"pending_count, {DOCUMENTS:,} documents, {label}: {row['wall_ms']} ms, database CPU "
                     f"{row['server_cpu_ms']} ms per call (count {row['count']}, expected {row['expected']})")
    finish("relay_idle", results, "\n".join(lines) + "\n", checks)


if __name__ == "__main__":
    main()
