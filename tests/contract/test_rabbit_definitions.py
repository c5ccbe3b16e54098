"""deploy/rabbitmq/definitions.json (what RabbitMQ loads at boot in compose) is the catalog's topology."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import re
from pathlib import Path

import pytest

from shared.runtime.messaging import queue_bindings
from shared.runtime.topology import consumed_producers, declarations, exchange_bindings, load_catalog
from shared.vocabulary.terms import LANES
from tests.contract.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
DEFINITIONS = REPO / "deploy" / "rabbitmq" / "definitions.json"


def load_generator():
    return load_script(REPO / "deploy" / "gen_definitions.py", "gen_definitions")


@pytest.fixture(scope="module")
def generator():
    return load_generator()


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(DEFINITIONS.read_text())


@pytest.fixture(scope="module")
def topology(generator):
    return generator._topology(load_catalog())


def test_committed_definitions_equal_the_generator_output(generator):
    assert DEFINITIONS.read_text() == generator.render(), (
        "deploy/rabbitmq/definitions.json is stale: run python deploy/gen_definitions.py"
    )


def test_generator_reads_the_topology_compose_containers_see(generator, monkeypatch):
    """A developer's own topology settings must not leak into the committed file."""
    monkeypatch.setenv("TASKLINKR_RETRY_DELAYS", "7")
    assert generator.render() == DEFINITIONS.read_text()


def test_every_exchange_is_declared_as_topology_declares_it(committed, topology):
    exchanges, _ = topology
    expected = {
        e.name: {"type": e.type, "durable": e.durable, "auto_delete": e.auto_delete, "arguments": e.arguments or {}}
        for e in exchanges
    }
    actual = {
        e["name"]: {k: e[k] for k in ("type", "durable", "auto_delete", "arguments")} for e in committed["exchanges"]
    }
    assert actual == expected
    assert all(e["durable"] for e in committed["exchanges"])
    # Topic exchanges, but for the fanout that catches commands the inbound exchange routes nowhere and the
    # headers exchanges that route each producer's events by lane.
    assert {e["name"] for e in committed["exchanges"] if e["type"] not in ("topic", "headers")} == {
        "tasklinkr.inbound.unrouted"}
    assert {e["name"] for e in committed["exchanges"] if e["type"] == "headers"} == {
        f"{producer}.events.lanes" for producer in consumed_producers(load_catalog())}
    assert {e["vhost"] for e in committed["exchanges"]} == {"/"}


def test_every_queue_is_declared_as_topology_declares_it(committed, topology):
    _, queues = topology
    expected = {
        q.name: {"durable": q.durable, "auto_delete": q.auto_delete, "arguments": q.queue_arguments or {}}
        for q in queues
    }
    actual = {q["name"]: {k: q[k] for k in ("durable", "auto_delete", "arguments")} for q in committed["queues"]}
    assert actual == expected
    assert all(q["durable"] for q in committed["queues"])


def test_every_retry_queue_delays_a_consumer_queue_and_is_not_a_retry_of_a_retry(committed):
    names = {q["name"] for q in committed["queues"]}
    retries = {name for name in names if re.search(r"\.retry-[0-9]+ms$", name)}
    assert retries
    for name in retries:
        delayed = re.sub(r"\.retry-[0-9]+ms$", "", name)
        assert delayed in names and delayed not in retries, name


def test_every_consumer_queue_is_bound_as_the_topology_binds_it(committed, topology):
    _, queues = topology
    expected = sorted((source, q.name, key) for q in queues for source, key, _ in queue_bindings(q))
    expected += sorted((source, destination, key) for source, destination, key in exchange_bindings(load_catalog()))
    actual = sorted((b["source"], b["destination"], b["routing_key"])
                    for b in committed["bindings"] if b["destination_type"] == "queue")
    actual += sorted((b["source"], b["destination"], b["routing_key"])
                     for b in committed["bindings"] if b["destination_type"] == "exchange")
    assert actual == expected


def test_every_catalog_consumer_has_a_queue_per_lane_bound_by_type_and_lane(committed):
    bindings = {(b["source"], b["destination"], json.dumps(b["arguments"], sort_keys=True))
                for b in committed["bindings"]}
    forwarded = {(b["source"], b["destination"], b["routing_key"]) for b in committed["bindings"]
                 if b["destination_type"] == "exchange"}
    for event in load_catalog()["events"]:
        producer = event["producer"]
        for consumer in event.get("consumers", []):
            assert (f"{producer}.events", f"{producer}.events.lanes", "#") in forwarded
            base = f"evt-{producer}-{event['type']}--{consumer['service']}.{consumer['handler']}"
            if consumer.get("single_active"):
                base += "--single"
            for lane in LANES:
                queue = f"{base}--{lane}"
                match = {"x-match": "all", "ce-type": f"tasklinkr.{producer}.{event['type']}"}
                if not (event.get("every_lane") or consumer.get("every_lane")):  # the event's, or this consumer's
                    match["lane"] = lane
                assert (f"{producer}.events.lanes", queue, json.dumps(match, sort_keys=True)) in bindings
            # What carries no lane is handled in the default lane, never dropped.
            default = f"{base}--smb"
            assert (f"{producer}.events.unlaned", default, "{}") in bindings


