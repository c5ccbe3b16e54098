"""The billing part of ``make bench-lanes``: a small-lane item from its submission to its invoice line, while the
large lane floods billing with 10x that rate of heavier work.

How an item becomes an invoice line (services/billing): the provider submits it (RPC ``billing.submit_items``, which
the gateway's ``POST /contracts/{id}/items`` and its ``billable_items.submit`` command call), the client approves it
(``review_item``), and an invoice run (``run_invoices``, the operator's on-demand run for one tenant; the hourly
timer runs the same for all) issues the invoice of the billing period it fell in: ``invoice.issued.v1`` carries a
line whose ``source_id`` is the item. The benchmark calls billing as the gateway does (nameko RPC over the broker,
a reply queue of its own), one item after the other step by step, and records when the invoice line's event arrives
on a bench queue bound to billing's exchange. Latency = that arrival - the moment the submission was sent.

Every flow has an account of its own (a contract started last month, billed monthly, so last month's period is due)
and a tenant of its own (a run for the tenant invoices that account only). Small lane: one time entry per flow at
``--billing-rate``/s. Flood: 10x that rate of flows of a batch of 10 time entries, ten approvals and a run (an
invoice of ten lines). The flood's steps stop being chained when the phase's publishing ends; what is still queued
then is served, and dropped (purged) once the small lane's last line arrived. A run that issued nothing because
another run was issuing the same tenant's batch (``deferred_batches``) is asked again at once, as the hourly timer
would ask later: the flow's latency includes the rerun.

RPC has a queue per lane (``rpc-billing--<lane>``, shared.runtime.rpc) and a process run with ``--lane`` serves only
its lane's: with lanes on, the benchmark calls each flow in its lane (as the gateway calls in its caller's lane), so
the flood's requests queue in the large lane's queue, served by the large lane's process. With lanes off every call
goes to the one small-lane queue that both processes serve.

Phases 1 and 2 run billing as it is deployed, in cells (docs/operations.md, Cells): each lane's process with a
database server of its own, the large lane's at the lane's CPU weight (as matching's part does), each flow's account
in its lane's cell. Phase 3 (lanes off) runs both processes on the small lane's server, as one service without
lanes or cells would.

Billing's timers fire at start-up (the invoice run over every tenant): each phase's accounts are made after its
processes answered, each in its own lane (a ping in the large lane is answered by the large lane's process only: a
process at a low CPU weight on a loaded machine starts late), so no start-up run closes them before their items
arrive, and the accounts of the phases before are removed before the processes of the last phase start, so their
start-up run has nothing to do.
"""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import subprocess
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta

from kombu import Connection, Consumer, Exchange, Producer, Queue
from pymongo import MongoClient
from pymongo.database import Database
from rich.progress import Progress

from bench import lane_kit
from bench.billing import first_of_last_month, hourly_account
from bench.common import console, start_database, stop
from bench.lane_kit import LARGE, PHASES, SMALL, Listener
from services.billing import repository
from shared.runtime.persistence import ensure_platform_indexes
from shared.runtime.rpc import lane_routing_prefix, rpc_queue_name

RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)
BILLING_EVENTS = Exchange("billing.events", type="topic", durable=True)
HEAVY_ITEMS = 10
DATABASE = "bench_lanes_billing"
STEPS = ("submitted", "approved", "line")


@dataclass
class Flow:
    """One client's item(s) on their way to an invoice line, and when each step was answered."""

    lane: str
    n: int
    items: int
    tenant_id: str = field(init=False)
    provider_id: str = field(init=False)
    contract_id: str = field(init=False)
    item_ids: list[str] = field(default_factory=list)
    approved: int = 0
    reruns: int = 0  # invoice runs asked again after one deferred the flow's batch
    times: dict[str, float] = field(default_factory=dict)  # "sent", then each of STEPS
    error: str | None = None

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex
        self.tenant_id, self.provider_id, self.contract_id = f"ten_{tag}", f"prv_{tag}", f"ctr_{tag}"

    def item_payloads(self) -> list[dict]:
        start = first_of_last_month()
        return [{"kind": "time", "key": f"k{i}", "date": (start + timedelta(days=i % 25)).isoformat(),
                 "hours": "1.25", "description": "Tickets handled"} for i in range(self.items)]


