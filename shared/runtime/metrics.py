"""Prometheus metrics, one endpoint per service process (``GET /metrics``).

Every service process serves its own on ``TASKLINKR_<SERVICE>_METRICS_PORT``: ``auto`` (the default) is 9100 plus
the service's place in the list (providers 9101, postings 9102, matching 9103, contracting 9104, billing 9105,
gateway 9106), ``off`` turns it off. The consumers' series carry the workload ``lane`` of the message (for a
retry or a parked message, the lane of the queue it came from); the outbox relay's series the lane of its relay.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from shared.runtime import config as settings

log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter("tasklinkr_events_published_total", "Events the outbox relay of a lane published "
                           "(confirmed and routed).", ["service", "lane"])
EVENTS_CONSUMED = Counter("tasklinkr_events_consumed_total", "Events handled, by outcome (applied, duplicate, "
                          "failed), per workload lane.", ["service", "handler", "outcome", "lane"])
EVENTS_RETRIED = Counter("tasklinkr_events_retried_total", "Failed deliveries sent to a delay queue for another "
                         "attempt.", ["service", "handler", "lane"])
EVENTS_DEFERRED = Counter("tasklinkr_events_deferred_total", "Deliveries that met a transient infrastructure failure "
                          "(database down, not primary, a conflict) and were sent to a delay queue without spending "
                          "an attempt.", ["service", "handler", "lane"])
EVENTS_DEAD_LETTERED = Counter("tasklinkr_events_dead_lettered_total", "Messages parked in the dead-letter queue.",
                               ["service", "handler", "reason", "lane"])
EVENTS_REFUSED = Counter("tasklinkr_events_refused_total", "Events the broker refused (reason nack: a full queue) or "
                         "could not route (unroutable: no queue bound); they stay pending and are published again.",
                         ["service", "reason", "lane"])
OUTBOX_BACKLOG = Gauge("tasklinkr_outbox_backlog", "Committed events of a lane not yet confirmed by the broker.",
                       ["service", "lane"])
HANDLER_SECONDS = Histogram("tasklinkr_handler_seconds", "Time spent in an event handler.",
                            ["service", "handler", "lane"],
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
BATCH_SIZE = Histogram("tasklinkr_batch_size", "Deliveries a batched event handler took in one call (one transaction).",
                       ["service", "handler"], buckets=(1, 2, 5, 10, 20, 50, 100, 200))
BATCHES_SPLIT = Counter("tasklinkr_batches_split_total", "Batches whose transaction failed for a reason of a message "
                        "(not a transient one): each of their deliveries was tried again alone.",
                        ["service", "handler", "lane"])
BATCHES_RETRIED = Counter("tasklinkr_batches_retried_total", "Batches whose first try, assuming every event and "
                          "what it brings new, met something stored already (a unique index refused a write) and "
                          "were tried again reading it.", ["service", "handler"])
OUTBOX_OLDEST_PENDING_AGE = Gauge("tasklinkr_outbox_oldest_pending_age_seconds", "Age of the oldest committed event "
                                  "of a lane not yet confirmed by the broker (0 when none is pending).",
                                  ["service", "lane"])
OUTBOX_PUBLISH_FAILURES = Counter("tasklinkr_outbox_publish_failures_total", "Passes of a lane's relay that failed "
                                  "(broker unreachable, a nack, no confirm, an unroutable event); the events stay "
                                  "pending.", ["service", "lane"])

# The gateway: one series per route of the API table (its operation id), never per raw path.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
HTTP_REQUESTS = Counter("tasklinkr_http_requests_total", "HTTP requests the gateway answered, by route and status.",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("tasklinkr_http_request_seconds", "Time the gateway took to answer, by route.",
                         ["route", "method"], buckets=LATENCY_BUCKETS)
RPC_CALLS = Counter("tasklinkr_rpc_calls_total", "RPC calls the gateway made, by outcome (ok, error: the service "
                    "answered with an error, timeout, unavailable).", ["service", "method", "outcome"])
RPC_SECONDS = Histogram("tasklinkr_rpc_call_seconds", "Time an RPC call from the gateway took, by service method.",
                        ["service", "method"], buckets=LATENCY_BUCKETS)


def port_for(service: str, environ: dict | None = None) -> int | None:
    value = str(settings.get("metrics_port", service, environ)).strip().lower()
    if value == "off":
        return None
    if value == "auto":
        return 9101 + settings.SERVICES.index(service)
    return int(value)


def serve(service: str) -> int | None:
    """Start the metrics endpoint of this process; returns its port (None when off)."""
    port = port_for(service)
    if port:
        start_http_server(port, addr=settings.get("metrics_host"))
        log.info("metrics on :%d/metrics", port)
    return port