def test_single_active_consumers_queues_deliver_to_one_consumer_at_a_time(committed):
    """Matching's provider and contract queues: one active re-ranker per lane (``x-single-active-consumer``)."""
    queues = {q["name"]: q["arguments"] for q in committed["queues"]}
    marked = [(event, consumer) for event in load_catalog()["events"] for consumer in event.get("consumers", [])
              if consumer.get("single_active")]
    assert {consumer["handler"] for _, consumer in marked} >= {
        "on_provider_registered", "on_provider_updated", "on_provider_availability_changed", "on_provider_verified"}
    for event, consumer in marked:
        base = f"evt-{event['producer']}-{event['type']}--{consumer['service']}.{consumer['handler']}--single"
        for lane in LANES:
            name = f"{base}--{lane}"
            assert queues[name]["x-single-active-consumer"] is True
            assert queues[name]["x-queue-type"] == "quorum"
    assert not any(arguments.get("x-single-active-consumer") for name, arguments in queues.items()
                   if "--single--" not in name)


def test_the_definitions_match_declarations_of_the_catalog(committed):
    """The same check, straight from shared.runtime.topology.declarations(load_catalog()) with the default settings."""
    exchanges, queues = declarations(load_catalog(), **_default_settings())
    assert [e["name"] for e in committed["exchanges"]] == [e.name for e in exchanges]
    assert [q["name"] for q in committed["queues"]] == [q.name for q in queues]


def _default_settings() -> dict:
    if "environ" in inspect.signature(declarations).parameters:
        return {"environ": {"TASKLINKR_CONFIG_FILE": "/nonexistent/tasklinkr.yaml"}}
    return {}


def test_the_committed_definitions_carry_no_user_and_no_password(committed):
    """No default credentials: a deployment adds its own users (gen_secrets.py), or the broker has none."""
    assert committed["vhosts"] == [{"name": "/"}]
    assert committed["users"] == [] and committed["permissions"] == []


PASSWORDS = {user: f"pw-{user}" for user in load_generator().broker_users(load_catalog())}


def test_a_deployment_gets_one_user_per_service_and_an_operator_each_with_a_randomly_salted_hash(generator):
    users = generator.definitions(load_catalog(), PASSWORDS)["users"]
    assert [u["name"] for u in users] == [*(f"tasklinkr-{s}" for s in generator.SERVICES), "tasklinkr-operator"]
    for user in users:
        raw = base64.b64decode(user["password_hash"])
        assert raw[4:] == hashlib.sha256(raw[:4] + PASSWORDS[user["name"]].encode()).digest()
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert {u["name"]: u["tags"] for u in users if u["tags"]} == {"tasklinkr-operator": ["administrator"]}
    again = generator.definitions(load_catalog(), PASSWORDS)["users"]
    assert all(a["password_hash"] != b["password_hash"] for a, b in zip(users, again, strict=True)), "random salt"


def test_a_user_without_a_password_is_refused(generator):
    with pytest.raises(ValueError, match="tasklinkr-billing"):
        generator.definitions(load_catalog(), {k: v for k, v in PASSWORDS.items() if k != "tasklinkr-billing"})


def _allowed(permissions: dict, kind: str, name: str) -> bool:
    import re

    return re.fullmatch(permissions[kind], name) is not None


def test_each_service_may_use_exactly_its_own_queues_of_the_topology(generator):
    catalog = load_catalog()
    _, queues = declarations(catalog, **_default_settings())
    for service in generator.SERVICES:
        permissions = generator.service_permissions(catalog, service)
        for queue in queues:
            own = f"--{service}." in queue.name or queue.name == f"dlq.{service}"
            assert _allowed(permissions, "configure", queue.name) == own, (service, queue.name)
            consumed = own and not queue.name.startswith("dlq.")
            assert _allowed(permissions, "read", queue.name) == consumed, (service, queue.name)
        assert all(_allowed(permissions, "read", f"rpc-{service}--{lane}") for lane in ("smb", "enterprise"))
        assert _allowed(permissions, "write", "amq.default")
        assert _allowed(permissions, "configure", f"rpc.reply-{service}-0b6a4c2e-4f1d-4c9e-9d3b-1a2b3c4d5e6f")
        others = [other for other in generator.SERVICES if other != service]
        for other in others:
            assert not _allowed(permissions, "read", f"rpc-{other}--smb")
            assert not _allowed(permissions, "write", f"{other}.events"), "only its own events are published"
            assert not _allowed(permissions, "read", f"rpc.reply-{other}-x")


def test_a_service_reads_the_exchanges_of_exactly_the_services_it_consumes_from(generator):
    catalog = load_catalog()
    permissions = generator.service_permissions(catalog, "contracting")
    sources = {e["producer"] for e in catalog["events"] for c in e.get("consumers", [])
               if c["service"] == "contracting"}
    for producer in {e["producer"] for e in catalog["events"]}:
        assert _allowed(permissions, "read", f"{producer}.events") == (producer in sources), producer


def test_check_mode_reports_a_stale_file(generator, tmp_path):
    stale = tmp_path / "definitions.json"
    stale.write_text("{}\n")
    assert generator.main(["--check", "--output", str(stale)]) == 1
    assert generator.main(["--output", str(stale)]) == 0
    assert generator.main(["--check", "--output", str(stale)]) == 0
