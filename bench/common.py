"""What the benchmarks share: where results go, the progress bar, the broker vhost and embedded database they start,
stopping the processes they started (also when the benchmark itself is stopped), reading a process's CPU time and
memory (and the machine's, and which process is the broker) from /proc, and timing a fixed workload to show how fast
the host was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.runtime import topology
from shared.tools import embedded
from tests.support.infra import free_port, local_vhost
from tests.support.rabbit import OwnRabbit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"
PY = sys.executable
console = Console()


def progress() -> Progress:
    return Progress(TextColumn("{task.description:<46}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def stop(process: subprocess.Popen) -> None:
    """Stop a child we started and wait for it, before its broker vhost and database go away."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_mb(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS"), "peak_rss_mb": fields.get("VmHWM")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending += [int(child) for child in task.read_text().split()]
            except OSError:  # a thread or a short-lived child that has gone
                pass
    return pids


def tree_cpu(pids: list[int], descend: bool = True) -> float:
    total = 0.0
    for pid in pids:
        for member in tree(pid) if descend else [pid]:
            try:
                total += cpu_seconds(member)
            except OSError:  # a short-lived child that has gone
                pass
    return total


def broker_pid(amqp_uri: str) -> int | None:
    """The RabbitMQ node (``beam.smp``) listening on the AMQP URI's port on this machine, or None."""
    port = urlparse(amqp_uri).port or 5672
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: listening
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "beam.smp":
                continue
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def reference_workload_ms(repeats: int = 5) -> float:
    """CPU milliseconds of one thread on a fixed workload, best of ``repeats``: numpy gathers and partitions over
    100,000 values (as ranking does) and 2,000 small dicts built and written as JSON (as explaining and emitting do).
    The work is the same in every run, so its time is the host's speed: on this shared machine the same code's CPU
    time moves by half between hours, and figures of two runs compare only beside it."""
    rng = np.random.default_rng(7)
    values, picks = rng.random(100_000), rng.integers(0, 100_000, 100_000)
    taken = np.empty_like(values)  # in place: a fresh process's first large allocations cost page faults
    times = []
    for _ in range(repeats + 1):  # the first warms up, uncounted
        started = time.thread_time()
        for _ in range(20):
            np.take(values, picks, out=taken)
            taken.partition(10)
        json.dumps([{"id": f"p{n}", "score": n / 7, "reasons": [str(n), "x" * (n % 13)]} for n in range(2000)])
        times.append(time.thread_time() - started)
    return round(min(times[1:]) * 1000, 2)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (from /proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM (``timeout``, ``kill``) end the benchmark as Ctrl-C does, by unwinding: the database servers,
    broker nodes and service processes its ``ExitStack``s and ``finally`` blocks stop are stopped. Python's default
    is to die at once, and they were left running, loading whatever ran next on the machine."""
    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def start_database(stack: ExitStack) -> tuple[subprocess.Popen, str]:
    """An embedded database in memory, stopped when ``stack`` closes: its process and URI."""
    port = free_port()
    database_process = embedded.start(":memory:", port)
    stack.callback(stop, database_process)
    return database_process, embedded.uri_for(port)


def infrastructure(stack: ExitStack, rabbit: OwnRabbit | None = None) -> tuple[str, subprocess.Popen, str]:
    """A broker vhost of the benchmark's own (or, given ``rabbit``, a RabbitMQ node of its own, started here) with
    the platform's topology, and an embedded database (stopped when ``stack`` closes): the AMQP URI, the database
    process and its URI."""
    if rabbit is None:
        amqp_uri = stack.enter_context(local_vhost())
    else:
        stack.callback(rabbit.cleanup)
        rabbit.start()
        amqp_uri = rabbit.uri
    database_process, mongo_uri = start_database(stack)
    topology.apply(amqp_uri)
    return amqp_uri, database_process, mongo_uri


def service_env(service: str, amqp_uri: str, mongo_uri: str, database: str, outbox_poll_seconds: float,
                **settings: str) -> dict[str, str]:
    """The environment of a ``tasklinkr run <service>`` process on the benchmark's vhost and database (no metrics
    port, no config file), with ``settings`` (``TASKLINKR_…`` variables) on top."""
    return {**os.environ, "TASKLINKR_AMQP_URI": amqp_uri, "TASKLINKR_MONGO_URI": mongo_uri,
            f"TASKLINKR_{service.upper()}_MONGO_DATABASE": database, "TASKLINKR_METRICS_PORT": "off",
            "TASKLINKR_LOG_LEVEL": "INFO", "TASKLINKR_CONFIG_FILE": "/nonexistent.yaml",
            "TASKLINKR_OUTBOX_POLL_SECONDS": str(outbox_poll_seconds), **settings}


def finish(name: str, report: dict, text: str, checks: dict[str, bool]) -> None:
    """Write ``bench-results/<name>.json`` (``report``) and ``<name>.md`` (``text``), print the text and the last
    line, ``targets met: N of M``; exit with status 1 when a target is missed."""
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(text)
    console.print(text)
    met = sum(checks.values())
    print(f"targets met: {met} of {len(checks)}")
    if met < len(checks):
        sys.exit(1)
