"""A benchmark stopped with SIGTERM (``timeout``, ``kill``) stops what it started, as on Ctrl-C: its database server
and broker node are not left running to load the next run (``bench.common.stop_cleanly_on_sigterm``)."""

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, time
from contextlib import ExitStack
from pathlib import Path
from bench.common import stop_cleanly_on_sigterm

stop_cleanly_on_sigterm()
marker = Path(sys.argv[1])
with ExitStack() as stack:
    stack.callback(lambda: marker.write_text("stopped"))
    print("started", flush=True)
    time.sleep(60)
"""


def test_sigterm_unwinds_the_benchmark_and_stops_what_it_started(tmp_path):
    marker = tmp_path / "stopped"
    bench = subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert bench.stdout.readline().strip() == "started"
    bench.send_signal(signal.SIGTERM)
    assert bench.wait(timeout=30) == 128 + signal.SIGTERM
    assert marker.read_text() == "stopped"

