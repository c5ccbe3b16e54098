"""Processes, an own RabbitMQ node and a connection-cutting TCP proxy for the fault tests."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from kombu import Connection, Queue

from shared import embedded
from tests.support import waiting
from tests.support.infra import free_port

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


class OwnRabbit:
    """A RabbitMQ node of the test's own (own node name, ports and data folder): it can be killed and restarted
    without touching the machine's broker."""

    def __init__(self):
        # Not under pytest's tmp_path: that is private to root, and Debian's rabbitmq-server runs as rabbitmq.
        base = Path(tempfile.mkdtemp(prefix="tasklinkr-fault-rabbit-"))
        self.base = base
        self.port = free_port()
        self.name = f"tlfault{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen | None = None
        (base / "mnesia").mkdir(parents=True, exist_ok=True)
        (base / "log").mkdir(exist_ok=True)
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (base / "rabbitmq-env.conf").write_text(f"NODENAME={self.name}\nERL_EPMD_ADDRESS=127.0.0.1\n")
        (base / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0 and shutil.which("chown"):
            # Debian's rabbitmq-server drops to the rabbitmq user.
            subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(base)], check=False)
        self.env = {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        with open(self.base / "server.out", "ab") as out:
            self.process = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        if not wait_for(self._answers, timeout=90, interval=0.5):
            raise RuntimeError("own RabbitMQ node did not start:\n" + (self.base / "server.out").read_text()[-3000:])

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        with Connection(self.uri, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return True

    def kill(self) -> None:
        """SIGKILL the whole node (no clean shutdown)."""
        # Debian's wrapper starts the Erlang VM as the rabbitmq user in a session of its own, and the node name is
        # only in its environment: find this node's processes by that, and kill their process groups.
        for pid in self._node_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process:
            self.process.wait(timeout=30)
        wait_for(lambda: not self._port_open() and not self._node_pids(), timeout=20)

    def _node_pids(self) -> list[int]:
        marker = f"RABBITMQ_NODENAME={self.name}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker in (entry / "environ").read_bytes() and (entry / "comm").read_text().strip() != "epmd":
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False


class CuttableProxy:
    """A TCP proxy process in front of the broker that can cut every connection and refuse new ones a while."""

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

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


class OwnDatabase:
    """An embedded SecantusDB with its data on disk, so it can be stopped and started again."""

    def __init__(self, base: Path):
        self.path = base / "db"
        self.port = free_port()
        self.process = None
        self.uri = embedded.uri_for(self.port)

    def start(self) -> None:
        self.process = embedded.start(self.path, self.port, log_path=self.path.parent / "db.log")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
