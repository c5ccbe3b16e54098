"""The event contracts in contracts-schema/ are well-formed, self-consistent and match the code."""

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from nameko.events import EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from shared.runtime import contracts
from shared.runtime.topology import load_catalog
from shared.tools.runner import runnable_services, service_class

ROOT = contracts.ROOT
EVENT_FILE = re.compile(r"^[a-z_]+\.[a-z_]+\.v[0-9]+\.schema\.json$")
ALL_SCHEMAS = sorted(ROOT.rglob("*.schema.json"))
EVENT_SCHEMAS = [p for p in ALL_SCHEMAS if EVENT_FILE.match(p.name) and "events" in p.parts]
CATALOG = load_catalog()


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", ALL_SCHEMAS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_schema_is_valid_json_schema_2020_12_with_an_id(path):
    schema = _load(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"].startswith("urn:tasklinkr:contracts-schema:")


def test_schema_ids_are_unique():
    ids = [_load(p)["$id"] for p in ALL_SCHEMAS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", EVENT_SCHEMAS, ids=lambda p: p.name)
def test_each_event_schema_accepts_its_examples_and_refuses_its_invalid_examples(path):
    schema = _load(path)
    assert schema["$id"] == f"urn:tasklinkr:contracts-schema:events/{path.parent.name}/{path.name[:-12]}"
    assert schema.get("examples"), "an event schema ships at least one valid example"
    assert len(schema.get("x-invalid-examples", [])) >= 2, "and at least two invalid ones"
    for example in schema["examples"]:
        assert contracts.errors(example) == []
    for invalid in schema["x-invalid-examples"]:
        assert contracts.errors(invalid["event"]), f"should be refused: {invalid['why']}"


def test_the_catalog_and_the_event_schemas_name_the_same_events():
    in_catalog = {(e["producer"], e["type"]) for e in CATALOG["events"]}
    on_disk = {(p.parent.name, p.name[: -len(".schema.json")]) for p in EVENT_SCHEMAS}
    assert in_catalog == on_disk
    for event in CATALOG["events"]:
        assert (ROOT / event["schema"]).is_file()


def entrypoints_of(kind: type):
    """(service name, method name, entrypoint) for every entrypoint of ``kind`` in the runnable services."""
    for name in runnable_services():
        cls = service_class(name)
        for attr in dir(cls):
            for entrypoint in getattr(getattr(cls, attr), ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, kind):
                    yield name, attr, entrypoint


def _subscriptions() -> set[tuple[str, str, str, str]]:
    return {(e.source_service, e.event_type, name, attr) for name, attr, e in entrypoints_of(EventHandler)}


def test_the_catalog_lists_exactly_the_event_handlers_the_services_have():
    declared = {
        (e["producer"], e["type"], c["service"], c["handler"])
        for e in CATALOG["events"]
        for c in e["consumers"]
        if c["service"] in runnable_services()
    }
    assert declared == _subscriptions()


def _variants(document, depth: int = 2):
    """The document itself, then for every value down to ``depth`` levels: the value dropped, and replaced by a
    value of each other JSON type or a malformed date-time."""
    yield document
    if depth == 0:
        return
    others = (None, 1.5, "x", True, [], {}, "2026-13-45T99:00:00Z")
    if isinstance(document, dict):
        for key, value in document.items():
            yield {k: v for k, v in document.items() if k != key}
            for other in others:
                yield {**document, key: other}
            for variant in _variants(value, depth - 1):
                yield {**document, key: variant}
    elif isinstance(document, list) and document:
        for variant in _variants(document[0], depth - 1):
            yield [variant, *document[1:]]


@pytest.mark.parametrize("path", EVENT_SCHEMAS, ids=lambda p: p.name)
def test_the_compiled_check_and_the_reference_implementation_give_the_same_verdicts(path):
    """Consumers check every event with the compiled validator; it must accept and refuse exactly what the
    reference implementation of JSON Schema does, on the examples and on every one-change variant of them (the
    invalid examples' verdicts are held by the test above)."""
    schema = _load(path)
    checked = 0
    for document in schema["examples"]:
        for variant in _variants(document):
            assert bool(contracts.errors(variant)) == bool(contracts.reference_errors(variant)), variant
            checked += 1
    assert checked > 50