class Driver(Listener):
    """Calls billing as the gateway does, each flow's next step when the last one answered (one thread, one
    connection: the replies and the invoice.issued.v1 events arrive on queues of its own)."""

    listens_to = "the bench's reply and invoice queues"

    def __init__(self, amqp_uri: str) -> None:
        super().__init__()
        self.amqp_uri = amqp_uri
        self.replies = Queue(f"bench-lanes-replies-{os.getpid()}", exchange=RPC_EXCHANGE,
                             routing_key=f"bench-lanes-replies-{os.getpid()}", durable=False, auto_delete=True)
        self.invoices = Queue(f"bench-lanes-invoices-{os.getpid()}", exchange=BILLING_EVENTS,
                              routing_key="invoice.issued.v1", durable=False, auto_delete=True)
        self.calls: dict[str, tuple[Flow, str]] = {}  # correlation id -> (flow, step)
        self.by_item: dict[str, Flow] = {}
        self.answers: dict[str, threading.Event] = {}
        self.chaining = {SMALL: True, LARGE: True}  # by the flow's lane
        self.lanes_on = True  # calls travel in their flow's lane; off: all in the small lane (one shared queue)
        self._due: list[tuple[float, int, Flow]] = []
        self._incoming: queue.SimpleQueue = queue.SimpleQueue()
        self._order = itertools.count()

    def schedule(self, flows: list[Flow], rate: float, started: float) -> None:
        for n, flow in enumerate(flows):
            self._incoming.put((started + n / rate, flow))

    def ping(self, lane: str, timeout: float = 120) -> bool:
        """Whether billing answers an RPC (``health``) in ``lane`` within ``timeout``; asked again every two
        seconds, as a request sent before its queue is declared goes nowhere."""
        done = threading.Event()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._incoming.put((0.0, (lane, done)))
            if done.wait(2):
                return True
        return False

    def _run(self) -> None:
        with Connection(self.amqp_uri) as connection:
            self.producer = Producer(connection.channel())
            channel = connection.channel()
            with Consumer(channel, queues=[self.replies], callbacks=[self._reply], accept=["json"]), \
                    Consumer(channel, queues=[self.invoices], callbacks=[self._invoice], accept=["json"]):
                self._ready.set()
                while not self._stop.is_set():
                    self._start_due()
                    try:
                        connection.drain_events(timeout=0.005)
                    except TimeoutError:
                        pass

    def _start_due(self) -> None:
        while not self._incoming.empty():
            due, flow = self._incoming.get()
            if isinstance(flow, tuple):  # a ping: (lane, done)
                self._call(None, "health", [], flow[1], lane=flow[0])
                continue
            heapq.heappush(self._due, (due, next(self._order), flow))
        now = time.time()
        while self._due and self._due[0][0] <= now:
            _, _, flow = heapq.heappop(self._due)
            flow.times["sent"] = time.time()
            self._call(flow, "submit_items", [{"kind": "provider", "provider_id": flow.provider_id},
                                              flow.contract_id, {"items": flow.item_payloads()}])

    def _call(self, flow: Flow | None, method: str, args: list, done: threading.Event | None = None,
              lane: str = SMALL) -> None:
        correlation_id = uuid.uuid4().hex
        self.calls[correlation_id] = (flow, method)
        if done is not None:
            self.answers[correlation_id] = done
        if flow is not None:
            lane = flow.lane if self.lanes_on else SMALL
        self.producer.publish({"args": args, "kwargs": {}}, exchange=RPC_EXCHANGE,
                              routing_key=f"{lane_routing_prefix('billing', lane)}.{method}",
                              reply_to=self.replies.routing_key, correlation_id=correlation_id, serializer="json")

    def _reply(self, body: dict, message) -> None:
        message.ack()
        flow, method = self.calls.pop(message.properties.get("correlation_id"), (None, None))
        done = self.answers.pop(message.properties.get("correlation_id"), None)
        if done is not None:
            done.set()
        if flow is None:
            return
        if body.get("error"):
            flow.error = f"{method}: {body['error'].get('exc_type')}: {body['error'].get('value')}"
            return
        if not self.chaining[flow.lane]:
            return
        if method == "submit_items":
            flow.times["submitted"] = time.time()
            flow.item_ids = [item["id"] for item in body["result"]["items"]]
            self.by_item.update(dict.fromkeys(flow.item_ids, flow))
            self._approve_next(flow)
        elif method == "review_item":
            flow.approved += 1
            if flow.approved < len(flow.item_ids):
                self._approve_next(flow)
            else:
                flow.times["approved"] = time.time()
                self._call(flow, "run_invoices", [{"tenant_id": flow.tenant_id}])
        elif method == "run_invoices":
            if not body["result"]["invoices_issued"] and body["result"]["deferred_batches"]:
                flow.reruns += 1  # another run held the batch: ask again, as the next scheduled run would
                self._call(flow, "run_invoices", [{"tenant_id": flow.tenant_id}])
                return
            flow.times["run"] = time.time()
            if not body["result"]["invoices_issued"]:
                flow.error = f"run_invoices issued nothing: {body['result']}"

    def _approve_next(self, flow: Flow) -> None:
        """The client approves its items one after the other: approvals of one account at once would conflict
        (each writes the account) and retry."""
        self._call(flow, "review_item", [{"kind": "client", "tenant_id": flow.tenant_id}, flow.contract_id,
                                         flow.item_ids[flow.approved], "approve"])

    def _invoice(self, body: dict, message) -> None:
        message.ack()
        arrived = time.time()
        for line in body["data"]["invoice"]["lines"]:
            flow = self.by_item.get(line.get("source_id") or "")
            if flow is not None:
                flow.times.setdefault("line", arrived)


