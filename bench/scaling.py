"""``make bench-scaling``: how matching and billing scale with competing workers of one lane, and what it costs.

For each workload, over the local RabbitMQ (a vhost of the benchmark's own, the platform's topology) and embedded
SecantusDB servers, with real service processes (``tasklinkr run <service> --lane <lane>``):

- **matching**: a backlog of ``posting.published.v1`` in the small-business lane (``smb``), answered by
  ``matches.proposed.v1`` (counted on a bench queue on matching's exchange), with a realistic market loaded into
  matching's database (``tests/unit/matching/population.py``); one worker, then a second one on the same queues.
- **billing**: approved billable items (time entries, as ``bench/billing.py`` makes them) of accounts whose period
  has ended, billed by invoice runs asked for over billing's RPC queue of the accounts' lane, one call per tenant all
  at once (the workers run ``--lane enterprise``, the accounts' lane, and serve that lane's RPC queue); counted as
  ``invoice.issued.v1`` events on a bench queue, every invoice carrying its period's items as lines. Each run gets a
  fresh database server with the same accounts and items, so one and two workers bill the same backlog.

Throughput = events (postings, items) / seconds from the first message sent to the last answer received. Meanwhile
the CPU time of every process on the path is read from ``/proc/<pid>/stat``: each worker, the database server,
the broker (the ``beam.smp`` listening on the AMQP port, less its idle rate measured just before, since other
vhosts share it) and this benchmark (the load generator); divided by the events, that is the CPU cost per event,
the figure that stays stable on a shared machine where throughput does not. The database's and the broker's peak
cores (sampled every half second) say whether they use more than one core. Each worker serves its metrics on a port
of its own: ``tasklinkr_batch_size`` read before and after a run gives the batches each worker took and their
mean size; every process's idle rate (cores used while nothing is sent) is read before each run.

Matching's runs, in order: one worker at a small batch size (``--small-batch``, 10), one worker at the configured
size (``TASKLINKR_BATCH_MAX_SIZE``), the same worker beside a matching process of another lane (it follows the same
collections and runs its relays, but takes none of the lane's postings: what one more process costs by being there),
then two workers.

The capacity model predicts each configuration from one worker's measurements only. Each process's CPU per event is
``per_event + per_batch / batch size``, the two parts from one worker at the two batch sizes; the batch size
predicted for two workers is the one a worker took alone (on a backlog every worker takes full batches); one more
worker adds what one more process cost beside one worker. A worker process is bounded by 1 core / its CPU per
event, the database server by 1 core / its own (a Python server over WiredTiger; its peak shows whether it ever used
more), the broker likewise, and the machine by its free cores / the sum of everything's CPU per event (the load
generator included, as it runs here too). Free cores = this machine's cores less what other processes (other
engineers' work) used during the measured run, from ``/proc/stat``: that is measured, not predicted, since the
machine is shared. The prediction is the smallest bound; beside it the same model with the batch size measured with
two workers, the bounds from the costs measured with two workers (a check of the bounds, not a prediction), and the
naive one (all cores free). Billing's invoice runs are not batched consumption: its prediction is the one-worker
costs alone.

Targets, per workload: every event answered; the 2-worker prediction within 25 % of the measured 2-worker
throughput; 2 workers at least as fast as 1 (no tolerance: a second worker must not cost throughput). Capacity:
workers, database and broker cores and total cores for 100, 1,000 and 10,000 postings a minute, and 100 to
1,000,000 items a minute, at 70 % target utilisation, from each process's higher CPU per event of the two
configurations (the broker's raw figure, an upper bound). Figures go to ``bench-results/scaling.json`` and
``bench-results/scaling.md``; the last line is ``targets met: N of M`` and the exit status is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import threading
import time
from collections import deque
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.request import urlopen

from kombu import Connection
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient
from rich.progress import Progress
from rich.table import Table

from bench import common
from bench.billing import hex_id, populate
from bench.common import (
    RESULTS,
    broker_pid,
    console,
    cpu_seconds,
    finish,
    free_port,
    infrastructure,
    machine_busy_seconds,
    progress,
    service_env,
    start_database,
    stop,
    stop_cleanly_on_sigterm,
    tree_cpu,
)
from bench.lanes import posting_queue
from bench.matching import collect, collect_after, load_providers, matching_env, posting_event, publish_all, recorder
from services.billing import repository
from shared.runtime import topology
from shared.runtime.persistence import ensure_platform_indexes
from shared.runtime.rpc import lane_routing_prefix, rpc_queue_name
from tests.support.infra import local_vhost

MATCHING_LANE, BILLING_LANE = "smb", "enterprise"
FOLLOWER_LANE, FOLLOWER = "enterprise", "process of another lane"
SMALL_BATCH = 10
TARGET_PREDICTION_ERROR = 0.25
UTILISATION = 0.70
# events a minute in the capacity table: postings; items (cheaper each, and many more of them)
RATES_PER_MINUTE = {"matching": (100, 1_000, 10_000), "billing": (100, 1_000, 10_000, 100_000, 1_000_000)}
WORKERS, DATABASE, BROKER, GENERATOR = "workers", "database", "broker", "load generator"


# --- the processes on the path and their CPU time ---------------------------------------------------------------


def idle_cores(pid: int | None, seconds: float = 3.0) -> float:
    """Cores ``pid`` uses while this benchmark sends nothing (the broker's share of other work)."""
    if pid is None:
        return 0.0
    before, started = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.perf_counter() - started)


