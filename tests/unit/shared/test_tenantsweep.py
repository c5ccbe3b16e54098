"""The sweep's rules on the management API's listings (shared/tools/tenantsweep.py), without a broker."""

from datetime import UTC, datetime, timedelta

from shared.runtime.topology import FEED_EXCHANGE, INBOUND_EXCHANGE
from shared.tools.tenantsweep import findings, owner_of

TENANT = "ten_" + "a" * 32
PROVIDER = "prv_" + "b" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def binding(source, destination, key="", kind="exchange"):
    return {"source": source, "destination": destination, "destination_type": kind, "routing_key": key,
            "properties_key": key or "~"}


def queue(name, **arguments):
    return {"name": name, "arguments": arguments}


def test_the_platforms_own_exchanges_queues_and_bindings_are_never_found():
    platform = [binding(INBOUND_EXCHANGE, "cmd-posting.create.v1--gateway.x", "*.posting.create.v1", "queue"),
                binding("postings.events", "evt-postings-posting.published.v1--matching.y", kind="queue"),
                binding(FEED_EXCHANGE, f"{TENANT}.feed", f"{TENANT}.#", "queue")]
    exchanges = [{"name": name} for name in ("", "amq.topic", FEED_EXCHANGE, INBOUND_EXCHANGE, "postings.events")]
    queues = [queue("dlq.gateway"), queue("cmd-x", **{"x-dead-letter-exchange": ""}), queue(f"{TENANT}.feed")]
    assert findings(exchanges, queues, platform, {f"{TENANT}.feed": T0}, 20) == []


def test_dead_lettering_counts_as_harmful_unless_into_an_exchange_of_the_queues_own_owner():
    queues = [queue(f"{TENANT}.a", **{"x-dead-letter-exchange": ""}),
              queue(f"{TENANT}.b", **{"x-dead-letter-exchange": f"{PROVIDER}.x"}),
              queue(f"{TENANT}.c", **{"x-dead-letter-exchange": f"{TENANT}.own"})]
    found = findings([], queues, [], {q["name"]: T0 for q in queues}, 20)
    assert [(r.name, r.reason) for r in found] == [
        (f"{TENANT}.a", "dead-letters into the default exchange, not one of its own"),
        (f"{TENANT}.b", f"dead-letters into the exchange {PROVIDER}.x, not one of its own")]


def test_queues_beyond_the_limit_go_newest_first_counted_per_owner_and_after_the_dead_lettering_ones():
    names = [f"{TENANT}.q{n}" for n in range(4)] + [f"{PROVIDER}.q{n}" for n in range(2)]
    seen = {name: T0 + timedelta(seconds=n) for n, name in enumerate(names)}
    queues = [queue(name) for name in names] + [queue(f"{TENANT}.z", **{"x-dead-letter-exchange": INBOUND_EXCHANGE})]
    seen[f"{TENANT}.z"] = T0
    found = findings([], queues, [], seen, 2)
    assert [r.name for r in found] == [f"{TENANT}.z", f"{TENANT}.q3", f"{TENANT}.q2"]
    assert {r.owner for r in found} == {TENANT}


def test_bindings_into_the_inbound_exchange_name_the_party_by_source_or_key():
    found = findings([], [], [binding(FEED_EXCHANGE, INBOUND_EXCHANGE, f"{TENANT}.#"),
                              binding(f"{PROVIDER}.relay", "postings.events", "#")], {}, 20)
    assert [(r.kind, r.owner) for r in found] == [("binding", TENANT), ("binding", PROVIDER)]
    assert owner_of("tasklinkr.inbound") is None