def latencies(flows: list[Flow]) -> list[float]:
    return [f.times["line"] - f.times["sent"] for f in flows if "line" in f.times]


def parts(flows: list[Flow]) -> dict:
    """Where the time went, step by step: submitted (answered), approved (the last approval answered), and the
    invoice run and its invoice.issued.v1 (the outbox relay) arrived."""
    done = [f for f in flows if "line" in f.times]
    previous = ("sent", *STEPS[:-1])
    return {step: lane_kit.percentiles_ms([f.times[step] - f.times[before] for f in done])
            for before, step in zip(previous, STEPS, strict=True)}


def make_accounts(cells: dict[str, Database], flows: list[Flow]) -> None:
    """Each flow's account, in its lane's cell: a contract of its tenant and provider that started last month (its
    period is due)."""
    now = repository.current_time()
    start = first_of_last_month()
    for lane, db in cells.items():
        accounts = [repository.document(hourly_account(f.contract_id, f.tenant_id, f.provider_id, start, f.lane, now))
                    for f in flows if f.lane == lane]
        if accounts:
            db.accounts.insert_many(accounts, ordered=False)


def phase(driver: Driver, cells: dict[str, Database], name: str, args, bar: Progress, flood: bool,
          processes: dict[str, int], amqp_uri: str) -> dict:
    """``args.seconds`` of small-lane items at ``args.billing_rate``/s and, with ``flood``, 10x that rate of
    batches of ten in the large lane; then wait for every small-lane invoice line."""
    rate = args.billing_rate
    small = [Flow(SMALL, n, 1) for n in range(int(rate * args.seconds))]
    large = [Flow(LARGE, n, HEAVY_ITEMS) for n in range(int(rate * 10 * args.seconds))] if flood else []
    make_accounts(cells, small + large)
    driver.chaining[LARGE] = True
    cost = lane_kit.PhaseCost(processes)
    task = bar.add_task(f"billing, {name}: small-lane lines", total=len(small))
    started = time.time() + 0.5
    driver.schedule(small, rate, started)
    if large:
        driver.schedule(large, rate * 10, started)
    deadline = started + args.seconds
    while time.time() < deadline:
        bar.update(task, completed=sum("line" in f.times for f in small))
        time.sleep(0.2)
    driver.chaining[LARGE] = False  # the flood stops here; what it queued is still served
    published_for = time.time() - started
    large_lines_during = sum("line" in f.times for f in large)
    drain = time.monotonic() + args.drain_timeout
    while time.monotonic() < drain and not all("line" in f.times or f.error for f in small):
        bar.update(task, completed=sum("line" in f.times for f in small))
        time.sleep(0.2)
    result = {"small_rate_per_s": rate, "flood_flows_per_s": rate * 10 if large else 0,
              "published_for_s": round(published_for, 1),
              "waited_for_small_lane_after_s": round(time.time() - started - published_for, 1),
              "small": lane_kit.summary(latencies(small), len(small)), "small_parts": parts(small),
              "small_reached": {step: sum(step in f.times for f in small) for step in ("sent", *STEPS)},
              "small_errors": sorted({f.error for f in small if f.error})[:5],
              "small_invoice_reruns": sum(f.reruns for f in small), **cost.report()}
    if large:
        result["large"] = {"flows": len(large), "items": len(large) * HEAVY_ITEMS,
                           "invoiced_while_publishing": large_lines_during,
                           "invoiced_per_s_while_publishing": round(large_lines_during / published_for, 1),
                           "requests_purged": sum(lane_kit.purge(amqp_uri, rpc_queue_name("billing", lane))
                                                  for lane in (SMALL, LARGE))}
        time.sleep(3)
    return result