def idle_rates(named: dict[str, list[int]], seconds: float = 3.0) -> dict[str, float]:
    """Cores each group of processes uses while this benchmark sends nothing: what a process costs per second
    whether or not events flow (its pollers and followers; for the broker, other vhosts' work)."""
    named = {name: pids for name, pids in named.items() if name != GENERATOR}
    before, started = {name: tree_cpu(pids) for name, pids in named.items()}, time.perf_counter()
    time.sleep(seconds)
    wall = time.perf_counter() - started
    return {name: round((tree_cpu(pids) - before[name]) / wall, 3) for name, pids in named.items()}


class Meter:
    """CPU seconds of named groups of processes over one measured window, with each group's peak cores (sampled
    every ``interval``), the whole machine's busy time and the load average."""

    def __init__(self, groups: dict[str, list[int]], interval: float = 0.5) -> None:
        self.groups, self.interval = groups, interval
        self.peak = dict.fromkeys(groups, 0.0)
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _read(self) -> dict[str, float]:
        # the load generator is this process alone: its children are the workers and databases measured
        return {name: tree_cpu(pids, descend=name != GENERATOR) for name, pids in self.groups.items()}

    def _sample(self) -> None:
        last, at = self._read(), time.perf_counter()
        while not self._stop.wait(self.interval):
            now, now_at = self._read(), time.perf_counter()
            for name in self.groups:
                self.peak[name] = max(self.peak[name], (now[name] - last[name]) / (now_at - at))
            last, at = now, now_at

    def __enter__(self) -> Meter:
        self.load = [round(os.getloadavg()[0], 2)]
        self.busy, self.total = machine_busy_seconds()
        self.cpu, self.started = self._read(), time.perf_counter()
        self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.started
        self.cpu = {name: used - self.cpu[name] for name, used in self._read().items()}
        busy, total = machine_busy_seconds()
        self.busy_cores = (busy - self.busy) / (total - self.total) * (os.cpu_count() or 1)
        self.load.append(round(os.getloadavg()[0], 2))
        self._stop.set()
        self._sampler.join()

    def result(self, events: int, started: float, finished: float, broker_idle: float, label: str) -> dict:
        """Throughput and where the CPU went; the broker's CPU less its idle rate over the window."""
        cpu = dict(self.cpu)
        if BROKER in cpu:
            cpu[BROKER + " (raw)"] = cpu[BROKER]
            cpu[BROKER] = max(0.0, cpu[BROKER] - broker_idle * self.wall)
        ours = sum(used for name, used in cpu.items() if not name.endswith("(raw)") and not name.startswith("worker "))
        result = {
            "events": events, "seconds": round(finished - started, 2), "per_s": round(events / (finished - started), 1),
            "cpu_ms_per_event": {name: round(used * 1000 / events, 3) for name, used in cpu.items()},
            "cores": {name: round(used / self.wall, 2) for name, used in cpu.items()},
            "peak_cores": {name: round(peak, 2) for name, peak in self.peak.items()},
            "broker_idle_cores": round(broker_idle, 3),
            "machine_busy_cores": round(self.busy_cores, 2),
            "others_cores": round(max(0.0, self.busy_cores - ours / self.wall), 2),
            "load_average_1min": self.load,
        }
        console.log(f"{label}: {result['per_s']}/s; CPU ms per event {result['cpu_ms_per_event']}; others used "
                    f"{result['others_cores']} cores; load {self.load}")
        return result


def groups(workers: list[subprocess.Popen], database: subprocess.Popen, broker: int | None) -> dict[str, list[int]]:
    named = {WORKERS: [w.pid for w in workers], DATABASE: [database.pid], GENERATOR: [os.getpid()]}
    named.update({f"worker {n}": [w.pid] for n, w in enumerate(workers, 1)})
    if broker is not None:
        named[BROKER] = [broker]
    return named


# --- service processes ------------------------------------------------------------------------------------------


