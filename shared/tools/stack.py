"""``tasklinkr up`` (what ``make run`` calls): the whole platform as local processes.

1. Use the configured MongoDB, or start one embedded SecantusDB per service (as compose runs one MongoDB per
   service, so one service's load does not slow another's store), each with its data under
   ``data_dir/secantusdb/<service>`` (kept across restarts).
2. Check that RabbitMQ answers, with the fix when it does not.
3. Declare the messaging topology before anything publishes.
4. Start every service and the gateway (``tasklinkr run <service>``), restart any that dies, print the URL.
5. Ctrl-C (or SIGTERM) stops everything cleanly: services first, then the database.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kombu import Connection

from shared.runtime import config as settings
from shared.runtime import topology
from shared.tools import embedded
from shared.tools.runner import runnable_services

RESTART_BACKOFF_MAX = 30.0


class StackError(RuntimeError):
    pass


@dataclass
class Child:
    service: str
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0


@dataclass
class Stack:
    data_dir: Path
    amqp_uri: str
    mongo_uri: str
    gateway_address: str
    embedded_port: int
    services: tuple[str, ...] = field(default_factory=runnable_services)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: dict[str, Child] = field(default_factory=dict)
    databases: dict[str, subprocess.Popen] = field(default_factory=dict)
    _stopping: bool = False

    @classmethod
    def from_settings(cls) -> Stack:
        return cls(
            data_dir=Path(settings.get("data_dir")),
            amqp_uri=settings.get("amqp_uri"),
            mongo_uri=settings.get("mongo_uri"),
            gateway_address=settings.get("gateway_address"),
            embedded_port=settings.get("embedded_db_port"),
        )

    # -- steps -----------------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(f"tasklinkr: {text}", flush=True)

    def ensure_database(self) -> None:
        if self.mongo_uri:
            self.say(f"using MongoDB at {self.mongo_uri}")
            return
        ports = {service: embedded.port_for(service, self.embedded_port) for service in settings.DATA_SERVICES}
        taken = [port for port in ports.values() if embedded.is_answering(embedded.uri_for(port))]
        if taken:
            raise StackError(
                f"something already answers on port {', '.join(map(str, taken))} (the embedded databases use ports "
                f"{min(ports.values())}-{max(ports.values())}); stop it or set TASKLINKR_EMBEDDED_DB_PORT (or "
                "TASKLINKR_MONGO_URI to use one server deliberately)"
            )
        root = self.data_dir / "secantusdb"
        if (root / "WiredTiger").exists():
            self.say(f"note: {root} holds the data of the single embedded server of earlier releases; each service "
                     f"now has its own under {root}/<service>, so that data is not used")
        self.say(f"starting one embedded SecantusDB per service on 127.0.0.1:{min(ports.values())}-"
                 f"{max(ports.values())} (data in {root}/<service>)")
        for service, port in ports.items():
            self.databases[service] = embedded.start(root / service, port,
                                                     log_path=self.data_dir / "logs" / f"secantusdb-{service}.log")
            self.env[settings.env_name("mongo_uri", service)] = embedded.uri_for(port)

    def ensure_broker(self) -> None:
        try:
            with Connection(self.amqp_uri, connect_timeout=5) as connection:
                connection.ensure_connection(max_retries=1)
        except Exception as exc:
            raise StackError(
                f"RabbitMQ does not answer at {self.amqp_uri} ({exc}).\n"
                "  Start the local broker with `rabbitmq-server -detached`, or point TASKLINKR_AMQP_URI at one."
            ) from exc
        declared = topology.apply(self.amqp_uri)
        self.say(f"topology declared: {len(declared['exchanges'])} exchanges, {len(declared['queues'])} queues")

    def ensure_operator_key(self) -> None:
        if self.env.get("TASKLINKR_OPERATOR_KEY") or settings.get("operator_key"):
            return
        key_file = self.data_dir / "operator_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(32) + "\n")
            key_file.chmod(0o600)
            self.say(f"generated an operator key in {key_file}")
        self.env["TASKLINKR_OPERATOR_KEY"] = key_file.read_text().strip()

    def start_child(self, child: Child) -> None:
        log_path = self.data_dir / "logs" / f"{child.service}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        child.process = subprocess.Popen(
            [sys.executable, "-m", "shared.tools.cli", "run", child.service],
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()

    def start_services(self) -> None:
        for service in self.services:
            self.children[service] = Child(service)
            self.start_child(self.children[service])

    def wait_for_gateway(self, timeout: float = 60.0) -> bool:
        url = f"http://{self.gateway_address}/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except Exception:
                pass
            self.supervise()
            time.sleep(0.5)
        return False

    def supervise(self) -> None:
        """Restart any service that died, with a growing back-off."""
        now = time.monotonic()
        for child in self.children.values():
            if child.process is not None and child.process.poll() is None:
                continue
            if child.process is not None:
                code = child.process.returncode
                child.restarts += 1
                delay = min(2.0**child.restarts, RESTART_BACKOFF_MAX)
                child.next_start = now + delay
                self.say(f"{child.service} exited with {code}; restarting in {delay:.0f}s "
                         f"(log: {self.data_dir / 'logs' / (child.service + '.log')})")
                child.process = None
            if child.process is None and now >= child.next_start:
                self.start_child(child)

    def stop(self, *_args) -> None:
        self._stopping = True

    def shutdown(self) -> None:
        for child in self.children.values():
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in self.children.values():
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
        for database in self.databases.values():
            database.terminate()
        deadline = time.monotonic() + 15
        for database in self.databases.values():
            try:
                database.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                database.kill()
        self.say("stopped")

    # -- the whole thing -------------------------------------------------------------------------------------

    def run_forever(self) -> int:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        try:
            self.ensure_broker()
            self.ensure_database()
            self.ensure_operator_key()
            self.start_services()
            self.say(f"starting {', '.join(self.services)} (logs in {self.data_dir / 'logs'})")
            if not self.wait_for_gateway():
                if not self._stopping:
                    self.say("the gateway did not become healthy; see the logs above")
            else:
                self.say(f"TaskLINKr is up: http://{self.gateway_address}/v1  (API description: "
                         f"http://{self.gateway_address}/v1/openapi.json)")
                self.say(f"web console: http://{self.gateway_address}/console  (sign in with an API key)")
                self.say("operator key: $TASKLINKR_OPERATOR_KEY or the file "
                         f"{self.data_dir / 'operator_key'}; press Ctrl-C to stop")
            while not self._stopping:
                self.supervise()
                time.sleep(0.5)
            return 0
        except StackError as exc:
            self.say(str(exc))
            return 1
        finally:
            self.shutdown()
