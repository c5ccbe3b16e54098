"""make soak: the full flow at a steady rate with random service restarts; prints the ledger and latencies.

    SOAK_SECONDS=300 SOAK_RATE=5 make soak

Clients create and publish postings and operators register providers over HTTP at SOAK_RATE flows per second,
while a chaos loop SIGKILLs a random service every SOAK_CHAOS_SECONDS and restarts it. At the end every
accepted posting must be in matching's read model exactly once (lost = 0, doubled = 0), and every
``posting.published.v1`` must have reached the broker. Latency is HTTP publish -> event seen on the broker.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from bench.common import stop_cleanly_on_sigterm  # noqa: E402
from shared.tools import embedded  # noqa: E402
from tests.support import samples  # noqa: E402
from tests.support.infra import free_port, local_vhost  # noqa: E402
from tests.support.stack import OPERATOR_KEY, EventRecorder, RunningStack  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
RATE = float(os.environ.get("SOAK_RATE", "4"))
CHAOS_SECONDS = float(os.environ.get("SOAK_CHAOS_SECONDS", "20"))
VICTIMS = ("postings", "providers", "matching")


def call(url, method, path, key, **kwargs):
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # a client that retries, as the API asks (idempotent operations)
        try:
            response = requests.request(method, url + path, headers=headers, timeout=30, **kwargs)
            if response.status_code < 500:
                return response
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{method} {path} never answered")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def main() -> None:
    stop_cleanly_on_sigterm()
    console = Console()
    port = free_port()
    database = embedded.start(":memory:", port)
    mongo_uri = embedded.uri_for(port)
    published_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    restarts: list[str] = []
    with local_vhost() as amqp_uri:
        recorder = EventRecorder(amqp_uri)
        recorder.bind()
        stack = RunningStack(Path(tempfile.mkdtemp(prefix="tasklinkr-soak-")), amqp_uri, mongo_uri)
        stack.start()
        try:
            tenant = call(stack.url, "POST", "/v1/tenants", OPERATOR_KEY, json=samples.tenant()).json()
            key = tenant["api_key"]
            stop = time.monotonic() + SECONDS

            def flow(n: int) -> None:
                call(stack.url, "POST", "/v1/providers", OPERATOR_KEY,
                     json=samples.individual_provider(display_name=f"Soak provider {n}"))
                posting = call(stack.url, "POST", "/v1/postings", key, json=samples.posting(title=f"Soak task {n}"),
                               headers={"Idempotency-Key": f"soak-{n}-{uuid.uuid4()}"}).json()
                answer = call(stack.url, "POST", f"/v1/postings/{posting['id']}/publish", key, json={})
                if answer.status_code == 200:
                    published_at[posting["id"]] = time.monotonic()

            def chaos() -> None:
                while time.monotonic() < stop:
                    eventlet.sleep(CHAOS_SECONDS)
                    victim = random.choice(VICTIMS)
                    stack.kill(victim)
                    restarts.append(victim)
                    eventlet.sleep(1)
                    stack.restart(victim)

            def watch() -> None:
                while True:
                    for event in recorder.of_type("posting.published.v1"):
                        seen_at.setdefault(event["subject"], time.monotonic())
                    eventlet.sleep(0.2)

            watcher = eventlet.spawn(watch)
            chaos_thread = eventlet.spawn(chaos)
            pool = eventlet.GreenPool(200)
            n = 0
            with Progress(console=console) as progress:
                task = progress.add_task("soaking", total=SECONDS)
                started = time.monotonic()
                while time.monotonic() < stop:
                    pool.spawn_n(flow, n)
                    n += 1
                    eventlet.sleep(1 / RATE)
                    progress.update(task, completed=time.monotonic() - started)
            pool.waitall()
            chaos_thread.wait()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not set(published_at) <= set(seen_at):
                eventlet.sleep(0.5)
            matching = MongoClient(mongo_uri)[stack.database_name("matching")]
            while time.monotonic() < deadline:
                in_matching = {d["_id"] for d in matching.postings.find({"status": "open"}, {"_id": 1})}
                if set(published_at) <= in_matching:
                    break
                eventlet.sleep(0.5)
            watcher.kill()
            in_matching = {d["_id"] for d in matching.postings.find({"status": "open"}, {"_id": 1})}
            events = recorder.of_type("posting.published.v1")
            per_subject: dict[str, set] = {}
            for event in events:
                per_subject.setdefault(event["subject"], set()).add(event["id"])
            lost = set(published_at) - in_matching
            doubled = {s for s, ids in per_subject.items() if len(ids) > 1}
            unexpected = in_matching - set(published_at)
            latencies = [seen_at[p] - published_at[p] for p in published_at if p in seen_at]
            console.print(f"flows started {n}, postings accepted {len(published_at)}, restarts {restarts}")
            console.print(f"ledger: lost={len(lost)} doubled={len(doubled)} unexpected={len(unexpected)} "
                          "(unexpected = published but the client never got the answer)")
            if latencies:
                console.print(
                    f"publish -> event on the broker: p50 {statistics.median(latencies) * 1000:.0f} ms, "
                    f"p95 {percentile(latencies, 95) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms, "
                    f"max {max(latencies) * 1000:.0f} ms")
            if lost or doubled:
                raise SystemExit(1)
        finally:
            stack.stop()
            database.terminate()


if __name__ == "__main__":
    main()
