"""``make bench-lanes``: does the small lane stay fast while the large lane is flooded?

Over the local RabbitMQ (a vhost of the benchmark's own, the platform's topology applied) and embedded databases
(one per service, as ``make run`` and compose give each service its own), with real service processes, one per
lane (``tasklinkr run <service> --lane <lane>``), each with its lane's resources as compose and Kubernetes give
them (``bench.lane_kit``: the large lane's processes with fewer workers and a lower CPU weight). Two parts:

**Matching** (publish → shortlist). Postings are published as ``posting.published.v1`` to the postings exchange
with their lane header (as the postings service's relay does); a bench queue on matching's exchange records when
each posting's first shortlist (``matches.proposed.v1``) arrives. Latency = that arrival - the moment it was
published, split at the shortlist's own ``time`` (when its transaction built it) into "queue and handler" and
"relay".

**Billing** (item → invoice line): ``bench.lanes_billing``.

Each part has three phases of the same length, one run:

1. **idle**: small-lane (smb) work at a steady rate; one process per lane, the enterprise one idle.
2. **flood, lanes on**: the same small-lane traffic while the enterprise lane gets 10x that rate of heavier work
   (matching: firm work open to every market and time zone, long descriptions: bigger messages and larger eligible
   sets to rank). Each lane has its own queue and its own process; the enterprise backlog is purged afterwards.
3. **flood, lanes off**: the same flood, every message in lane smb, so all of them share ONE queue, consumed by
   two processes of the same lane with the resources of a service that has no lanes (the default workers, equal
   CPU weight). Small-lane work waits behind the flood's backlog.

Phases 1 and 2 run matching as it is deployed, in cells: each lane's process with a database server of its own
(the large lane's at the lane's CPU weight), each with its own copy of the provider projection and its own outbox
(docs/operations.md, Cells). ``--shared-matching-database`` runs both lanes on one database server instead, to
compare what the shared server costs the small lane; phase 3 is unchanged.

Matching's outbox relay is one per lane (docs/operations.md, The outbox relay): each lane's process publishes its
own lane's shortlists, so in phases 1 and 2 the small lane's are published by the small lane's process (in phase 3
by one of the two processes on the shared queue). The report names each lane's holder in each phase.

Targets (issue 15): with lanes, the small lane's p99 under the flood is at most 2x its idle p99, in each part; and
every small-lane posting and item gets its answer in every phase. Figures go to ``bench-results/lanes.json`` and
``bench-results/lanes.md``; the last line is ``targets met: N of M`` and the exit status is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime

from kombu import Connection, Consumer, Exchange, Producer, Queue
from pymongo import MongoClient
from rich.progress import Progress

from bench import lanes_billing
from bench.common import RESULTS, console, infrastructure, progress, rss_mb, stop, stop_cleanly_on_sigterm
from bench.lane_kit import (
    DEPLOYED,
    LARGE,
    SMALL,
    TARGET_RATIO,
    UNSPLIT,
    Listener,
    PhaseCost,
    Services,
    cell_database,
    percentiles_ms,
    phase_table,
    purge,
    ratio,
    summary,
)
from bench.matching import load_providers, matching_env
from shared.runtime import contracts, messaging
from shared.runtime import envelope as envelopes
from shared.runtime.outbox import relay_states
from tests.unit.matching import population

TENANTS = {SMALL: "ten_" + "5" * 32, LARGE: "ten_" + "e" * 32}
POSTINGS_EXCHANGE = "postings.events"
PUBLISHED = "posting.published.v1"


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


class Recorder(Listener):
    """Publish times (ours) and first-shortlist arrival times (a bench queue on matching's exchange), by posting;
    with each shortlist's own time (its transaction's clock), where the latency went."""

    listens_to = "the bench queue on matching.events"

    def __init__(self, amqp_uri: str) -> None:
        super().__init__()
        self.amqp_uri = amqp_uri
        self.sent: dict[str, float] = {}
        self.arrived: dict[str, float] = {}
        self.committed: dict[str, float] = {}  # wall-clock seconds the shortlist was built, by posting
        self.queue = Queue(f"bench-lanes-{os.getpid()}", exchange=Exchange("matching.events", type="topic",
                                                                          durable=True),
                           routing_key="matches.proposed.v1", durable=False, auto_delete=True)

    def _run(self) -> None:
        with Connection(self.amqp_uri) as connection:
            def arrived(body, message):
                if body["subject"] not in self.arrived:
                    self.arrived[body["subject"]] = time.time()
                    self.committed[body["subject"]] = datetime.fromisoformat(body["time"]).timestamp()
                message.ack()

            with Consumer(connection.channel(), queues=[self.queue], callbacks=[arrived], accept=["json"]):
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass

    def publish(self, events: list[dict], rate: float, started: float) -> None:
        publish_at_rate(self.amqp_uri, events, rate, started, self.sent)

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

    def parts(self, ids: list[str]) -> dict:
        """Where the latency went: published → shortlist built (the queue, the handler, its transaction) and
        built → arrived (the outbox relay and the broker)."""
        done = [i for i in ids if i in self.arrived and i in self.sent]
        return {"queue_and_handler": percentiles_ms([self.committed[i] - self.sent[i] for i in done]),
                "relay": percentiles_ms([self.arrived[i] - self.committed[i] for i in done])}


def publish_at_rate(amqp_uri: str, events: list[dict], rate: float, started: float,
                    sent: dict[str, float] | None = None) -> dict[str, float]:
    """Publish ``events`` at ``rate``/s from ``started`` (confirmed, persistent), each when it is due; when each
    was sent, by posting."""
    sent = {} if sent is None else sent
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel())
        exchange = Exchange(POSTINGS_EXCHANGE, type="topic", durable=True)
        for n, event in enumerate(events):
            wait = started + n / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            sent[event["subject"]] = time.time()
            producer.publish(event, exchange=exchange, routing_key=PUBLISHED, serializer="json",
                             headers=envelopes.amqp_headers(event), delivery_mode=2)
    return sent


def flood_from_another_process(amqp_uri: str, events: list[dict], rate: float, started: float,
                               answer: multiprocessing.Queue) -> None:
    """The flood's publisher, in a process of its own as the large lane's clients are: publishing 10x the small
    lane's rate in the recorder's process would hold up the recorder (one interpreter lock) and skew its clock."""
    answer.put(publish_at_rate(amqp_uri, events, rate, started))


def phase(recorder: Recorder, name: str, args, rng: random.Random, bar: Progress, flood_lane: str | None,
          small_lane: str, processes: dict[str, int], relay_holder) -> dict:
    """``args.seconds`` of small-lane postings at ``args.rate``/s, and with ``flood_lane`` the large lane's
    heavier postings at 10x that rate carried in that lane; then wait for every small-lane shortlist."""
    small = stream(rng, int(args.rate * args.seconds), SMALL, False, small_lane)
    large = stream(rng, int(args.rate * 10 * args.seconds), LARGE, True, flood_lane) if flood_lane else []
    cost = PhaseCost(processes)
    task = bar.add_task(f"matching, {name}: small lane answered", total=len(small))
    started = time.time() + (5 if large else 0.2)  # the flood's process starts meanwhile
    spawn = multiprocessing.get_context("spawn")
    flood_sent: multiprocessing.Queue = spawn.Queue()
    flood = spawn.Process(target=flood_from_another_process,
                          args=(recorder.amqp_uri, large, args.rate * 10, started, flood_sent), daemon=True)
    if large:
        flood.start()
    ticker = threading.Thread(target=recorder.publish, args=(small, args.rate, started), daemon=True)
    ticker.start()
    while ticker.is_alive():
        bar.update(task, completed=sum(e["subject"] in recorder.arrived for e in small))
        time.sleep(0.2)
    if large:
        recorder.sent.update(flood_sent.get(timeout=600))
        flood.join()
    published_for = time.time() - started
    large_answered_during = sum(e["subject"] in recorder.arrived for e in large)
    small_ids = [e["subject"] for e in small]
    recorder.wait_for(small_ids, args.drain_timeout, bar, task)
    result = {
        "matching_outbox_relay_held_by": relay_holder(processes),
        "small_lane_carried_in": small_lane, "flood_carried_in": flood_lane,
        "small_rate_per_s": args.rate, "flood_rate_per_s": args.rate * 10 if large else 0,
        "published_for_s": round(published_for, 1),
        "waited_for_small_lane_after_s": round(time.time() - started - published_for, 1),
        "small": summary(recorder.latencies(small_ids), len(small)), "small_parts": recorder.parts(small_ids),
        **cost.report(),
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


def matching_part(args, bar: Progress, stack: ExitStack, amqp_uri: str, database_process, mongo_uri: str) -> dict:
    report: dict = {"providers": args.providers, "rate_per_s": args.rate}
    rng = random.Random(15)
    database = MongoClient(mongo_uri)["bench_lanes"]
    load_providers(database, args.providers, bar)
    env = {"matching": matching_env(amqp_uri, mongo_uri, "bench_lanes", outbox_poll_seconds=args.outbox_poll_seconds)}
    cell = None
    databases = [database]  # where each lane's relay keeps its lease: both lanes' in one, or each cell's in its own
    if args.matching_cells:  # the large lane's process on a database server of its own, with its own providers
        cell, cell_uri = cell_database(stack, args.resources[LARGE])
        databases.append(MongoClient(cell_uri)["bench_lanes"])
        load_providers(databases[-1], args.providers, bar)
        env[f"matching-{LARGE}"] = matching_env(amqp_uri, cell_uri, "bench_lanes",
                                                outbox_poll_seconds=args.outbox_poll_seconds)
    report["database_per_lane"] = cell is not None
    services = Services(stack, env)

    def relay_holder(processes: dict[str, int]) -> str:
        """Which process publishes each lane of matching's outbox (a relay per lane)."""
        pids = {str(pid): label for label, pid in processes.items()}
        owners: dict[str, str] = {}
        for relay in (relay for db in databases for relay in relay_states(db)):
            owners[relay["lane"]] = owners.get(relay["lane"]) or relay["holder"] or ""
        return ", ".join(f"{lane}: " + pids.get(owner.split(":")[1] if owner.count(":") >= 2 else "", owner or "nobody")
                         for lane, owner in owners.items())

    recorder = Recorder(amqp_uri)
    recorder.start()
    stack.callback(recorder.close)

    def warm_up(lane: str, count: int = 20) -> None:
        events = stream(rng, count, SMALL, False, lane)
        task = bar.add_task(f"matching: warming up ({lane} queue)", total=count)
        recorder.publish(events, 50.0, time.time())
        recorder.wait_for([e["subject"] for e in events], 300, bar, task)
        if not all(e["subject"] in recorder.arrived for e in events):
            raise RuntimeError(f"warm-up on the {lane} queue got no shortlists; see {RESULTS.name}/lanes-*.log")

    def rebuilt(processes) -> None:
        services.wait_for(processes, b"matching index rebuilt", bar, "matching: rebuilding its index from its db")

    started = {lane: services.start("matching", lane, lane, args.resources[lane]) for lane in (SMALL, LARGE)}
    rebuilt(list(started.values()))
    small_process, large_process = started[SMALL], started[LARGE]
    warm_up(SMALL)
    warm_up(LARGE)
    processes = {"matching smb": small_process.pid, "matching enterprise": large_process.pid,
                 "database": database_process.pid, **({"database enterprise": cell.pid} if cell else {})}
    report["idle"] = phase(recorder, "idle", args, rng, bar, None, SMALL, processes, relay_holder)
    report["flood_with_lanes"] = phase(recorder, "flood, lanes on", args, rng, bar, LARGE, SMALL, processes,
                                       relay_holder)
    report["memory"] = {SMALL: rss_mb(small_process.pid), LARGE: rss_mb(large_process.pid)}

    # Lanes off: one shared queue. The enterprise process makes way for a second process on the small lane's
    # queue, so two processes consume, every posting carried in that one lane, both as a service without lanes
    # runs (the default workers and CPU weight).
    stop(large_process)
    stop(small_process)
    unsplit = [services.start("matching", SMALL, "smb-1", UNSPLIT), services.start("matching", SMALL, "smb-2",
                                                                                   UNSPLIT)]
    rebuilt(unsplit)
    warm_up(SMALL, 40)
    processes = {"matching smb #1": unsplit[0].pid, "matching smb #2": unsplit[1].pid,
                 "database": database_process.pid}
    report["flood_without_lanes"] = phase(recorder, "flood, lanes off (one queue)", args, rng, bar, SMALL, SMALL,
                                          processes, relay_holder)
    for process in unsplit:
        stop(process)
    return report