def start_service(stack: ExitStack, service: str, lane: str, env: dict[str, str], name: str) -> subprocess.Popen:
    """``tasklinkr run <service> --lane <lane>``, its output in ``bench-results/<name>.log``, its metrics on a port
    of its own (``metrics_port``, read by ``batch_counts``); stopped with ``stack``."""
    log = open(RESULTS / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
    port = free_port()
    process = subprocess.Popen([common.PY, "-m", "shared.tools.cli", "run", service, "--lane", lane],
                               cwd=common.ROOT, env={**env, f"TASKLINKR_{service.upper()}_METRICS_PORT": str(port)},
                               stdout=log, stderr=subprocess.STDOUT)
    process.metrics_port = port
    stack.callback(stop, process)
    return process


def batch_counts(worker: subprocess.Popen) -> dict[str, tuple[float, float]]:
    """(batches, deliveries) so far of each batched handler of ``worker``, from its ``tasklinkr_batch_size``."""
    with urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "tasklinkr_batch_size":
            continue
        for sample in family.samples:
            if sample.name.endswith(("_count", "_sum")):
                counts.setdefault(sample.labels["handler"], [0.0, 0.0])[sample.name.endswith("_sum")] += sample.value
    return {handler: (batches, deliveries) for handler, (batches, deliveries) in counts.items()}


def batch_sizes(workers: list[subprocess.Popen], before: list[dict], after: list[dict]) -> dict[str, dict]:
    """Per worker and batched handler, over a measured window: batches, deliveries and deliveries per batch."""
    sizes: dict[str, dict] = {}
    for n, (_, was, now) in enumerate(zip(workers, before, after, strict=True), 1):
        for handler, (batches, deliveries) in now.items():
            batches -= was.get(handler, (0.0, 0.0))[0]
            deliveries -= was.get(handler, (0.0, 0.0))[1]
            if batches:
                sizes.setdefault(handler, {})[f"worker {n}"] = {
                    "batches": int(batches), "deliveries": int(deliveries), "mean": round(deliveries / batches, 1)}
    return sizes


def wait_ready(amqp_uri: str, queue: str, workers: list[subprocess.Popen], bar: Progress, label: str,
               log_line: bytes | None = None, names: list[str] | None = None) -> None:
    """Until ``queue`` has a consumer per worker (and each worker logged ``log_line``, when given)."""
    task = bar.add_task(label, total=None)
    deadline = time.monotonic() + 1800
    while True:
        dead = [w for w in workers if w.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"{label}: a worker did not come up; see {RESULTS.name}/scaling-*.log")
        logged = log_line is None or all(log_line in (RESULTS / f"{n}.log").read_bytes() for n in names or [])
        if logged and consumers(amqp_uri, queue) >= len(workers):
            break
        time.sleep(0.5)
    bar.update(task, total=1, completed=1)


def consumers(amqp_uri: str, queue: str) -> int:
    try:
        with Connection(amqp_uri) as connection:
            return connection.channel().queue_declare(queue, passive=True).consumer_count
    except Exception:  # not declared yet
        return 0


# --- matching ---------------------------------------------------------------------------------------------------


def matching(args, bar: Progress) -> dict:
    rng = random.Random(15)
    tenant = "ten_" + "5" * 32
    report: dict = {"lane": MATCHING_LANE, "providers": args.providers, "backlog": args.postings,
                    "event": "posting.published.v1 → matches.proposed.v1"}
    with ExitStack() as stack:
        amqp_uri, database, mongo_uri = infrastructure(stack)
        broker = broker_pid(amqp_uri)
        load_providers(MongoClient(mongo_uri)["bench_scaling"], args.providers, bar)
        env = matching_env(amqp_uri, mongo_uri, "bench_scaling", outbox_poll_seconds=0.2)
        proposed = recorder(amqp_uri, "matching.events", "matches.proposed.v1")
        queue = posting_queue(MATCHING_LANE)
        report["database_idle_cores_without_workers"] = idle_rates({DATABASE: [database.pid]})[DATABASE]
        workers: list[subprocess.Popen] = []

        def add_worker(settings: dict[str, str] | None = None, name: str | None = None) -> None:
            name = name or f"scaling-matching-{len(workers) + 1}"
            workers.append(start_service(stack, "matching", MATCHING_LANE, {**env, **(settings or {})}, name))
            wait_ready(amqp_uri, queue, workers, bar, f"matching x{len(workers)}: rebuilding its index",
                       b"matching index rebuilt", [name])
            warm = [posting_event(rng, tenant) for _ in range(20 * len(workers))]
            collect_after(amqp_uri, "postings.events", proposed, warm, bar, f"matching x{len(workers)}: warm-up")

        def measure(label: str, extra: dict[str, list[int]] | None = None) -> dict:
            events = [posting_event(rng, tenant) for _ in range(args.postings)]
            named = {**groups(workers, database, broker), **(extra or {})}
            idle = idle_rates(named)
            broker_idle = idle.get(BROKER, 0.0)
            counted = [batch_counts(worker) for worker in workers]
            with Meter(named) as meter:
                started = publish_all(amqp_uri, "postings.events", events)
                published = time.perf_counter()
                finished = collect(amqp_uri, proposed, len(events), bar, label, timeout=1800)
            result = meter.result(len(events), started, finished, broker_idle, label)
            result["publishing_seconds"] = round(published - started, 2)
            result["batch_sizes"] = batch_sizes(workers, counted, [batch_counts(worker) for worker in workers])
            result["idle_cores"] = idle
            console.log(f"{label}: deliveries per batch {batch_note(result['batch_sizes'])}")
            return result

        # The model's inputs, all with one worker: its costs at a small batch size and at the configured one, and
        # what one more matching process costs by being there (a process of another lane follows the same
        # collections and runs its relays, but takes none of this lane's postings).
        add_worker({"TASKLINKR_BATCH_MAX_SIZE": str(args.small_batch)}, "scaling-matching-small-batches")
        report["small_batch_max"] = args.small_batch
        report["small_batch_runs"] = [measure(f"matching x1, batches of at most {args.small_batch}")]
        stop(workers.pop())
        add_worker()
        report["one_worker_runs"] = [measure(f"matching x1 run {n + 1}") for n in range(args.runs)]
        follower = start_service(stack, "matching", FOLLOWER_LANE, env, "scaling-matching-follower")
        wait_ready(amqp_uri, posting_queue(FOLLOWER_LANE), [follower], bar,
                   f"a matching process of lane {FOLLOWER_LANE}: rebuilding its index", b"matching index rebuilt",
                   ["scaling-matching-follower"])
        report["follower_runs"] = [measure(f"matching x1 beside a process of lane {FOLLOWER_LANE}",
                                           {FOLLOWER: [follower.pid]})]
        stop(follower)
        add_worker()
        report["two_workers_runs"] = [measure(f"matching x2 run {n + 1}") for n in range(args.runs)]
    return report


# --- billing ----------------------------------------------------------------------------------------------------


def billing(args, bar: Progress) -> dict:
    report: dict = {"lane": BILLING_LANE, "contracts": args.contracts, "items_per_contract": args.entries,
                    "tenants": args.tenants, "backlog": args.contracts * args.entries,
                    "event": "approved item → line of an issued invoice (invoice.issued.v1)"}
    with ExitStack() as stack:
        amqp_uri = stack.enter_context(local_vhost())
        topology.apply(amqp_uri)
        issued = recorder(amqp_uri, "billing.events", "invoice.issued.v1")
        for count, key in ((1, "one_worker_runs"), (2, "two_workers_runs")):
            report[key] = [billing_run(amqp_uri, issued, count, args, bar, f"billing x{count} run {n + 1}")
                           for n in range(args.runs)]
    return report


def billing_run(amqp_uri: str, issued: str, count: int, args, bar: Progress, label: str) -> dict:
    """A fresh database with the same backlog, ``count`` billing workers, an invoice run per tenant over RPC."""
    with ExitStack() as stack:
        database, mongo_uri = start_database(stack)
        client = stack.enter_context(MongoClient(mongo_uri, tz_aware=True, uuidRepresentation="standard"))
        db = client["bench_scaling"]
        ensure_platform_indexes(db)
        repository.ensure_indexes(db)
        # The timers fire once at start-up (then every interval, here never again): on an empty database, so the
        # items are loaded after the workers are up and only the measured runs bill them.
        env = service_env("billing", amqp_uri, mongo_uri, "bench_scaling", 0.2,
                          TASKLINKR_BILLING_INVOICE_RUN_INTERVAL_SECONDS=str(7 * 86400),
                          TASKLINKR_BILLING_OVERDUE_INTERVAL_SECONDS=str(7 * 86400))
        workers = [start_service(stack, "billing", BILLING_LANE, env, f"scaling-billing-{n + 1}") for n in range(count)]
        wait_ready(amqp_uri, rpc_queue_name("billing", BILLING_LANE), workers, bar,
                   f"{label}: starting {count} worker(s)")
        time.sleep(2)
        task = bar.add_task(f"{label}: loading the items", total=None)
        first_of_last_month = (datetime.now(UTC).date().replace(day=1) - timedelta(days=1)).replace(day=1)
        populate(db, args.contracts, args.entries, args.tenants, first_of_last_month)
        bar.update(task, total=1, completed=1)
        broker = broker_pid(amqp_uri)
        broker_idle = idle_cores(broker)
        tenants = [hex_id("ten", t) for t in range(args.tenants)]
        counted = [batch_counts(worker) for worker in workers]
        with ServiceRpcProxy(lane_routing_prefix("billing", BILLING_LANE), {"AMQP_URI": amqp_uri},
                             timeout=1800) as proxy, \
                Meter(groups(workers, database, broker)) as meter:
            started = time.perf_counter()
            invoices, deferred, calls = ask_invoice_runs(proxy, tenants)
            finished = collect(amqp_uri, issued, args.contracts, bar, label, timeout=1800)
        result = meter.result(args.contracts * args.entries, started, finished, broker_idle, label)
        result["batch_sizes"] = batch_sizes(workers, counted, [batch_counts(worker) for worker in workers])
        result.update(invoices_issued=invoices, invoices_per_s=round(invoices / (finished - started), 1),
                      deferred_batches=deferred, invoice_run_calls=calls)
        # Every invoice is counted by its event (``collect``): a batch whose commit answer was lost (OutcomeUnknown)
        # is reported deferred by its run although it was issued, so the runs' own count can fall short.
        return result


def ask_invoice_runs(proxy, tenants: list[str], most: int = 50) -> tuple[int, int, int]:
    """An invoice run per tenant, all at once; a tenant whose run deferred a batch (its transaction met another's
    change and gave way) is asked again at once, as the next scheduled run would later. (invoices issued, batches
    deferred, calls made)."""
    pending = deque((tenant, proxy.run_invoices.call_async({"tenant_id": tenant})) for tenant in tenants)
    invoices = deferred = 0
    calls = len(tenants)
    while pending:
        tenant, reply = pending.popleft()
        summary = reply.result()  # (draining the replies also keeps the connection alive)
        invoices += summary["invoices_issued"]
        deferred += summary["deferred_batches"]
        if summary["deferred_batches"]:
            if calls >= most * len(tenants):
                raise RuntimeError(f"the invoice runs of {tenant} kept deferring ({deferred} batches deferred)")
            pending.append((tenant, proxy.run_invoices.call_async({"tenant_id": tenant})))
            calls += 1
    return invoices, deferred, calls


# --- the model --------------------------------------------------------------------------------------------------


def best(runs: list[dict]) -> dict:
    return max(runs, key=lambda run: run["per_s"])


def mean_cost(runs: list[dict]) -> dict[str, float]:
    """CPU ms per event of each process, averaged over the runs of one configuration."""
    return {name: round(sum(run["cpu_ms_per_event"][name] for run in runs) / len(runs), 3)
            for name in runs[0]["cpu_ms_per_event"]}


def bounds(cost_ms: dict[str, float], workers: int, free_cores: float, database_cores: float) -> dict[str, float]:
    """Events/s each resource allows, from CPU ms per event: a worker process and the broker 1 core each, the
    database server the cores it was seen to use (at least 1), the machine its free cores shared by everything on
    the path."""
    path = sum(cost_ms.get(name, 0.0) for name in (WORKERS, DATABASE, BROKER, GENERATOR))
    found = {f"{workers} worker process{'es' if workers > 1 else ''}": workers * 1000 / cost_ms[WORKERS],
             f"database server ({database_cores:g} core{'s' if database_cores > 1 else ''})":
                 database_cores * 1000 / cost_ms[DATABASE],
             f"machine ({free_cores:.2f} free cores / all processes' CPU per event)": free_cores * 1000 / path}
    if cost_ms.get(BROKER):
        found["broker (1 core)"] = 1000 / cost_ms[BROKER]
    return {name: round(value, 1) for name, value in found.items()}


def batch_mean(runs: list[dict]) -> float | None:
    """Deliveries per batch over ``runs``, every worker and batched handler together (None: nothing batched)."""
    counts = [one for run in runs for per_worker in (run.get("batch_sizes") or {}).values()
              for one in per_worker.values()]
    batches = sum(one["batches"] for one in counts)
    return round(sum(one["deliveries"] for one in counts) / batches, 1) if batches else None


def split_by_batch(report: dict) -> dict[str, dict[str, float]]:
    """Each process's CPU ms per event as ``per_event + per_batch / batch size``, from one worker at two batch sizes
    (the configured one and ``small_batch_runs``); without the second, all of it per event."""
    one = mean_cost(report["one_worker_runs"])
    sized, small = batch_mean(report["one_worker_runs"]), batch_mean(report.get("small_batch_runs") or [])
    split = {name: {"per_event": cost, "per_batch": 0.0} for name, cost in one.items()}
    if sized and small and small < sized:
        costs = mean_cost(report["small_batch_runs"])
        for name in (WORKERS, DATABASE, BROKER):
            if name in one and name in costs:
                # within [0, all of it]: the two runs are short and the machine shared, so noise can say less
                per_batch = min(max(0.0, (costs[name] - one[name]) / (1 / small - 1 / sized)), one[name] * sized)
                split[name] = {"per_event": round(one[name] - per_batch / sized, 3), "per_batch": round(per_batch, 3)}
    return split


def process_cost(report: dict) -> dict[str, float]:
    """What one more process of the service costs per event by being there, measured beside one worker: the CPU of a
    process of another lane (it follows the same collections, takes none of the lane's events) and what the
    database and the broker spent more than without it. None measured: nothing."""
    if not report.get("follower_runs"):
        return {}
    one, beside = mean_cost(report["one_worker_runs"]), mean_cost(report["follower_runs"])
    return {WORKERS: beside.get(FOLLOWER, 0.0),
            **{name: round(max(0.0, beside[name] - one[name]), 3) for name in (DATABASE, BROKER) if name in one}}


def costs_at(split: dict[str, dict[str, float]], batch: float | None, extra: dict[str, float],
             processes: int) -> dict[str, float]:
    """CPU ms per event of each process with ``processes`` workers taking batches of ``batch``."""
    return {name: round(part["per_event"] + (part["per_batch"] / batch if batch else 0.0)
                        + (processes - 1) * extra.get(name, 0.0), 3) for name, part in split.items()}


def model(report: dict, cores: int) -> dict:
    """Predict each configuration from one worker's measurements only: each process's cost per event and per batch
    (one worker at two batch sizes), the batch size one worker took (a backlog gives every worker full batches,
    so the same is predicted for two), and what one more process costs by being there (measured beside one worker).
    The load other work put on the machine during the predicted run is measured, not predicted: the machine is
    shared. Beside it: the same model with the batch size measured with two workers, and the bounds from the costs
    measured with two workers (a check of the bounds, not a prediction)."""
    one, two = mean_cost(report["one_worker_runs"]), mean_cost(report["two_workers_runs"])
    # SecantusDB is a Python server over WiredTiger (42 threads): whether it ever used more than one core is read
    # from its peak (half-second samples; above 1.1 counts, below is sampling noise).
    peak = max(run["peak_cores"][DATABASE] for run in report["one_worker_runs"] + report["two_workers_runs"])
    database_cores = round(peak, 2) if peak > 1.1 else 1.0
    on_path = [name for name in (WORKERS, DATABASE, BROKER, GENERATOR) if name in one]
    split = {name: part for name, part in split_by_batch(report).items() if name in on_path}
    extra = process_cost(report)
    batch_one, batch_two = batch_mean(report["one_worker_runs"]), batch_mean(report["two_workers_runs"])
    out: dict = {"cost_ms_per_event": {name: one[name] for name in on_path},
                 "cost_ms_per_event_two_workers": {name: two[name] for name in on_path},
                 "cost_split_ms": split, "one_more_process_ms_per_event": extra,
                 "batch_size_one_worker": batch_one, "batch_size_two_workers_measured": batch_two,
                 "batch_size_small_run": batch_mean(report.get("small_batch_runs") or []),
                 "database_growth_two_workers": round(two[DATABASE] / one[DATABASE], 2),
                 "database_peak_cores": peak, "database_cores_in_model": database_cores,
                 # capacity: the higher of the two costs of each process, as any deployment of 2 or more workers
                 # meets the contention; for the broker its raw CPU (other vhosts' traffic included), an upper
                 # bound, since its idle rate moves with other work as much as our share
                 "capacity_cost_ms_per_event": {name: max(one[name], two[name]) for name in on_path}}
    if BROKER + " (raw)" in one:
        out["capacity_cost_ms_per_event"][BROKER] = max(one[BROKER + " (raw)"], two[BROKER + " (raw)"])
    for key, workers in (("one_worker_runs", 1), ("two_workers_runs", 2)):
        measured = best(report[key])  # the fastest run of each configuration, and the load others put on it
        free = max(0.1, cores - measured["others_cores"])
        predicted_cost = costs_at(split, batch_one, extra, workers)
        plain = bounds(predicted_cost, workers, free, database_cores)
        measured_batch = bounds(costs_at(split, batch_mean(report[key]), extra, workers), workers, free,
                                database_cores)
        from_costs = bounds(mean_cost(report[key]), workers, free, database_cores)
        naive = bounds(predicted_cost, workers, cores, database_cores)
        out[f"{workers}_workers"] = {
            "measured_per_s": measured["per_s"], "others_cores_during_run": measured["others_cores"],
            "predicted_cost_ms_per_event": predicted_cost,
            "bounds_per_s": plain, "predicted_per_s": min(plain.values()), "bound_by": min(plain, key=plain.get),
            "error": relative(min(plain.values()), measured["per_s"]),
            "with_measured_batch_per_s": min(measured_batch.values()),
            "with_measured_batch_error": relative(min(measured_batch.values()), measured["per_s"]),
            "from_measured_costs_per_s": min(from_costs.values()),
            "from_measured_costs_error": relative(min(from_costs.values()), measured["per_s"]),
            "naive_predicted_per_s": min(naive.values()),
            "naive_error": relative(min(naive.values()), measured["per_s"]),
        }
    return out


def relative(predicted: float, measured: float) -> float:
    return round((predicted - measured) / measured, 3)


def capacity(cost_ms: dict[str, float], rates: tuple[int, ...], utilisation: float) -> list[dict]:
    """Processes and cores for ``rates`` events a minute, each process at most ``utilisation`` busy."""
    rows = []
    for rate in rates:
        per_s = rate / 60
        need = {name: per_s * cost_ms.get(name, 0.0) / 1000 / utilisation for name in (WORKERS, DATABASE, BROKER)}
        rows.append({"per_minute": rate, "per_s": round(per_s, 2),
                     "worker_processes": max(1, math.ceil(need[WORKERS])),
                     "database_cores": round(need[DATABASE], 2),
                     "database_servers": max(1, math.ceil(need[DATABASE])),
                     "broker_cores": round(need[BROKER], 2),
                     "total_cores": max(1, math.ceil(sum(need.values())))})
    return rows


def verdicts(reports: dict) -> dict[str, bool]:
    checks = {}
    for workload, report in reports.items():
        if "failed" in report:
            checks[f"{workload}: every event answered ({report['failed']})"] = False
            continue
        checks[f"{workload}: every event answered, every run"] = True
        two = report["model"]["2_workers"]
        checks[f"{workload}: 2-worker prediction from one worker's measurements within {TARGET_PREDICTION_ERROR:.0%} "
               f"of the measurement: {two['predicted_per_s']} vs {two['measured_per_s']}/s, {two['error']:+.0%} "
               f"(with the batch size measured with 2 workers {two['with_measured_batch_per_s']}/s, "
               f"{two['with_measured_batch_error']:+.0%})"] = abs(two["error"]) <= TARGET_PREDICTION_ERROR
        one_rate, two_rate = best(report["one_worker_runs"])["per_s"], best(report["two_workers_runs"])["per_s"]
        checks[f"{workload}: 2 workers at least as fast as 1 ({two_rate} vs {one_rate}/s)"] = two_rate >= one_rate
    return checks


# --- report -----------------------------------------------------------------------------------------------------

UNITS = {"matching": "postings", "billing": "items"}


RUN_KINDS = (("small_batch_runs", 1, "x1, small batches"), ("one_worker_runs", 1, "x1"),
             ("follower_runs", 1, "x1 + another lane's process"), ("two_workers_runs", 2, "x2"))


def run_rows(workload: str, report: dict) -> list[list[str]]:
    rows = []
    for key, workers, label in RUN_KINDS:
        for n, run in enumerate(report.get(key) or [], 1):
            cost = run["cpu_ms_per_event"]
            rows.append([f"{workload} {label} run {n}", f"{run['per_s']}", f"{run['seconds']}",
                         " / ".join(str(cost.get(name, "–")) for name in (WORKERS, DATABASE, BROKER, GENERATOR)),
                         " / ".join(str(run["cores"].get(f"worker {w}", "–")) for w in range(1, workers + 1))
                         + (f" (+ {run['cores'][FOLLOWER]})" if FOLLOWER in run["cores"] else ""),
                         f"{run['cores'][DATABASE]} (peak {run['peak_cores'][DATABASE]})",
                         f"{run['cores'].get(BROKER, '–')} (peak raw {run['peak_cores'].get(BROKER, '–')}, idle "
                         f"{run['broker_idle_cores']})",
                         f"{run['machine_busy_cores']} / {run['others_cores']}",
                         f"{run['load_average_1min'][0]}→{run['load_average_1min'][1]}",
                         batch_note(run.get("batch_sizes")),
                         f"{run['invoice_run_calls']} invoice runs, {run['deferred_batches']} batches deferred"
                         if "invoice_run_calls" in run else ""])
    return rows


def batch_note(sizes: dict | None) -> str:
    """Deliveries per batch (batches) of each worker, per batched handler that took any."""
    if sizes is None:
        return "–"
    return "; ".join(f"{handler}: " + " / ".join(f"{one['mean']} ({one['batches']})" for one in per_worker.values())
                     for handler, per_worker in sizes.items()) or "none"


RUN_COLUMNS = ["run", "events/s", "seconds", "CPU ms/event: workers / db / broker / bench", "worker cores",
               "db cores", "broker cores", "machine busy / others (cores)", "load 1 min",
               "deliveries per batch (batches), per worker", "notes"]
CAPACITY_COLUMNS = ["per minute", "per second", "worker processes", "database cores", "database servers",
                    "broker cores", "total cores"]


def md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] + \
        ["| " + " | ".join(row) + " |" for row in rows]