def billing_env(amqp_uri: str, mongo_uri: str, outbox_poll_seconds: float) -> dict[str, str]:
    """A ``tasklinkr run billing`` process on the benchmark's vhost and database, its scheduled runs an hour apart
    (the first at start-up)."""
    return {**os.environ, "TASKLINKR_AMQP_URI": amqp_uri, "TASKLINKR_MONGO_URI": mongo_uri,
            "TASKLINKR_BILLING_MONGO_DATABASE": DATABASE, "TASKLINKR_METRICS_PORT": "off",
            "TASKLINKR_LOG_LEVEL": "WARNING", "TASKLINKR_CONFIG_FILE": "/nonexistent.yaml",
            "TASKLINKR_OUTBOX_POLL_SECONDS": str(outbox_poll_seconds)}


def billing_part(args, bar: Progress, stack: ExitStack, amqp_uri: str) -> dict:
    report: dict = {"rate_per_s": args.billing_rate, "heavy_items": HEAVY_ITEMS, "database_per_lane": True}
    database_process, small_uri = start_database(stack)
    cell_process, large_uri = lane_kit.cell_database(stack, args.resources[LARGE])
    cells: dict[str, Database] = {}
    for lane, uri in ((SMALL, small_uri), (LARGE, large_uri)):
        client = stack.enter_context(MongoClient(uri, tz_aware=True, uuidRepresentation="standard"))
        cells[lane] = client[DATABASE]
        ensure_platform_indexes(cells[lane])
        repository.ensure_indexes(cells[lane])
    services = lane_kit.Services(stack, {"billing": billing_env(amqp_uri, small_uri, args.outbox_poll_seconds),
                                         f"billing-{LARGE}": billing_env(amqp_uri, large_uri,
                                                                         args.outbox_poll_seconds)})
    driver = Driver(amqp_uri)
    driver.start()
    stack.callback(driver.close)

    def answering(processes: dict[subprocess.Popen, str]) -> None:
        """Until each process (by the lane it serves) answers in its lane."""
        task = bar.add_task("billing: processes answering", total=None)
        time.sleep(2)
        for lane in processes.values():
            if not driver.ping(lane):
                raise RuntimeError(f"billing does not answer; see {[str(p) for p in services.logs.values()]}")
        time.sleep(3)  # the start-up invoice run of every process is over before accounts are made
        bar.update(task, total=1, completed=1)

    lanes = {lane: services.start("billing", lane, lane, args.resources[lane]) for lane in (SMALL, LARGE)}
    answering({process: lane for lane, process in lanes.items()})
    processes = {"billing smb": lanes[SMALL].pid, "billing enterprise": lanes[LARGE].pid,
                 "database": database_process.pid, "database enterprise": cell_process.pid}
    warm = [Flow(SMALL, n, 1) for n in range(10)]
    make_accounts(cells, warm)
    driver.schedule(warm, 10, time.time())
    deadline = time.monotonic() + 120
    while not all("line" in f.times for f in warm) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not all("line" in f.times for f in warm):
        raise RuntimeError(f"billing warm-up: no invoice lines ({[f.error for f in warm if f.error][:3]})")
    report["idle"] = phase(driver, cells, "idle", args, bar, False, processes, amqp_uri)
    report["flood_with_lanes"] = phase(driver, cells, "flood, lanes on", args, bar, True, processes, amqp_uri)
    for process in lanes.values():
        stop(process)
    # The accounts of the flows before are done with; left due, the new processes' start-up run would invoice (or
    # close) every one of them while the last phase runs.
    for db in cells.values():
        db.accounts.delete_many({})
    unsplit = [services.start("billing", SMALL, f"smb-{n}", lane_kit.UNSPLIT) for n in (1, 2)]
    answering(dict.fromkeys(unsplit, SMALL))
    driver.lanes_on = False
    processes = {"billing smb #1": unsplit[0].pid, "billing smb #2": unsplit[1].pid,
                 "database": database_process.pid}
    # Lanes off, cells off: both processes on the small lane's server, every flow's account in it.
    shared = dict.fromkeys((SMALL, LARGE), cells[SMALL])
    report["flood_without_lanes"] = phase(driver, shared, "flood, lanes off", args, bar, True, processes, amqp_uri)
    for process in unsplit:
        stop(process)
    console.print(f"billing: idle p99 {report['idle']['small'].get('p99_ms')} ms")
    return report