def verdicts(report: dict) -> dict[str, bool]:
    checks = {}
    for part, what in (("matching", "shortlist"), ("billing", "invoice line")):
        if part not in report:
            continue
        result = report[part]
        idle = result["idle"]["small"]
        with_lanes = ratio(result["flood_with_lanes"]["small"], idle)
        result["p99_ratio_with_lanes"] = round(with_lanes, 2)
        result["p99_ratio_without_lanes"] = round(ratio(result["flood_without_lanes"]["small"], idle), 2)
        checks[f"{part}: with lanes, small-lane p99 under the flood <= {TARGET_RATIO:g}x idle p99 "
               f"({with_lanes:.2f}x)"] = with_lanes <= TARGET_RATIO
        checks[f"{part}: every small-lane {'posting' if part == 'matching' else 'item'} got its {what}, in every "
               "phase"] = all(result[p]["small"]["missing"] == 0
                              for p in ("idle", "flood_with_lanes", "flood_without_lanes"))
    return checks


def matching_markdown(result: dict) -> list[str]:
    def middle(phase: dict) -> list[str]:
        large, parts = phase.get("large"), phase["small_parts"]
        return [f"{parts['queue_and_handler'].get('p50_ms')} / {parts['relay'].get('p50_ms')} ms; "
                f"{parts['queue_and_handler'].get('p99_ms')} / {parts['relay'].get('p99_ms')} ms",
                f"{large['answered_while_publishing']:,} of {large['published']:,} "
                f"({large['answered_per_s_while_publishing']}/s)" if large else "–",
                str(large["backlog_purged"]) if large else "–", phase["matching_outbox_relay_held_by"]]

    rate = result["idle"]["small_rate_per_s"]
    cells = (" **A database server per lane** (phases 1 and 2: matching's cells)." if result.get("database_per_lane")
             else " **One database server for both lanes** (`--shared-matching-database`).")
    return ["## Matching: posting.published.v1 published → matches.proposed.v1 (its first shortlist) arrived", "",
            f"{result['providers']:,} providers; small lane {rate:g} postings/s, flood {rate * 10:g} heavier "
            f"postings/s.{cells}", ""] + phase_table(result, ["of which queue + handler / relay (p50; p99)",
                                                              "flood answered while publishing",
                                                              "flood backlog purged", "outbox relay in"], middle)


