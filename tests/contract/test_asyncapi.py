"""contracts-schema/asyncapi.yaml is a valid AsyncAPI 3.0.0 document generated from the catalog, never stale."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jsonschema
import pytest
import yaml

from shared.runtime.topology import load_catalog
from tests.contract.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts-schema"
ASYNCAPI = CONTRACTS / "asyncapi.yaml"
# Reference schemas live beside the repository (../shared/schemas), here and in CI alike.
ASYNCAPI_SCHEMA = REPO.parent / "shared" / "schemas" / "asyncapi-3.0.0.json"
CATALOG_EVENTS = load_catalog()["events"]
INTERNAL_EVENTS = [e for e in CATALOG_EVENTS if not e.get("feed_only")]
COMMANDS = [c for c in load_catalog()["commands"] if c["type"] is not None]


def load_generator():
    return load_script(CONTRACTS / "gen_asyncapi.py", "gen_asyncapi")


@pytest.fixture(scope="module")
def generator():
    return load_generator()


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(ASYNCAPI.read_text())


@pytest.fixture(scope="module")
def asyncapi_schema() -> dict:
    if not ASYNCAPI_SCHEMA.is_file():
        pytest.skip(f"asyncapi-3.0.0.json not found at {ASYNCAPI_SCHEMA} (expected beside the repository)")
    return json.loads(ASYNCAPI_SCHEMA.read_text())


def schema_errors(schema: dict, instance: dict) -> list[str]:
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(instance), key=lambda e: list(e.path))
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_committed_document_equals_the_generator_output(generator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", generator.MissingSchemaWarning)
        expected = generator.render()
    assert ASYNCAPI.read_text() == expected, (
        "contracts-schema/asyncapi.yaml is stale: run python contracts-schema/gen_asyncapi.py"
    )


def test_document_validates_against_asyncapi_3(document, asyncapi_schema):
    assert document["asyncapi"] == "3.0.0"
    assert not schema_errors(asyncapi_schema, document)


def test_document_for_the_whole_catalog_validates_against_asyncapi_3(generator, asyncapi_schema):
    """Also valid once every schema file exists, whatever has been written so far."""
    full = generator.document(load_catalog(), schema_exists=lambda path: True)
    assert not schema_errors(asyncapi_schema, full)
    assert len(full["components"]["messages"]) == len(CATALOG_EVENTS) + len(COMMANDS)


@pytest.mark.parametrize("event", INTERNAL_EVENTS, ids=lambda event: event["type"])
def test_every_catalog_event_has_a_channel_and_a_message(document, event):
    if not (CONTRACTS / event["schema"]).is_file():
        pytest.skip(f"{event['schema']} is not written yet (the generator leaves the event out until it is)")
    producer, routing_key = event["producer"], event["type"]
    channel = document["channels"][f"{producer}.events.{routing_key}"]
    assert channel["address"] == routing_key
    amqp = channel["bindings"]["amqp"]
    assert amqp["is"] == "routingKey"
    assert amqp["exchange"] == {
        "name": f"{producer}.events", "type": "topic", "durable": True, "autoDelete": False, "vhost": "/",
    }
    message = document["components"]["messages"][routing_key]
    assert message["payload"] == {"$ref": f"./{event['schema']}"}
    assert channel["messages"][routing_key] == {"$ref": f"#/components/messages/{routing_key}"}


@pytest.mark.parametrize("event", INTERNAL_EVENTS, ids=lambda event: event["type"])
def test_producer_sends_and_every_consumer_receives(document, event):
    if not (CONTRACTS / event["schema"]).is_file():
        pytest.skip(f"{event['schema']} is not written yet")
    producer, routing_key = event["producer"], event["type"]
    channel_ref = {"$ref": f"#/channels/{producer}.events.{routing_key}"}
    send = document["operations"][f"{producer}.send.{routing_key}"]
    assert send["action"] == "send" and send["channel"] == channel_ref
    for consumer in event.get("consumers", []):
        receive = document["operations"][f"{consumer['service']}.{consumer['handler']}"]
        assert receive["action"] == "receive" and receive["channel"] == channel_ref
        single = "--single" if consumer.get("single_active") else ""
        assert receive["x-amqp-queues"] == {
            lane: f"evt-{producer}-{routing_key}--{consumer['service']}.{consumer['handler']}{single}--{lane}"
            for lane in ("enterprise", "smb")}


def test_every_reference_inside_the_document_resolves(document):
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        if ref.startswith("#/"):
            target = document
            for part in ref[2:].split("/"):
                target = target[part]
        else:
            assert (CONTRACTS / ref).is_file(), f"{ref} does not exist"


def test_every_referenced_event_schema_file_is_json(document):
    for message in document["components"]["messages"].values():
        path = CONTRACTS / message["payload"]["$ref"]
        assert json.loads(path.read_text())["$schema"]


def test_an_event_without_its_schema_file_is_left_out_with_a_warning(generator):
    catalog = {"events": [{**CATALOG_EVENTS[0], "type": "ghost.appeared.v1", "schema": "events/x/none.json"}]}
    with pytest.warns(generator.MissingSchemaWarning, match="ghost.appeared.v1"):
        document = generator.document(catalog)
    assert document["components"]["messages"] == {}
    assert list(document["channels"]) == ["tasklinkr.feed"] and document["channels"]["tasklinkr.feed"]["messages"] == {}


def test_the_feed_carries_every_event_with_a_tenant_and_the_command_outcomes(document):
    feed = document["channels"]["tasklinkr.feed"]
    assert feed["address"] == "{tenantId}.{eventType}"
    assert feed["bindings"]["amqp"]["exchange"]["name"] == "tasklinkr.feed"
    assert {"posting.published.v1", "command.accepted.v1", "command.rejected.v1"} <= set(feed["messages"])
    assert "provider.registered.v1" not in feed["messages"]  # a provider's profile concerns no tenant
    assert document["operations"]["tenant.receive.feed"]["action"] == "receive"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command["type"])
def test_every_command_has_a_channel_the_tenant_sends_on_and_its_handler_receives_from(document, command):
    channel = document["channels"][f"tasklinkr.inbound.{command['type']}"]
    assert channel["address"] == "{tenantId}." + command["type"]
    assert channel["bindings"]["amqp"]["exchange"]["name"] == "tasklinkr.inbound"
    assert document["components"]["messages"][f"command.{command['type']}"]["payload"] == {
        "$ref": f"./{command['schema']}"}
    assert document["operations"][f"tenant.send.{command['type']}"]["action"] == "send"
    receive = document["operations"][f"{command['service']}.{command['handler']}"]
    assert receive["action"] == "receive"
    assert receive["x-amqp-queues"] == {
        lane: f"cmd-{command['type']}--{command['service']}.{command['handler']}--{lane}"
        for lane in ("enterprise", "smb")}
