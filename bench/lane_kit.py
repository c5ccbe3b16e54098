"""What the matching and billing parts of ``make bench-lanes`` share: a service process per lane with that lane's
resources, what a phase cost, latency summaries.

**A lane's resources.** A deployment gives each ``<service>-<lane>`` its own workers and its own share of the CPU:
compose sets ``TASKLINKR_MAX_WORKERS`` and ``cpu_shares`` per lane service (docker-compose.yml: the large lane 4
workers and 205 shares to the small lane's 10 and 1024), Kubernetes the same variable and the pods' CPU requests
(deploy/gen_kubernetes.py, ``LANE_RESOURCES``: 100m to 500m), both a weight of about 1/5 under contention. The
benchmark starts each lane's process the same way: the lane's ``TASKLINKR_MAX_WORKERS`` in its environment, and its
CPU weight as the process's nice value (the kernel weighs a nice 7 thread 215 to a nice 0 thread's 1024). Only the
large lane's weight is lowered, never the small lane's raised: the machine is shared with other work.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from kombu import Connection, Queue
from rich.progress import Progress

from bench.common import PY, RESULTS, ROOT, cpu_seconds, machine_busy_seconds, percentile, start_database, stop

SMALL, LARGE = "smb", "enterprise"
TARGET_RATIO = 2.0


@dataclass(frozen=True)
class LaneResources:
    """What a deployment gives one lane's processes: workers (also the AMQP prefetch) and a CPU weight."""

    max_workers: int
    nice: int  # 0: a full share of the CPU; 7: about a fifth of it when the CPU is contended

    def as_report(self) -> dict:
        return {"max_workers": self.max_workers, "nice": self.nice}


# As docker-compose.yml and deploy/gen_kubernetes.py give them (docs/operations.md, Scaling).
DEPLOYED = {SMALL: LaneResources(max_workers=10, nice=0), LARGE: LaneResources(max_workers=4, nice=7)}
# Every lane as one process of the service would run it: what lanes off means for resources too.
UNSPLIT = LaneResources(max_workers=10, nice=0)


def cell_database(stack: ExitStack, resources: LaneResources) -> tuple[subprocess.Popen, str]:
    """A lane's database server of its own (its cell's, docs/operations.md, Cells) at the lane's CPU weight, as a
    cell's database gets its lane's CPU request: its process and URI."""
    process, uri = start_database(stack)
    for thread in os.listdir(f"/proc/{process.pid}/task"):  # every thread (running, it has several)
        with contextlib.suppress(ProcessLookupError):  # one that ended since it was listed
            os.setpriority(os.PRIO_PROCESS, int(thread), resources.nice)
    return process, uri


