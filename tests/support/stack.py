"""The platform as real processes for end-to-end tests, plus a recorder of every event on the broker."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import requests
from kombu import Connection, Exchange, Queue

from shared.runtime.topology import load_catalog
from shared.tools.runner import runnable_services
from shared.tools.stack import Stack
from tests.support.infra import free_port, unique_name

OPERATOR_KEY = "e2e-operator-key-" + "x" * 16


class RunningStack:
    def __init__(self, tmp: Path, amqp_uri: str, mongo_uri: str):
        self.port = free_port()
        self.prefix = unique_name("e2e")
        env = {
            **os.environ,
            "TASKLINKR_AMQP_URI": amqp_uri,
            "TASKLINKR_MONGO_URI": mongo_uri,
            "TASKLINKR_OPERATOR_KEY": OPERATOR_KEY,
            "TASKLINKR_GATEWAY_ADDRESS": f"127.0.0.1:{self.port}",
            "TASKLINKR_OUTBOX_POLL_SECONDS": "0.5",
            "TASKLINKR_RPC_TIMEOUT_SECONDS": "5",
            "TASKLINKR_TRANSACTION_TIMEOUT_SECONDS": "3",
            "TASKLINKR_LOG_FORMAT": "json",
            "TASKLINKR_CONFIG_FILE": str(tmp / "absent.yaml"),
            # One test client drives whole scenarios with one key, and retries through kills and locked documents
            # (40 at once in the crash test): the default budget would answer it 429. Budgets have their own tests.
            "TASKLINKR_RATE_LIMIT": "100000/minute",
        }
        self.metrics_ports = {}
        for service in runnable_services():
            env[f"TASKLINKR_{service.upper()}_MONGO_DATABASE"] = f"{self.prefix}_{service}"
            self.metrics_ports[service] = free_port()
            env[f"TASKLINKR_{service.upper()}_METRICS_PORT"] = str(self.metrics_ports[service])
        self.stack = Stack(
            data_dir=tmp, amqp_uri=amqp_uri, mongo_uri=mongo_uri, gateway_address=f"127.0.0.1:{self.port}",
            embedded_port=0, env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def database_name(self, service: str) -> str:
        return f"{self.prefix}_{service}"

    def start(self) -> None:
        (self.stack.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.stack.ensure_broker()
        self.stack.start_services()
        if not self.stack.wait_for_gateway(timeout=60):
            raise RuntimeError("the stack did not become healthy:\n" + self.logs())

    def metrics(self, service: str) -> str:
        return requests.get(f"http://127.0.0.1:{self.metrics_ports[service]}/metrics", timeout=5).text

    def kill(self, service: str) -> None:
        process = self.stack.children[service].process
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def restart(self, service: str) -> None:
        self.stack.start_child(self.stack.children[service])

    def logs(self) -> str:
        parts = []
        for path in sorted((self.stack.data_dir / "logs").glob("*.log")):
            parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-40:]))
        return "\n".join(parts)

    def stop(self) -> None:
        self.stack.shutdown()


class EventRecorder:
    """A durable queue bound to every producer's exchange with '#': every event the platform publishes."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.queue_name = unique_name("recorder")
        self.events: list[dict] = []
        self.headers: dict[str, dict] = {}

    def bind(self) -> None:
        producers = {e["producer"] for e in load_catalog()["events"]}
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            for producer in sorted(producers):
                exchange = Exchange(f"{producer}.events", type="topic", durable=True)
                exchange(channel).declare()
                Queue(self.queue_name, exchange=exchange, routing_key="#", durable=True)(channel).declare()

    def drain(self) -> list[dict]:
        with Connection(self.amqp_uri) as connection:
            queue = Queue(self.queue_name)(connection.channel())
            while (message := queue.get(no_ack=True)) is not None:
                body = json.loads(message.body)
                self.events.append(body)
                self.headers[body["id"]] = dict(message.headers or {})
        return self.events

    def wait_for(self, predicate, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [e for e in self.drain() if predicate(e)]
            if matching:
                return matching
            time.sleep(0.2)
        return []

    def of_type(self, routing_key: str) -> list[dict]:
        return [e for e in self.drain() if e["type"].endswith("." + routing_key)]
