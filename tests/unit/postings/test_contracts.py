"""The postings event contracts: each schema's examples pass and its invalid examples fail."""

import json

import pytest

from shared.runtime import contracts

SCHEMAS = sorted((contracts.ROOT / "events" / "postings").glob("*.v1.schema.json"))


def test_every_published_event_type_has_a_contract():
    from services.postings import events

    assert sorted(path.name.removesuffix(".schema.json") for path in SCHEMAS) == sorted(events.PUBLISHES)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda path: path.name)
def test_the_examples_of_a_contract_are_valid(path):
    schema = json.loads(path.read_text())
    assert schema["examples"]
    for example in schema["examples"]:
        assert contracts.errors(example) == []


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda path: path.name)
def test_the_invalid_examples_of_a_contract_are_refused(path):
    schema = json.loads(path.read_text())
    assert len(schema["x-invalid-examples"]) >= 2
    for invalid in schema["x-invalid-examples"]:
        assert contracts.errors(invalid["event"]) != [], invalid["why"]
