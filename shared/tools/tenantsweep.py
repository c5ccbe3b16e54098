"""The sweep: what RabbitMQ's permissions cannot refuse a tenant's or provider's broker user, removed after the fact.

A tenant's user may publish to the inbound exchange, and RabbitMQ checks a binding's destination (and a queue's
dead-letter exchange) with that same *write* permission; it may declare anything named ``<id>.*``, exchanges
included; and RabbitMQ has no per-user queue count. So each pass, through the management API, removes:

- every binding into ``tasklinkr.inbound`` (the platform only binds *from* it: its command queues), and every
  binding into a platform exchange from an exchange of a tenant's or provider's;
- every exchange named ``<id>.*``: such a user needs none (its feed is a queue bound to the feed exchange, its
  commands go to the inbound exchange);
- every ``<id>.*`` queue whose ``x-dead-letter-exchange`` is not one of its own (a platform exchange, the default
  exchange);
- a user's queues beyond ``max_queues``, newest first (newest as this sweep first saw them: RabbitMQ does not say
  when a queue was declared).

Each removal is logged and handed to ``record`` (the gateway's audit trail) with the party it belongs to and why.
Everything the platform declares has a name without such a prefix and is never touched. When the management API
cannot be reached the pass does nothing, and says so once until it can be reached again.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.collection import Collection

from shared.runtime.topology import INBOUND_EXCHANGE
from shared.tools.brokeradmin import BrokerAdmin, BrokerAdminError

log = logging.getLogger(__name__)

OWNER = re.compile(r"^((ten|prv)_[0-9a-f]{32})\.")
DEFAULT_MAX_QUEUES = 20
# When this sweep first saw each tenant or provider queue, in the gateway's database.
SEEN = "tenant_queues_seen"
SWEEP_OPERATION = "tenant-access.sweep"


def owner_of(name: str) -> str | None:
    """The tenant or provider id a queue or exchange name starts with; None for the platform's own."""
    found = OWNER.match(name or "")
    return found.group(1) if found else None


@dataclass(frozen=True)
class Removal:
    kind: str  # "queue", "exchange" or "binding"
    name: str  # a binding: "source -> destination [routing key]"
    owner: str | None
    reason: str
    binding: dict | None = None


def _binding_name(binding: dict) -> str:
    return f"{binding['source']} -> {binding['destination']} [{binding['routing_key']}]"


def binding_removals(bindings: list[dict]) -> list[Removal]:
    found = []
    for binding in bindings:
        if binding["destination_type"] != "exchange":
            continue
        source, destination = binding["source"], binding["destination"]
        if destination == INBOUND_EXCHANGE:
            reason = f"binds {source} into {INBOUND_EXCHANGE}, which only the platform's own queues bind from"
        elif owner_of(source) and not owner_of(destination):
            reason = f"binds the tenant's exchange {source} into the platform exchange {destination}"
        else:
            continue
        owner = owner_of(source) or owner_of(binding["routing_key"])
        found.append(Removal("binding", _binding_name(binding), owner, reason, binding))
    return found


def exchange_removals(exchanges: list[dict]) -> list[Removal]:
    return [Removal("exchange", exchange["name"], owner_of(exchange["name"]),
                    "a tenant's or provider's user may declare queues only, no exchange")
            for exchange in exchanges if owner_of(exchange["name"])]


def dead_letter_removals(queues: list[dict]) -> list[Removal]:
    found = []
    for queue in queues:
        owner = owner_of(queue["name"])
        arguments = queue.get("arguments") or {}
        if owner and "x-dead-letter-exchange" in arguments \
                and owner_of(str(arguments["x-dead-letter-exchange"])) != owner:
            target = arguments["x-dead-letter-exchange"]
            target = f"the exchange {target}" if target else "the default exchange"
            found.append(Removal("queue", queue["name"], owner, f"dead-letters into {target}, not one of its own"))
    return found