class Services:
    """Service processes of the benchmark, ``tasklinkr run <service> --lane <lane>``, each with its lane's
    resources and a log in bench-results/; stopped when ``stack`` closes."""

    def __init__(self, stack: ExitStack, env: dict[str, dict[str, str]]):
        self.stack = stack
        self.env = env  # by service, or by ``<service>-<lane>`` for a lane with an environment of its own
        self.logs: dict[int, Path] = {}

    def start(self, service: str, lane: str, label: str, resources: LaneResources) -> subprocess.Popen:
        path = RESULTS / f"lanes-{service}-{label}.log"
        log = open(path, "wb")  # noqa: SIM115 - the child owns it
        env = {**self.env.get(f"{service}-{label}", self.env[service]),
               "TASKLINKR_MAX_WORKERS": str(resources.max_workers)}
        process = subprocess.Popen([PY, "-m", "shared.tools.cli", "run", service, "--lane", lane], cwd=ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        if resources.nice:  # before its interpreter has started a thread: they all inherit it
            os.setpriority(os.PRIO_PROCESS, process.pid, resources.nice)
        self.stack.callback(stop, process)
        self.logs[process.pid] = path
        return process

    def wait_for(self, processes: list[subprocess.Popen], marker: bytes, bar: Progress, what: str,
                 timeout: float = 900) -> None:
        """Until each process has logged ``marker``."""
        task = bar.add_task(what, total=len(processes))
        deadline = time.monotonic() + timeout
        for process in processes:
            while marker not in self.logs[process.pid].read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{what}: failed; see {self.logs[process.pid]}")
                time.sleep(0.3)
            bar.advance(task)


class PhaseCost:
    """CPU seconds of each named process, how busy the whole (shared) machine was and its load, over a phase."""

    def __init__(self, processes: dict[str, int]):
        self.processes = processes
        self.cpu = {label: cpu_seconds(pid) for label, pid in processes.items()}
        self.busy, self.total = machine_busy_seconds()
        self.load = os.getloadavg()[0]

    def report(self) -> dict:
        busy, total = machine_busy_seconds()
        return {"load_average_1min": [round(self.load, 2), round(os.getloadavg()[0], 2)],
                "machine_busy": round((busy - self.busy) / max(1e-9, total - self.total), 2),
                "cpu_s": {label: round(cpu_seconds(pid) - self.cpu[label], 1)
                          for label, pid in self.processes.items() if os.path.exists(f"/proc/{pid}")}}


def summary(samples: list[float], expected: int) -> dict:
    if not samples:
        return {"samples": 0, "expected": expected, "missing": expected}
    return {"samples": len(samples), "expected": expected, "missing": expected - len(samples),
            "p50_ms": round(percentile(samples, 0.5) * 1000, 1), "p99_ms": round(percentile(samples, 0.99) * 1000, 1),
            "max_ms": round(max(samples) * 1000, 1)}


def percentiles_ms(samples: list[float]) -> dict:
    """p50 / p99 of a part of the latency (where the time went)."""
    if not samples:
        return {}
    return {"p50_ms": round(percentile(samples, 0.5) * 1000, 1), "p99_ms": round(percentile(samples, 0.99) * 1000, 1)}


def purge(amqp_uri: str, name: str) -> int:
    with Connection(amqp_uri) as connection:
        return Queue(name)(connection.channel()).purge() or 0


def cell(result: dict) -> str:
    if not result.get("samples"):
        return "none answered"
    text = f"{result['p50_ms']} / {result['p99_ms']} ms (max {result['max_ms']})"
    return text + (f", **{result['missing']} of {result['expected']} missing**" if result["missing"] else "")


def ratio(phase: dict, idle: dict) -> float:
    """A phase's small-lane p99 over the idle one (infinite when either is missing)."""
    if not phase.get("p99_ms") or not idle.get("p99_ms"):
        return float("inf")
    return phase["p99_ms"] / idle["p99_ms"]


class Listener:
    """A thread of the benchmark's that consumes from the broker until closed; its ``_run`` sets ``_ready`` once its
    queues are declared."""

    listens_to = "its queues"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"{self.listens_to} were not declared")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


PHASES = {"idle": "idle (small lane only)", "flood_with_lanes": "flood, lanes on (a queue and a process per lane)",
          "flood_without_lanes": "flood, lanes off (one shared queue, two processes)"}


def phase_table(result: dict, columns: list[str], middle: Callable[[dict], list[str]]) -> list[str]:
    """A part's table: a row per phase with the small lane's latency and its ratio to idle, ``columns`` (their cells
    from ``middle(phase result)``), how busy the machine was and its load; then the CPU each process used."""
    head = ["phase", "small lane p50 / p99", "vs idle p99", *columns, "machine busy", "load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    idle = result["idle"]["small"]
    for key, label in PHASES.items():
        phase = result[key]
        load = phase["load_average_1min"]
        cells = [label, cell(phase["small"]), f"{ratio(phase['small'], idle):.2f}×", *middle(phase),
                 f"{phase['machine_busy']:.0%}", f"{load[0]}→{load[1]}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", "CPU seconds per phase: " + "; ".join(
        f"{PHASES[key].split(' (')[0]}: " + ", ".join(f"{label} {s}" for label, s in result[key]["cpu_s"].items())
        for key in PHASES)]
