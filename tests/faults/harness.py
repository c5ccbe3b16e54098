"""Processes, an own RabbitMQ node and a connection-cutting TCP proxy for the fault tests."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import requests
from kombu import Connection, Queue
from pymongo import MongoClient, monitoring
from pymongo.errors import PyMongoError

from shared.tools import embedded
from tests.support import waiting
from tests.support.infra import free_port
from tests.support.rabbit import OwnRabbit  # noqa: F401  (the fault tests take it from here)

ROOT = Path(__file__).resolve().parents[2]


# Fault tests probe brokers and databases that are down or starting: a failing probe means "not yet".
wait_for = functools.partial(waiting.wait_for, timeout=60.0, interval=0.2, ignore_errors=True)


class ServiceProcess:
    """A nameko service class run as its own OS process (``tests.faults.serve``), killable at will."""

    def __init__(self, target: str, env: dict[str, str], log_path: Path):
        self.target = target
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "tests.faults.serve", self.target], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, whatever was in flight is cut off."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def consumers_on(amqp_uri: str, queue: str) -> int:
    with Connection(amqp_uri, connect_timeout=3) as connection:
        return Queue(queue)(connection.channel()).queue_declare(passive=True).consumer_count


def management_url_for(amqp_uri: str, port: int = 15672) -> str:
    return f"http://{urlsplit(amqp_uri).hostname}:{port}"


def queue_depths(amqp_uri: str, management_url: str, names: list[str]) -> dict[str, tuple[int, int]]:
    """Ready and unacknowledged messages of each queue: ready read exactly (a passive declare), unacknowledged from
    the management API (whose figures may be a few seconds old: a caller wanting "none" watches them a while)."""
    parts = urlsplit(amqp_uri)
    vhost = unquote(parts.path[1:]) or "/"
    answer = requests.get(f"{management_url}/api/queues/{quote(vhost, safe='')}",
                          params={"columns": "name,messages_unacknowledged"},
                          auth=(unquote(parts.username or "guest"), unquote(parts.password or "guest")), timeout=10)
    answer.raise_for_status()
    unacked = {queue["name"]: int(queue.get("messages_unacknowledged") or 0) for queue in answer.json()}
    depths = {}
    with Connection(amqp_uri, connect_timeout=3) as connection:
        for name in names:
            ready = Queue(name)(connection.channel()).queue_declare(passive=True).message_count
            depths[name] = (ready, unacked.get(name, 0))
    return depths


def service_env(amqp_uri: str, mongo_uri: str, databases: dict[str, str], **settings: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TASKLINKR_AMQP_URI": amqp_uri,
        "TASKLINKR_MONGO_URI": mongo_uri,
        "TASKLINKR_CONFIG_FILE": "/nonexistent/tasklinkr.yaml",
        "TASKLINKR_LOG_FORMAT": "json",
        "TASKLINKR_OUTBOX_POLL_SECONDS": "0.2",
        "TASKLINKR_OUTBOX_LEASE_SECONDS": "2",
    }
    for service, database in databases.items():
        env[f"TASKLINKR_{service.upper()}_MONGO_DATABASE"] = database
        env[f"TASKLINKR_{service.upper()}_METRICS_PORT"] = "off"
    env.update({f"TASKLINKR_{name.upper()}": value for name, value in settings.items()})
    return env


class CuttableProxy:
    """A TCP proxy process in front of the broker (or a database) that can cut every connection and refuse new ones
    a while, or blackhole them a while (forward nothing, close nothing)."""

    def __init__(self, upstream_host: str, upstream_port: int, cut_seconds: float):
        self.port = free_port()
        self.cuts = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.proxy", str(self.port), upstream_host, str(upstream_port),
             str(cut_seconds)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"

    def cut(self) -> None:
        """Drop every open connection now and refuse new ones for the configured time."""
        self.cuts += 1
        self.process.send_signal(signal.SIGUSR1)

    def blackhole(self) -> None:
        """Forward nothing and close nothing for the configured time: a silent partition."""
        self.cuts += 1
        self.process.send_signal(signal.SIGUSR2)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


class FailedCommands(monitoring.CommandListener):
    """Appends the name of every command that failed to ``into``."""

    def __init__(self, into: list[str]):
        self.into = into

    def started(self, event) -> None:
        pass

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        self.into.append(event.command_name)


class OwnDatabase:
    """An embedded SecantusDB with its data on disk, so it can be stopped and started again."""

    def __init__(self, base: Path, test_commands: bool = False):
        self.path = base / "db"
        self.port = free_port()
        self.process = None
        self.uri = embedded.uri_for(self.port)
        self.test_commands = test_commands

    def start(self) -> None:
        self.process = embedded.start(self.path, self.port, log_path=self.path.parent / "db.log",
                                      test_commands=self.test_commands)

    def fail_commands(self, commands: list[str], times: int | None, **behaviour) -> None:
        """MongoDB's ``failCommand`` fail point, as the drivers' own tests use it: the next ``times`` of
        ``commands`` (every one until ``heal()`` when None) fail as ``behaviour`` says (``closeConnection``,
        ``errorCode``, ``writeConcernError``, ``blockConnection`` with ``blockTimeMS``)."""
        with MongoClient(self.uri) as client:
            client.admin.command("configureFailPoint", "failCommand",
                                 mode="alwaysOn" if times is None else {"times": times},
                                 data={"failCommands": commands, **behaviour})

    def heal(self) -> None:
        with MongoClient(self.uri) as client:
            client.admin.command("configureFailPoint", "failCommand", mode="off")

    def kill(self) -> None:
        """SIGKILL: no shutdown, whatever was in flight (and not yet on disk) is cut off."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def fail_point_spent(self) -> bool:
        """Whether the fail point fired every time it was armed for: a commit of the test's own still succeeds
        untouched (it would fail if a firing were left)."""
        failures: list[str] = []

        with MongoClient(self.uri, event_listeners=[FailedCommands(failures)], retryWrites=False) as client, \
                client.start_session() as session:
            session.start_transaction()
            client.faultprobe.probe.insert_one({}, session=session)
            try:
                session.commit_transaction()
            except PyMongoError:
                failures.append("commitTransaction")
        return not failures

    def step_down(self, seconds: int) -> None:
        """The primary steps down for ``seconds``: writes fail "not primary" (10107) until it is primary again."""
        with MongoClient(self.uri) as client:
            client.admin.command("replSetStepDown", seconds, force=True)

    def stop(self) -> None:
        """Stops the server; killed when it does not stop within 15 s of being asked (a server still holding a
        command a test blocked for a minute, ``fail_commands(blockTimeMS=...)``, waits for it before it exits)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
