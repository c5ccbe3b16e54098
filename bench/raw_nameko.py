"""The ceiling for matching's end-to-end throughput: plain nameko, one event in, one event out, nothing else.

A nameko 2.14 service with a stock ``@event_handler`` (no database, no outbox, no contract check, no retries)
that answers every ``posting.published.v1`` from ``rawsource`` with a ``matches.proposed.v1`` through nameko's own
``EventDispatcher``. Run as its own process, exactly like a matching worker:

    python -m bench.raw_nameko amqp://guest:guest@127.0.0.1:5672/vhost
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import sys  # noqa: E402

from nameko.events import EventDispatcher, event_handler  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

SOURCE = "rawsource"


class RawRelay:
    name = "rawbench"
    dispatch = EventDispatcher()

    @event_handler(SOURCE, "posting.published.v1")
    def on_posting_published(self, envelope: dict) -> None:
        self.dispatch("matches.proposed.v1", {"posting_id": envelope["subject"], "candidates": []})


def main() -> None:
    runner = ServiceRunner({"AMQP_URI": sys.argv[1], "serializer": "json", "max_workers": 10})
    runner.add_service(RawRelay)
    runner.start()
    runner.wait()


if __name__ == "__main__":
    main()
