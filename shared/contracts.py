"""Event contracts: the JSON Schemas in ``contracts-schema/`` and a validator over them.

Every schema has an ``$id`` under ``urn:tasklinkr:contracts-schema:``; they reference each other by ``$id``
(``common.schema.json`` holds shared definitions, ``envelope.schema.json`` the CloudEvents envelope).
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from shared.envelope import routing_key_of

ROOT = Path(__file__).resolve().parent.parent / "contracts-schema"


@lru_cache(maxsize=1)
def registry() -> Registry:
    resources = []
    for path in sorted(ROOT.rglob("*.schema.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def event_schema_path(producer: str, routing_key: str) -> Path:
    return ROOT / "events" / producer / f"{routing_key}.schema.json"


@cache
def validator_for(producer: str, routing_key: str) -> Draft202012Validator:
    schema = json.loads(event_schema_path(producer, routing_key).read_text())
    return Draft202012Validator(schema, registry=registry(), format_checker=FormatChecker())


def errors(envelope: dict) -> list[str]:
    """Why ``envelope`` breaks its contract (empty when it is valid)."""
    try:
        producer = envelope["source"].rsplit("/", 1)[-1]
        routing_key = routing_key_of(envelope)
        validator = validator_for(producer, routing_key)
    except (KeyError, IndexError, AttributeError, TypeError):
        return ["not an event envelope with a known source and type"]
    except FileNotFoundError:
        return [f"no contract for {envelope.get('type')!r}"]
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(envelope), key=lambda e: list(e.absolute_path))
    ]
