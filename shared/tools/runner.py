"""Runs one TaskLINKr service process: ``tasklinkr run <service>``."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from shared.runtime import config as settings
from shared.runtime.logs import configure_logging
from shared.runtime.metrics import serve as serve_metrics

log = logging.getLogger(__name__)


def runnable_services() -> tuple[str, ...]:
    """The services that exist in this checkout (a planned service has a package but no service.py yet)."""
    root = Path(__file__).resolve().parents[2] / "services"
    return tuple(name for name in settings.SERVICES if (root / name / "service.py").is_file())


def service_class(name: str) -> type:
    """The nameko service class of ``services/<name>/service.py`` (the class whose ``name`` is ``name``).

    Loaded by name, not imported, so the platform kit stays independent of every service.
    """
    if name not in settings.SERVICES:
        raise SystemExit(f"unknown service {name!r}; choose one of {', '.join(settings.SERVICES)}")
    module = importlib.import_module(f"services.{name}.service")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == name and value.__module__ == module.__name__:
            return value
    raise SystemExit(f"services/{name}/service.py defines no service class named {name!r}")


def run(name: str, lanes: list[str] | None = None) -> None:
    """Run service ``name``, consuming only ``lanes`` (its event, command and RPC queues of those lanes; all lanes
    when empty)."""
    from nameko.cli.run import run as nameko_run

    from shared.vocabulary.terms import known_lanes

    config = settings.nameko_config(name)
    consumed = known_lanes(lanes)
    config["LANES"] = [lane.value for lane in consumed]
    configure_logging(name, config["LOG_LEVEL"], config["LOG_FORMAT"])
    cls = service_class(name)
    serve_metrics(name)
    log.info("starting %s (lanes: %s)", name, ", ".join(config["LANES"]))
    nameko_run([cls], config)