def excess_queue_removals(queues: list[dict], first_seen: dict[str, datetime], max_queues: int) -> list[Removal]:
    """Each owner's queues beyond ``max_queues``: the ones first seen last go first (ties: by name)."""
    by_owner: dict[str, list[str]] = defaultdict(list)
    for queue in queues:
        if owner_of(queue["name"]):
            by_owner[owner_of(queue["name"])].append(queue["name"])
    found = []
    for owner, names in by_owner.items():
        newest_first = sorted(names, key=lambda name: (first_seen[name], name), reverse=True)
        for name in newest_first[:max(len(names) - max_queues, 0)]:
            found.append(Removal("queue", name, owner, f"more than {max_queues} queues for one user"))
    return found


def findings(exchanges: list[dict], queues: list[dict], bindings: list[dict], first_seen: dict[str, datetime],
             max_queues: int) -> list[Removal]:
    """What one pass removes, in the order it removes it (pure: the broker's listings in, removals out)."""
    dead_letters = dead_letter_removals(queues)
    doomed = {removal.name for removal in dead_letters}
    kept = [queue for queue in queues if queue["name"] not in doomed]
    return [*binding_removals(bindings), *exchange_removals(exchanges), *dead_letters,
            *excess_queue_removals(kept, first_seen, max_queues)]


def removal_record(removal: Removal, now: datetime) -> dict:
    """The removal as a finished record of the gateway's audit trail (services/gateway/audit.py): the tenant's or
    provider's construct refused (403), by the platform, and why."""
    tenant_id = removal.owner if (removal.owner or "").startswith("ten_") else None
    provider_id = removal.owner if (removal.owner or "").startswith("prv_") else None
    named = {removal.kind: removal.name}
    return {
        "_id": ObjectId(), "at": now, "finished_at": now, "actor": "system:tenant-sweep",
        "principal": {"kind": "system", "role": None, "tenant_id": tenant_id, "provider_id": provider_id},
        "key_id": None, "tenant_id": tenant_id, "operation": SWEEP_OPERATION, "method": "AMQP",
        "path": f"{removal.kind} {removal.name}", "resource_ids": named,
        "resources": sorted({removal.name, *filter(None, [removal.owner])}), "status": 403, "outcome": "failed",
        "error": f"removed by the tenant sweep: {removal.reason}", "correlation_id": "",
    }


class TenantSweep:
    """One pass at a time through ``run``; keeps whether the management API answered the last time, so an
    unreachable API is logged once, not every pass."""

    def __init__(self, admin: BrokerAdmin, max_queues: int = DEFAULT_MAX_QUEUES):
        self.admin = admin
        self.max_queues = max_queues
        self.unreachable = False

    def run(self, seen: Collection, record: Callable[[Removal], None]) -> list[Removal]:
        """One pass: ``seen`` keeps when each queue was first seen; ``record`` puts a removal on the audit trail.
        Returns what it removed; stops (and says so once) where the management API stops answering."""
        removed: list[Removal] = []
        try:
            exchanges, queues, bindings = (self.admin.listing(kind) for kind in ("exchanges", "queues", "bindings"))
            if self.unreachable:
                log.info("tenant sweep: the management API answers again")
                self.unreachable = False
            for removal in findings(exchanges, queues, bindings, self._first_seen(seen, queues), self.max_queues):
                self._remove(removal)
                removed.append(removal)
                log.warning("tenant sweep removed %s %s of %s: %s", removal.kind, removal.name, removal.owner,
                            removal.reason)
                record(removal)
        except BrokerAdminError as exc:
            if not self.unreachable:
                log.warning("tenant sweep: stopped, nothing more is swept while the management API does not "
                            "answer (or refuses the platform's broker user): %s", exc)
            self.unreachable = True
        return removed

    def _first_seen(self, seen: Collection, queues: list[dict]) -> dict[str, datetime]:
        names = [queue["name"] for queue in queues if owner_of(queue["name"])]
        now = datetime.now(UTC)
        if names:
            seen.bulk_write([UpdateOne({"_id": name}, {"$setOnInsert": {"first_seen": now}}, upsert=True)
                             for name in names], ordered=False)
        seen.delete_many({"_id": {"$nin": names}})  # gone: a queue declared again later is new again
        return {row["_id"]: row["first_seen"] for row in seen.find({"_id": {"$in": names}})}

    def _remove(self, removal: Removal) -> None:
        if removal.kind == "binding":
            self.admin.delete_binding(removal.binding)
        else:
            self.admin.delete(f"{removal.kind}s", removal.name)