def capacity_rows(report: dict) -> list[list[str]]:
    return [[f"{row['per_minute']:,}", f"{row['per_s']}", str(row["worker_processes"]), str(row["database_cores"]),
             str(row["database_servers"]), str(row["broker_cores"]), str(row["total_cores"])]
            for row in report["capacity"]]


def markdown(meta: dict, reports: dict, checks: dict[str, bool]) -> str:
    lines = ["# Scaling benchmark", "",
             f"Run {meta['started_at']} on {meta['cpus']} cores ({meta['cpu_model']}), shared with other work: load "
             f"average {meta['load_average_before']} before, {meta['load_average_after']} after. Throughput moves "
             "with that load; the CPU time per event of each process (from /proc/<pid>/stat over the measured "
             "window) is the stable measure, and the capacity figures come from it.", ""]
    for workload, report in reports.items():
        unit = UNITS[workload]
        if "failed" in report:
            lines += [f"## {workload}", "", f"**Failed:** {report['failed']}", ""]
            continue
        lines += [f"## {workload}", "", f"{report['event']}; lane {report['lane']}; backlog {report['backlog']:,} "
                  f"{unit}" + (f"; {report['providers']:,} providers" if "providers" in report else
                               f" ({report['contracts']:,} contracts x {report['items_per_contract']} items, "
                               f"{report['tenants']} tenants, an invoice run per tenant)") + ".", ""]
        lines += md_table(RUN_COLUMNS, run_rows(workload, report)) + [""]
        m = report["model"]
        split = "; ".join(f"{name} {part['per_event']} + {part['per_batch']} per batch"
                          for name, part in m["cost_split_ms"].items())
        extra = ", ".join(f"{name} {value}" for name, value in m["one_more_process_ms_per_event"].items())
        lines += ["Model inputs, all measured with one worker (CPU ms per event, mean of the runs): "
                  + ", ".join(f"{name} {value}" for name, value in m["cost_ms_per_event"].items())
                  + f" at {m['batch_size_one_worker']} deliveries per batch"
                  + (f", {m['batch_size_small_run']} in the run at a small batch size; so per event "
                     f"{split}" if m["batch_size_small_run"] else "")
                  + (f"; one more process, by being there (a process of another lane beside the worker): {extra}"
                     if extra else "")
                  + f". Predicted for 2 workers: {m['batch_size_one_worker']} deliveries per batch (measured: "
                  f"{m['batch_size_two_workers_measured']}), CPU ms per event "
                  + ", ".join(f"{name} {value}"
                              for name, value in m["2_workers"]["predicted_cost_ms_per_event"].items())
                  + "; measured with 2 workers: "
                  + ", ".join(f"{name} {value}" for name, value in m["cost_ms_per_event_two_workers"].items())
                  + f" (the database x{m['database_growth_two_workers']}; its peak {m['database_peak_cores']} cores, "
                  f"so the model gives it {m['database_cores_in_model']:g}). What is measured in each row, not "
                  "predicted: the cores other work took from this shared machine during that run.", ""]
        lines += md_table(["workers", "measured", "bounds from one worker's measurements (events/s)", "predicted",
                           "with the batch size measured", "bounds from the costs measured (check)",
                           "naive (all cores free)"],
                          [[str(w), str(m[f"{w}_workers"]["measured_per_s"]),
                            "; ".join(f"{name} {value}" for name, value in m[f"{w}_workers"]["bounds_per_s"].items()),
                            f"{m[f'{w}_workers']['predicted_per_s']} ({m[f'{w}_workers']['error']:+.0%}; "
                            f"{m[f'{w}_workers']['bound_by']})",
                            f"{m[f'{w}_workers']['with_measured_batch_per_s']} "
                            f"({m[f'{w}_workers']['with_measured_batch_error']:+.0%})",
                            f"{m[f'{w}_workers']['from_measured_costs_per_s']} "
                            f"({m[f'{w}_workers']['from_measured_costs_error']:+.0%})",
                            f"{m[f'{w}_workers']['naive_predicted_per_s']} "
                            f"({m[f'{w}_workers']['naive_error']:+.0%})"] for w in (1, 2)]) + [""]
        lines += [f"Capacity at {meta['utilisation']:.0%} target utilisation per process, cores like this machine's "
                  f"({unit} a minute; each process's higher CPU per event of the two configurations; the load "
                  "generator excluded; the broker's raw CPU, other vhosts' traffic included, as an upper bound; "
                  "database cores above 1 mean more than one SecantusDB server, i.e. a sharded database):", ""]
        lines += md_table(CAPACITY_COLUMNS, capacity_rows(report)) + [""]
    lines += ["| target | met |", "|---|---|"]
    lines += [f"| {name} | {'yes' if met else '**no**'} |" for name, met in checks.items()]
    return "\n".join(lines) + "\n"


