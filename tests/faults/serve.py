"""Run a test service class as its own process: ``python -m tests.faults.serve module:Class``.

Configured exactly like a platform service (``TASKLINKR_*`` environment, see shared/runtime/config.py).
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import importlib  # noqa: E402
import sys  # noqa: E402

from nameko.cli.run import run  # noqa: E402

from shared.runtime.config import nameko_config  # noqa: E402
from shared.runtime.logs import configure_logging  # noqa: E402
from shared.runtime.metrics import serve as serve_metrics  # noqa: E402

if __name__ == "__main__":
    module_name, class_name = sys.argv[1].split(":")
    service = getattr(importlib.import_module(module_name), class_name)
    config = nameko_config(service.name)
    configure_logging(service.name, config["LOG_LEVEL"], config["LOG_FORMAT"])
    serve_metrics(service.name)  # on TASKLINKR_<SERVICE>_METRICS_PORT, as the fault rig sets it
    run([service], config)