def markdown(report: dict, checks: dict[str, bool]) -> str:
    resources = report["lane_resources"]
    lines = ["# Lanes benchmark", "",
             f"Run {report['started_at']} on {os.cpu_count()} cores (shared with other work); "
             f"{report['seconds_per_phase']:g} s per phase. Lane resources (with lanes): "
             + "; ".join(f"{lane} {r['max_workers']} workers, nice {r['nice']}" for lane, r in resources.items())
             + "; lanes off: every process 10 workers, nice 0.", ""]
    if "matching" in report:
        lines += matching_markdown(report["matching"]) + [""]
    if "billing" in report:
        lines += lanes_billing.markdown(report["billing"]) + [""]
    lines += ["| target | met |", "|---|---|"]
    lines += [f"| {name} | {'yes' if met else '**no**'} |" for name, met in checks.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    stop_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=8.0, help="small-lane postings per second (flood: 10x)")
    parser.add_argument("--billing-rate", type=float, default=4.0,
                        help="small-lane items per second (flood: 10x, each a batch of 10 items)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--drain-timeout", type=float, default=300.0,
                        help="how long to wait for the small lane's last answers after a phase")
    parser.add_argument("--outbox-poll-seconds", type=float, default=1.0,
                        help="TASKLINKR_OUTBOX_POLL_SECONDS of every process (default: the platform's default)")
    parser.add_argument("--large-max-workers", type=int, default=DEPLOYED[LARGE].max_workers)
    parser.add_argument("--large-nice", type=int, default=DEPLOYED[LARGE].nice,
                        help="the large lane's CPU weight as a nice value (0: the same weight as the small lane)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["matching", "billing"])
    parser.add_argument("--shared-matching-database", action="store_true",
                        help="both of matching's lanes on one database server in phases 1 and 2 (default: a "
                             "database server per lane, the cells matching is deployed in)")
    args = parser.parse_args()
    args.matching_cells = not args.shared_matching_database
    args.resources = {SMALL: DEPLOYED[SMALL],
                      LARGE: type(DEPLOYED[LARGE])(max_workers=args.large_max_workers, nice=args.large_nice)}
    RESULTS.mkdir(exist_ok=True)
    report: dict = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                    "target_ratio": TARGET_RATIO, "seconds_per_phase": args.seconds,
                    "outbox_poll_seconds": args.outbox_poll_seconds,
                    "lane_resources": {lane: r.as_report() for lane, r in args.resources.items()}}
    with progress() as bar, ExitStack() as stack:
        amqp_uri, matching_database, mongo_uri = infrastructure(stack)  # the database: matching's
        if "matching" not in args.skip:
            with ExitStack() as part:
                report["matching"] = matching_part(args, bar, part, amqp_uri, matching_database, mongo_uri)
            (RESULTS / "lanes.json").write_text(json.dumps(report, indent=2) + "\n")  # kept if billing fails
        if "billing" not in args.skip:
            with ExitStack() as part:
                report["billing"] = lanes_billing.billing_part(args, bar, part, amqp_uri)
    (RESULTS / "lanes.json").write_text(json.dumps(report, indent=2) + "\n")  # kept if the report fails
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
