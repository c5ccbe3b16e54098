"""``make bench-lanes``: does the small lane stay fast while the large lane is flooded?

Over the local RabbitMQ (a vhost of the benchmark's own, the platform's topology applied) and the embedded
database, with real matching processes (``tasklinkr run matching --lane <lane>``) ranking a market of providers
loaded into their database. Postings are published as ``posting.published.v1`` to the postings exchange with their
lane header (as the postings service's relay does); a bench queue bound to matching's exchange records when each
posting's first shortlist (``matches.proposed.v1``) arrives. Latency = that arrival - the moment it was published.

Three phases of the same length, one run:

1. **idle**: small-lane (smb) postings at a steady rate; one matching process per lane (``--lane smb``,
   ``--lane enterprise``), the enterprise one idle.
2. **flood, lanes on**: the same small-lane traffic while the enterprise lane gets 10x that rate of heavier
   postings (firm work open to every market and time zone, long descriptions: bigger messages and larger eligible
   sets to rank). Each lane has its own queue and its own process; the enterprise backlog is purged afterwards.
3. **flood, lanes off**: the same flood, every posting marked lane smb, so all of them share ONE queue, consumed
   by two matching processes (``--lane smb`` twice): the same processes, workers and database as phase 2, only the
   queue is shared. Small-lane postings wait behind the flood's backlog.

Matching's outbox relay is one per lane (docs/operations.md, The outbox relay): each lane's process publishes its
own lane's shortlists, so in phases 1 and 2 the small lane's are published by the small lane's process (in phase 3
by one of the two processes on the shared queue). The report names each lane's holder in each phase.

Target (issue 15): with lanes, the small lane's p99 under the flood is at most 2x its idle p99; and every
small-lane posting gets its shortlist in every phase. Without lanes the report shows how far the p99 grows.
Billing (item -> invoice line) is not measured here. Figures go to ``bench-results/lanes.json`` and
``bench-results/lanes.md``; the last line is ``targets met: N of M`` and the exit status is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime

from kombu import Connection, Consumer, Exchange, Producer, Queue
from pymongo import MongoClient
from rich.progress import Progress

from bench.matching import (
    PY,
    RESULTS,
    ROOT,
    console,
    cpu_seconds,
    infrastructure,
    load_providers,
    machine_busy_seconds,
    matching_env,
    percentile,
    progress,
    rss_mb,
    stop,
)
from shared.runtime import contracts, messaging
from shared.runtime import envelope as envelopes
from shared.runtime.outbox import relay_states
from tests.unit.matching import population

SMALL, LARGE = "smb", "enterprise"
TENANTS = {SMALL: "ten_" + "5" * 32, LARGE: "ten_" + "e" * 32}
POSTINGS_EXCHANGE = "postings.events"
PUBLISHED = "posting.published.v1"
TARGET_RATIO = 2.0


def posting_queue(lane: str) -> str:
    return messaging.queue_name("postings", PUBLISHED, "matching", "on_posting_published", lane)


def posting_event(rng: random.Random, tenant_lane: str, heavy: bool, lane: str) -> dict:
    """A published posting of ``tenant_lane``'s client, carried in ``lane``; heavy = large-lane work."""
    posting = population.posting(rng, tenant_id=TENANTS[tenant_lane])
    if heavy:
        posting.update(model=rng.choice(["bpo", "ito", "kpo"]), category=rng.choice(population.CATEGORY_IDS),
                       hours_per_week=160, min_overlap_hours=0, shoring={"preference": "any", "required": False},
                       description=("Run and staff the service desk for our regional operations; "
                                    "ticket volumes, escalation paths and reporting as agreed. ") * 20)
        pool = population.SKILLS[posting["category"]]
        posting["required_skills"] = [{"name": n, "min_level": 2} for n in rng.sample(pool, 2)]
        posting["nice_to_have_skills"] = [{"name": n, "min_level": 2} for n in pool
                                          if n not in {r["name"] for r in posting["required_skills"]}][:1]
    posting["assessment"] = {"classification": "non_core", "reason": "Routine work.", "confirmed_core": False}
    return envelopes.build(service="postings", routing_key=PUBLISHED, subject=posting["id"],
                           data={"posting": posting}, lane=lane, tenant=TENANTS[tenant_lane])


def stream(rng: random.Random, count: int, tenant_lane: str, heavy: bool, lane: str) -> list[dict]:
    events = [posting_event(rng, tenant_lane, heavy, lane) for _ in range(count)]
    problems = contracts.errors(events[0])  # matching parks an event that breaks its contract: fail here instead
    if problems:
        raise ValueError(f"generated posting breaks its contract: {problems}")
    return events


