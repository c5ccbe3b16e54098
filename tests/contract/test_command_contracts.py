"""The inbound command contracts in contracts-schema/commands/ are well-formed and match the handlers."""

import json

import pytest

from shared.runtime import contracts
from shared.runtime.commands import CommandHandler, command_errors
from shared.runtime.topology import load_catalog
from tests.contract.test_event_contracts import entrypoints_of

COMMANDS = contracts.ROOT / "commands"
COMMAND_SCHEMAS = sorted(p for p in COMMANDS.glob("*.v*.schema.json"))
CATALOG = load_catalog()


@pytest.mark.parametrize("path", COMMAND_SCHEMAS, ids=lambda p: p.name)
def test_each_command_schema_accepts_its_examples_and_refuses_its_invalid_examples(path):
    schema = json.loads(path.read_text())
    command_type = path.name[: -len(".schema.json")]
    assert schema["$id"] == f"urn:tasklinkr:contracts-schema:commands/{command_type}"
    assert schema.get("examples"), "a command schema ships at least one valid example"
    assert len(schema.get("x-invalid-examples", [])) >= 2, "and at least two invalid ones"
    for example in schema["examples"]:
        assert command_errors(example, command_type) == {}
    for invalid in schema["x-invalid-examples"]:
        assert command_errors(invalid["command"], command_type), f"should be refused: {invalid['why']}"


def test_the_catalog_and_the_command_schemas_name_the_same_commands():
    in_catalog = {c["type"] for c in CATALOG["commands"] if c["type"] is not None}
    assert in_catalog == {p.name[: -len(".schema.json")] for p in COMMAND_SCHEMAS}
    for handler in CATALOG["commands"]:
        assert handler["schema"] is None or (contracts.ROOT / handler["schema"]).is_file()


def test_the_catalog_lists_exactly_the_command_handlers_the_services_have():
    found = {(e.command_type, name, attr) for name, attr, e in entrypoints_of(CommandHandler)}
    assert {(c["type"], c["service"], c["handler"]) for c in CATALOG["commands"]} == found


def test_every_feed_only_event_is_an_outcome_with_a_tenant():
    feed_only = [e for e in CATALOG["events"] if e.get("feed_only")]
    assert {e["type"] for e in feed_only} == {"command.accepted.v1", "command.rejected.v1"}
    assert all(not e["consumers"] for e in feed_only)
