"""A RabbitMQ node of a test's own, for tests that kill the broker or need what the machine's node lacks."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from kombu import Connection

from tests.support import waiting
from tests.support.infra import free_port

# Probes of a node that is starting or down: a failing probe means "not yet".
wait_for = functools.partial(waiting.wait_for, timeout=60.0, interval=0.2, ignore_errors=True)


class OwnRabbit:
    """A RabbitMQ node of the test's own (own node name, ports and data folder): it can be killed and restarted
    without touching the machine's broker."""

    def __init__(self, management: bool = False, tls: tuple[Path, Path, Path] | None = None):
        """``tls``: (CA, certificate, key) files; the node then also listens for AMQPS on ``tls_port``."""
        # Not under pytest's tmp_path: that is private to root, and Debian's rabbitmq-server runs as rabbitmq.
        base = Path(tempfile.mkdtemp(prefix="tasklinkr-fault-rabbit-"))
        self.base = base
        self.management, self.tls = management, tls
        self.name = f"tlfault{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen | None = None
        self.started_once = False
        (base / "mnesia").mkdir(parents=True, exist_ok=True)
        (base / "log").mkdir(exist_ok=True)
        if tls:
            for name, source in zip(("ca.pem", "cert.pem", "key.pem"), tls, strict=True):
                shutil.copy(source, base / name)
        (base / "enabled_plugins").write_text("[rabbitmq_management].\n" if management else "[].\n")
        self._choose_ports()

    def _choose_ports(self) -> None:
        """Free ports for the node's listeners, written to its configuration and environment. A port found free
        can be taken by another process before the node binds it: ``start`` then chooses again."""
        base = self.base
        self.port = free_port()
        self.management_port = free_port() if self.management else None
        self.tls_port = free_port() if self.tls else None
        conf = f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
        if self.management:
            conf += f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.management_port}\n"
        if self.tls:
            conf += (f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\nssl_options.cacertfile = {base}/ca.pem\n"
                     f"ssl_options.certfile = {base}/cert.pem\nssl_options.keyfile = {base}/key.pem\n"
                     "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")
        (base / "rabbitmq.conf").write_text(conf)
        (base / "rabbitmq-env.conf").write_text(f"NODENAME={self.name}\nERL_EPMD_ADDRESS=127.0.0.1\n")
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

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def start(self) -> None:
        """Start the node (again, after ``kill``: on the same ports, which its clients know). Its first start
        chooses other ports and tries again, up to twice, when one it chose was taken in the meantime."""
        for attempt in range(3):
            output = self.base / "server.out"
            seen = output.stat().st_size if output.exists() else 0
            with open(output, "ab") as out:
                self.process = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=out,
                                                 stderr=subprocess.STDOUT, start_new_session=True)
            if wait_for(self._answers_or_exited, timeout=90, interval=0.5) and self.process.poll() is None:
                self.started_once = True
                return
            said = output.read_bytes()[seen:].decode(errors="replace")
            if self.started_once or "eaddrinuse" not in said or attempt == 2:
                raise RuntimeError(f"own RabbitMQ node did not start:\n{said[-3000:]}")
            self._kill_processes()
            self._choose_ports()

    def _answers_or_exited(self) -> bool:
        return self.process.poll() is not None or self._answers()

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        if self.management_port:
            with socket.create_connection(("127.0.0.1", self.management_port), timeout=1):
                pass
        with Connection(self.uri, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return True

    def kill(self) -> None:
        """SIGKILL the whole node (no clean shutdown)."""
        self._kill_processes()
        wait_for(lambda: not self._port_open() and not self._node_pids(), timeout=20)

    def _kill_processes(self) -> None:
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

    def pids(self) -> list[int]:
        """The node's processes (the Erlang VM and its helpers), e.g. to read their CPU time."""
        return self._node_pids()

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