class Recorder:
    """Publish times (ours) and first-shortlist arrival times (a bench queue on matching's exchange), by posting."""

    def __init__(self, amqp_uri: str) -> None:
        self.amqp_uri = amqp_uri
        self.sent: dict[str, float] = {}
        self.arrived: dict[str, float] = {}
        self.queue = Queue(f"bench-lanes-{os.getpid()}", exchange=Exchange("matching.events", type="topic",
                                                                          durable=True),
                           routing_key="matches.proposed.v1", durable=False, auto_delete=True)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the bench queue on matching.events was not declared")

    def _run(self) -> None:
        with Connection(self.amqp_uri) as connection:
            def arrived(body, message):
                self.arrived.setdefault(body["subject"], time.perf_counter())
                message.ack()

            with Consumer(connection.channel(), queues=[self.queue], callbacks=[arrived], accept=["json"]):
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def publish(self, events: list[dict], rate: float, started: float, done: threading.Event | None = None) -> None:
        """Publish ``events`` at ``rate``/s from ``started`` (confirmed, persistent), each when it is due."""
        with Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as connection:
            producer = Producer(connection.channel())
            exchange = Exchange(POSTINGS_EXCHANGE, type="topic", durable=True)
            for n, event in enumerate(events):
                wait = started + n / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                self.sent[event["subject"]] = time.perf_counter()
                producer.publish(event, exchange=exchange, routing_key=PUBLISHED, serializer="json",
                                 headers=envelopes.amqp_headers(event), delivery_mode=2)
        if done is not None:
            done.set()

    def wait_for(self, ids: list[str], timeout: float, bar: Progress, task) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answered = sum(i in self.arrived for i in ids)
            bar.update(task, completed=answered)
            if answered == len(ids):
                return
            time.sleep(0.2)

    def latencies(self, ids: list[str]) -> list[float]:
        return [self.arrived[i] - self.sent[i] for i in ids if i in self.arrived and i in self.sent]


def summary(samples: list[float], expected: int) -> dict:
    if not samples:
        return {"samples": 0, "expected": expected, "missing": expected}
    return {"samples": len(samples), "expected": expected, "missing": expected - len(samples),
            "p50_ms": round(percentile(samples, 0.5) * 1000, 1), "p99_ms": round(percentile(samples, 0.99) * 1000, 1),
            "max_ms": round(max(samples) * 1000, 1)}


def purge(amqp_uri: str, name: str) -> int:
    with Connection(amqp_uri) as connection:
        return Queue(name)(connection.channel()).purge() or 0


def phase(recorder: Recorder, name: str, args, rng: random.Random, bar: Progress, flood_lane: str | None,
          small_lane: str, processes: dict[str, int], relay_holder) -> dict:
    """``args.seconds`` of small-lane postings at ``args.rate``/s, and with ``flood_lane`` the large lane's
    heavier postings at 10x that rate carried in that lane; then wait for every small-lane shortlist."""
    small = stream(rng, int(args.rate * args.seconds), SMALL, False, small_lane)
    large = stream(rng, int(args.rate * 10 * args.seconds), LARGE, True, flood_lane) if flood_lane else []
    cpu_before = {label: cpu_seconds(pid) for label, pid in processes.items()}
    busy_before, total_before = machine_busy_seconds()
    load_before = os.getloadavg()[0]
    task = bar.add_task(f"{name}: small lane answered", total=len(small))
    started = time.perf_counter() + 0.2
    flood = threading.Thread(target=recorder.publish, args=(large, args.rate * 10, started), daemon=True)
    if large:
        flood.start()
    ticker = threading.Thread(target=recorder.publish, args=(small, args.rate, started), daemon=True)
    ticker.start()
    while ticker.is_alive():
        bar.update(task, completed=sum(e["subject"] in recorder.arrived for e in small))
        time.sleep(0.2)
    if large:
        flood.join()
    published_for = time.perf_counter() - started
    large_answered_during = sum(e["subject"] in recorder.arrived for e in large)
    recorder.wait_for([e["subject"] for e in small], args.drain_timeout, bar, task)
    waited = time.perf_counter() - started - published_for
    busy_after, total_after = machine_busy_seconds()
    result = {
        "matching_outbox_relay_held_by": relay_holder(processes),
        "small_lane_carried_in": small_lane, "flood_carried_in": flood_lane,
        "small_rate_per_s": args.rate, "flood_rate_per_s": args.rate * 10 if large else 0,
        "published_for_s": round(published_for, 1), "waited_for_small_lane_after_s": round(waited, 1),
        "small": summary(recorder.latencies([e["subject"] for e in small]), len(small)),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "machine_busy": round((busy_after - busy_before) / max(1e-9, total_after - total_before), 2),
        "cpu_s": {label: round(cpu_seconds(pid) - cpu_before[label], 1) for label, pid in processes.items()
                  if pid_alive(pid)},
    }
    if large:
        result["large"] = {"published": len(large), "answered_while_publishing": large_answered_during,
                           "answered_per_s_while_publishing": round(large_answered_during / published_for, 1),
                           **{k: v for k, v in summary(recorder.latencies([e["subject"] for e in large]),
                                                       len(large)).items() if k.endswith("_ms")}}
        # The flood's backlog is dropped so the next phase starts from empty queues; the answers still in flight
        # (prefetched) land in the recorder and are ignored.
        result["large"]["backlog_purged"] = purge(recorder.amqp_uri, posting_queue(flood_lane))
        time.sleep(3)
    return result


def pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def through_the_broker(args, bar: Progress) -> dict:
    report: dict = {"providers": args.providers, "seconds_per_phase": args.seconds}
    rng = random.Random(15)
    with ExitStack() as stack:
        amqp_uri, database_process, mongo_uri = infrastructure(stack)
        database = MongoClient(mongo_uri)["bench_lanes"]
        load_providers(database, args.providers, bar)
        env = matching_env(amqp_uri, mongo_uri, "bench_lanes", outbox_poll_seconds=0.05)

        logs: dict[int, object] = {}

        def start_matching(label: str, lane: str) -> subprocess.Popen:
            path = RESULTS / f"lanes-{label}.log"
            log = open(path, "wb")  # noqa: SIM115 - the child owns it
            process = subprocess.Popen([PY, "-m", "shared.tools.cli", "run", "matching", "--lane", lane], cwd=ROOT,
                                       env=env, stdout=log, stderr=subprocess.STDOUT)
            stack.callback(stop, process)
            logs[process.pid] = path
            return process

        def wait_rebuilt(processes: list[subprocess.Popen]) -> None:
            task = bar.add_task("matching: rebuilding its index from its db", total=len(processes))
            deadline = time.monotonic() + 900
            for process in processes:
                while b"matching index rebuilt" not in logs[process.pid].read_bytes():
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"matching did not come up; see {logs[process.pid]}")
                    time.sleep(0.3)
                bar.advance(task)

        def relay_holder(processes: dict[str, int]) -> str:
            """Which process publishes each lane of matching's outbox (a relay per lane)."""
            pids = {str(pid): label for label, pid in processes.items()}
            holders = []
            for relay in relay_states(database):
                owner = relay["holder"] or ""
                holders.append(f"{relay['lane']}: " + pids.get(owner.split(":")[1] if owner.count(":") >= 2 else "",
                                                             owner or "nobody"))
            return ", ".join(holders)

        recorder = Recorder(amqp_uri)
        recorder.start()
        stack.callback(recorder.close)

        def warm_up(lane: str, count: int = 20) -> None:
            events = stream(rng, count, SMALL, False, lane)
            task = bar.add_task(f"warming up ({lane} queue)", total=count)
            recorder.publish(events, 50.0, time.perf_counter())
            recorder.wait_for([e["subject"] for e in events], 300, bar, task)
            if not all(e["subject"] in recorder.arrived for e in events):
                raise RuntimeError(f"warm-up on the {lane} queue got no shortlists; see {RESULTS.name}/lanes-*.log")

        small_process, large_process = start_matching(SMALL, SMALL), start_matching(LARGE, LARGE)
        wait_rebuilt([small_process, large_process])
        warm_up(SMALL)
        warm_up(LARGE)
        processes = {"matching smb": small_process.pid, "matching enterprise": large_process.pid,
                     "database": database_process.pid}
        report["idle"] = phase(recorder, "idle", args, rng, bar, None, SMALL, processes, relay_holder)
        report["flood_with_lanes"] = phase(recorder, "flood, lanes on", args, rng, bar, LARGE, SMALL, processes,
                                           relay_holder)
        report["matching_memory"] = {SMALL: rss_mb(small_process.pid), LARGE: rss_mb(large_process.pid)}

        # Lanes off: one shared queue. The enterprise process makes way for a second process on the small lane's
        # queue, so the same two processes (and workers) consume, and every posting is carried in that one lane.
        stop(large_process)
        second = start_matching("smb-2", SMALL)
        wait_rebuilt([second])
        warm_up(SMALL, 40)
        processes = {"matching smb": small_process.pid, "matching smb #2": second.pid,
                     "database": database_process.pid}
        report["flood_without_lanes"] = phase(recorder, "flood, lanes off (one queue)", args, rng, bar, SMALL, SMALL,
                                              processes, relay_holder)
    return report