def markdown(result: dict) -> list[str]:
    def middle(phase: dict) -> list[str]:
        large, steps = phase.get("large"), phase["small_parts"]
        return [" / ".join(str(steps[s].get("p50_ms")) for s in STEPS) + "; "
                + " / ".join(str(steps[s].get("p99_ms")) for s in STEPS),
                f"{large['invoiced_while_publishing']:,} of {large['flows']:,} "
                f"({large['invoiced_per_s_while_publishing']}/s)" if large else "–",
                str(large["requests_purged"]) if large else "–"]

    rate = result["idle"]["small_rate_per_s"]
    errors = {key: result[key]["small_errors"] for key in PHASES if result[key]["small_errors"]}
    return ["## Billing: item submitted → its invoice line (invoice.issued.v1) arrived", "",
            f"Small lane {rate:g} items/s (submit, approve, the tenant's invoice run); flood {rate * 10:g} batches of "
            f"{result['heavy_items']} items/s (submit, ten approvals, a run). With lanes each call travels in its "
            "flow's lane (an RPC queue per lane, each lane's process serving its own) and **each lane's process has a "
            "database server of its own** (billing's cells; the large lane's at the lane's CPU weight); lanes off, "
            "every call in the one small-lane queue that both processes serve, on one database server. A run that "
            "deferred the flow's batch is asked again (reruns: "
            + ", ".join(f"{key} {result[key].get('small_invoice_reruns', 0)}" for key in PHASES) + ").", ""] + \
        lane_kit.phase_table(result, ["submit / approve / run and relay (p50; p99 ms)",
                                      "flood invoiced while publishing", "flood requests purged"], middle) + \
        ([f"Small-lane errors: {errors}"] if errors else [])
