"""Real infrastructure for the tests: testcontainers when a Docker engine answers, the machine's services otherwise.

- Broker: a RabbitMQ container, or a fresh vhost on the local RabbitMQ (127.0.0.1:5672) made with rabbitmqctl and
  deleted afterwards, so tests never touch the default vhost a developer's stack uses.
- Database: a ``mongo`` container started as a single-node replica set (transactions need one), or an embedded
  SecantusDB on a free port with in-memory storage.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import uuid

from shared.tools import embedded

LOCAL_AMQP = os.environ.get("TASKLINKR_TEST_AMQP_HOST", "127.0.0.1:5672")


def unique_name(hint: str = "t") -> str:
    cleaned = re.sub(r"[^a-z0-9]+", "_", hint.lower())[:30].strip("_")
    return f"test_{cleaned}_{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    """A port nobody listens on, for a process the test starts, below the kernel's ephemeral range: a port the kernel
    hands out (a bind to port 0, an outgoing connection's own end) can be taken by any other process between this
    answer and that process's bind — as the fault tests' brokers and databases beside the suite did, failing a whole
    stack with "Address already in use"."""
    ephemeral_low = _ephemeral_low()
    for _ in range(500):
        port = _RANDOM.randrange(10_000, ephemeral_low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {ephemeral_low} after 500 tries")


_RANDOM = random.SystemRandom()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return max(int(ports.read().split()[0]), 10_001)
    except (OSError, ValueError, IndexError):
        return 32_768


def docker_available() -> bool:
    if os.environ.get("TASKLINKR_TEST_NO_DOCKER"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def rabbitmqctl(*args: str) -> None:
    binary = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([binary, *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def local_vhost():
    vhost = unique_name("vhost")
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{LOCAL_AMQP}/{vhost}"
    finally:
        with contextlib.suppress(Exception):
            rabbitmqctl("delete_vhost", vhost)


@contextlib.contextmanager
def broker():
    if docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3-management") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/"
    else:
        with local_vhost() as uri:
            yield uri


@contextlib.contextmanager
def database_server():
    if docker_available():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container = DockerContainer("mongo:7").with_command("--replSet rs0 --bind_ip_all").with_exposed_ports(27017)
        with container:
            wait_for_logs(container, "Waiting for connections")
            container.exec(["mongosh", "--quiet", "--eval", "rs.initiate()"])
            host = container.get_container_host_ip()
            port = container.get_exposed_port(27017)
            uri = f"mongodb://{host}:{port}/?directConnection=true"
            embedded.wait_until_ready(uri)
            yield uri
    else:
        port = free_port()
        process = embedded.start(":memory:", port)
        try:
            yield embedded.uri_for(port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