def verdicts(report: dict) -> dict[str, bool]:
    idle, lanes, shared = report["idle"]["small"], report["flood_with_lanes"]["small"], \
        report["flood_without_lanes"]["small"]
    ratio = lanes.get("p99_ms", float("inf")) / idle["p99_ms"] if idle.get("p99_ms") else float("inf")
    report["p99_ratio_with_lanes"] = round(ratio, 2)
    if shared.get("p99_ms") and idle.get("p99_ms"):
        report["p99_ratio_without_lanes"] = round(shared["p99_ms"] / idle["p99_ms"], 2)
    return {
        f"with lanes, small-lane p99 under the flood <= {TARGET_RATIO:g}x idle p99 ({ratio:.2f}x)":
            ratio <= TARGET_RATIO,
        "every small-lane posting got its shortlist, in every phase":
            all(report[p]["small"]["missing"] == 0 for p in ("idle", "flood_with_lanes", "flood_without_lanes")),
    }


def cell(summary: dict) -> str:
    if not summary.get("samples"):
        return "none answered"
    text = f"{summary['p50_ms']} / {summary['p99_ms']} ms (max {summary['max_ms']})"
    return text + (f", **{summary['missing']} of {summary['expected']} missing**" if summary["missing"] else "")


def markdown(report: dict, checks: dict[str, bool]) -> str:
    idle = report["idle"]
    lines = ["# Lanes benchmark", "",
             f"Run {report['started_at']} on {os.cpu_count()} cores (shared with other work); {report['providers']:,} "
             f"providers; {report['seconds_per_phase']:g} s per phase; small lane {idle['small_rate_per_s']:g} "
             f"postings/s, flood {idle['small_rate_per_s'] * 10:g} heavier postings/s. Latency: "
             "posting.published.v1 published → matches.proposed.v1 (its first shortlist) arrived.", "",
             "| phase | small lane p50 / p99 | vs idle p99 | flood answered while publishing | flood backlog "
             "purged | matching's outbox relays in | machine busy | load |", "|---|---|---|---|---|---|---|---|"]
    names = {"idle": "idle (small lane only)", "flood_with_lanes": "flood, lanes on (a queue and a process per lane)",
             "flood_without_lanes": "flood, lanes off (one shared queue, two processes)"}
    for key, label in names.items():
        result = report[key]
        small, large = result["small"], result.get("large")
        ratio = (f"{small['p99_ms'] / idle['small']['p99_ms']:.2f}×"
                 if small.get("p99_ms") and idle["small"].get("p99_ms") else "")
        lines.append(f"| {label} | {cell(small)} | {ratio} | "
                     + (f"{large['answered_while_publishing']:,} of {large['published']:,} "
                        f"({large['answered_per_s_while_publishing']}/s)" if large else "–")
                     + f" | {large['backlog_purged'] if large else '–'} | {result['matching_outbox_relay_held_by']} | "
                     f"{result['machine_busy']:.0%} | "
                     f"{result['load_average_1min'][0]}→{result['load_average_1min'][1]} |")
    lines += ["", "CPU seconds per phase: " + "; ".join(
        f"{names[key].split(' (')[0]}: " + ", ".join(f"{label} {s}" for label, s in report[key]["cpu_s"].items())
        for key in names), "",
        "Not measured: billing (item → invoice line).", "", "| target | met |", "|---|---|"]
    lines += [f"| {name} | {'yes' if met else '**no**'} |" for name, met in checks.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=8.0, help="small-lane postings per second (flood: 10x)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--drain-timeout", type=float, default=300.0,
                        help="how long to wait for the small lane's last shortlists after a phase")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    report: dict = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                    "target_ratio": TARGET_RATIO}
    with progress() as bar:
        report.update(through_the_broker(args, bar))
    checks = verdicts(report)
    report["targets_met"] = checks
    (RESULTS / "lanes.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report, checks)
    (RESULTS / "lanes.md").write_text(text)
    console.print(text)
    met = sum(checks.values())
    print(f"targets met: {met} of {len(checks)}")
    if met < len(checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
