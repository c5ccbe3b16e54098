"""The embedded MongoDB-compatible server (SecantusDB) used when no MongoDB URI is configured."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared.runtime.config import DATA_SERVICES

# Writes slow down as SecantusDB's oplog grows; nothing here reads an old oplog, so keep it short.
OPLOG_MAX_ENTRIES = 20_000
# The storage engine's cache of a server in memory (``start(":memory:", ...)``: the tests', the benchmarks'), which
# holds all its data: taken as it fills, not at start. At the server's default of 1 GB every write failed
# (``WT_CACHE_FULL``) once fewer than 15,000 postings had gone through matching (``bench.matching --e2e-postings
# 15000``); the test suite, which keeps every test's database, reached about 520 MB of resident memory. This machine
# has 24 GB.
IN_MEMORY_CACHE = "8G"


def secantusd_binary() -> str:
    beside = Path(sys.executable).with_name("secantusd-py")
    if beside.exists():
        return str(beside)
    found = shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py not found: install the project (`make install`) first")
    return found


def uri_for(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


def port_for(service: str, base_port: int) -> int:
    """Where ``make run`` puts the embedded server of one service: one server per service, as compose runs one
    MongoDB per service, on consecutive ports from ``base_port`` in the order of ``config.DATA_SERVICES``."""
    return base_port + DATA_SERVICES.index(service)


def wait_until_ready(uri: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the embedded database exited with code {process.returncode}")
        try:
            with MongoClient(uri, serverSelectionTimeoutMS=500) as client:
                client.admin.command("ping")
                return
        except PyMongoError as exc:
            last_error = exc
            time.sleep(0.2)
    raise RuntimeError(f"the embedded database did not answer at {uri}: {last_error}")


def is_answering(uri: str) -> bool:
    try:
        with MongoClient(uri, serverSelectionTimeoutMS=500) as client:
            client.admin.command("ping")
            return True
    except PyMongoError:
        return False


def start(storage_path: str | Path, port: int, log_path: str | Path | None = None,
          test_commands: bool = False) -> subprocess.Popen:
    """Start SecantusDB on 127.0.0.1:port with data under storage_path (kept across restarts). ``test_commands``
    enables MongoDB's fault injection (``configureFailPoint``), for fault tests only: any client that reaches the
    port could then make the server fail.

    In memory (``":memory:"``) the storage engine's cache is where all the data lives: a write that would grow it
    past its bound fails (``WT_CACHE_FULL``, answered as an internal error), so such a server starts with room for a
    long run's writes (``IN_MEMORY_CACHE``). On disk it keeps the server's default of 1 GB, data beyond it evicted to
    disk.

    Data on disk is synced at every commit (``--sync-on-commit``): without it a process killed with SIGKILL lost
    commits it had already acknowledged (a consumer's applied events, after their messages were acked: lost for
    good; ``tests/faults/test_database_faults.py``). It costs about 3 ms per transaction here (2.4 -> 5.4 ms).
    """
    storage = str(storage_path)
    if storage != ":memory:":
        Path(storage).mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [
            secantusd_binary(),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--storage-path", storage,
            "--oplog-max-entries", str(OPLOG_MAX_ENTRIES),
            "--log-level", "WARNING",
            *(["--cache-size", IN_MEMORY_CACHE] if storage == ":memory:" else ["--sync-on-commit"]),
            *(["--enable-test-commands"] if test_commands else []),
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ},
        start_new_session=True,
    )
    wait_until_ready(uri_for(port), process=process)
    return process
