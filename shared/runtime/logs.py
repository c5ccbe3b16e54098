"""Structured logging: one JSON object per line, each carrying the service and the correlation id."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from shared.runtime.tracing import causation_id_var, correlation_id_var


class _ContextFilter(logging.Filter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.correlation_id = correlation_id_var.get()
        record.causation_id = causation_id_var.get()
        return True


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s %(causation_id)s",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # UTC, RFC 3339
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(service)s [%(correlation_id)s] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # nameko and kombu are chatty at INFO about every connection.
    for noisy in ("kombu", "amqp", "nameko.containers", "pymongo"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