def print_tables(reports: dict) -> None:
    for workload, report in reports.items():
        if "failed" in report:
            continue
        table = Table(title=f"{workload}: runs")
        for column in RUN_COLUMNS:
            table.add_column(column)
        for row in run_rows(workload, report):
            table.add_row(*row)
        console.print(table)
        table = Table(title=f"{workload}: capacity ({UNITS[workload]} a minute)")
        for column in CAPACITY_COLUMNS:
            table.add_column(column, justify="right")
        for row in capacity_rows(report):
            table.add_row(*row)
        console.print(table)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    stop_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smaller market and backlog, one run per configuration")
    parser.add_argument("--providers", type=int, help="providers in matching's database (default 10,000; quick 2,000)")
    parser.add_argument("--postings", type=int, help="postings per measured run (default 1,500; quick 400)")
    parser.add_argument("--contracts", type=int, help="billing accounts due per run (default 2,000; quick 500)")
    parser.add_argument("--entries", type=int, default=30, help="approved items per account")
    parser.add_argument("--tenants", type=int, default=100, help="tenants (an invoice run each)")
    parser.add_argument("--small-batch", type=int, default=SMALL_BATCH,
                        help="the batch size of matching's model run with one worker at a second batch size")
    parser.add_argument("--runs", type=int, help="measured runs per configuration (default 2; quick 1)")
    parser.add_argument("--utilisation", type=float, default=UTILISATION, help="target utilisation, capacity table")
    parser.add_argument("--only", choices=["matching", "billing"], help="measure one workload")
    parser.add_argument("--from-json", type=Path, help="measure nothing: model and report the runs of an earlier "
                                                       "bench-results/scaling.json again")
    args = parser.parse_args()
    quick = args.quick
    args.providers = args.providers or (2_000 if quick else 10_000)
    args.postings = args.postings or (400 if quick else 1_500)
    args.contracts = args.contracts or (500 if quick else 2_000)
    args.runs = args.runs or (1 if quick else 2)
    RESULTS.mkdir(exist_ok=True)
    cores = os.cpu_count() or 1
    meta = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": cores, "cpu_model": cpu_model(),
            "quick": quick, "utilisation": args.utilisation, "load_average_before": round(os.getloadavg()[0], 2),
            "stable_measure": "CPU time per event of each process; throughput depends on the shared machine's load"}
    reports: dict = {}
    if args.from_json:
        earlier = json.loads(args.from_json.read_text())
        meta.update({key: earlier[key] for key in ("started_at", "cpus", "cpu_model", "quick", "load_average_before",
                                                   "load_average_after")})
        reports = {workload: earlier[workload] for workload in ("matching", "billing") if workload in earlier}
        args.only = "none"
    with progress() as bar:
        for workload, measure in (("matching", matching), ("billing", billing)):
            if args.only != "none" and (args.only is None or args.only == workload):
                try:
                    reports[workload] = measure(args, bar)
                except Exception as exc:  # reported as a miss, with its reason
                    reports[workload] = {"failed": f"{type(exc).__name__}: {exc}", "event": "", "lane": "",
                                         "backlog": 0}
            if workload not in reports or "failed" in reports[workload]:
                continue
            reports[workload]["model"] = model(reports[workload], cores)
            cost = reports[workload]["model"]["capacity_cost_ms_per_event"]
            reports[workload]["capacity"] = capacity(cost, RATES_PER_MINUTE[workload], args.utilisation)
    meta.setdefault("load_average_after", round(os.getloadavg()[0], 2))
    checks = verdicts(reports)
    print_tables(reports)
    finish("scaling", {**meta, **reports, "targets_met": checks}, markdown(meta, reports, checks), checks)


if __name__ == "__main__":
    main()
