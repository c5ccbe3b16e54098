"""Event contracts: the JSON Schemas in ``contracts-schema/`` and a validator over them.

Every schema has an ``$id`` under ``urn:tasklinkr:contracts-schema:``; they reference each other by ``$id``
(``common.schema.json`` holds shared definitions, ``envelope.schema.json`` the CloudEvents envelope).

Every consumed event is checked, so the check is compiled (``jsonschema_rs``: a few microseconds per envelope
instead of about a millisecond); ``reference_errors`` runs the same schemas through the reference implementation
(``jsonschema``), and the contract tests hold both to the same verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from shared.runtime.envelope import routing_key_of

ROOT = Path(__file__).resolve().parents[2] / "contracts-schema"


@lru_cache(maxsize=1)
def _schemas() -> tuple[tuple[str, dict], ...]:
    return tuple((schema["$id"], schema) for schema in
                 (json.loads(path.read_text()) for path in sorted(ROOT.rglob("*.schema.json"))))


@lru_cache(maxsize=1)
def registry() -> Registry:
    """Every schema by its ``$id``, for the reference implementation."""
    return Registry().with_resources([(uri, Resource.from_contents(schema)) for uri, schema in _schemas()])


@lru_cache(maxsize=1)
def compiled_registry() -> jsonschema_rs.Registry:
    """Every schema by its ``$id``, for the compiled validators."""
    return jsonschema_rs.Registry(list(_schemas()))


def event_schema_path(producer: str, routing_key: str) -> Path:
    return ROOT / "events" / producer / f"{routing_key}.schema.json"


@cache
def validator_for(producer: str, routing_key: str) -> jsonschema_rs.Validator:
    schema = json.loads(event_schema_path(producer, routing_key).read_text())
    return jsonschema_rs.validator_for(schema, registry=compiled_registry(), validate_formats=True)


@cache
def reference_validator_for(producer: str, routing_key: str) -> Draft202012Validator:
    schema = json.loads(event_schema_path(producer, routing_key).read_text())
    return Draft202012Validator(schema, registry=registry(), format_checker=FormatChecker())


def _located(path, message: str) -> str:
    return f"{'/'.join(map(str, path)) or '(root)'}: {message}"


def errors(envelope: dict) -> list[str]:
    """Why ``envelope`` breaks its contract (empty when it is valid)."""
    return _verdict(envelope, validator_for, _compiled_errors)


def reference_errors(envelope: dict) -> list[str]:
    """``errors`` by the reference implementation: the contract tests compare the two."""
    return _verdict(envelope, reference_validator_for, _reference_errors)


def _verdict(envelope: dict, validator_of: Callable, errors_of: Callable) -> list[str]:
    try:
        validator = validator_of(*_contract_of(envelope))
    except (KeyError, IndexError, AttributeError, TypeError):
        return ["not an event envelope with a known source and type"]
    except FileNotFoundError:
        return [f"no contract for {envelope.get('type')!r}"]
    return errors_of(validator, envelope)


def _compiled_errors(validator: jsonschema_rs.Validator, envelope: dict) -> list[str]:
    if validator.is_valid(envelope):
        return []
    return [_located(e.instance_path, e.message)
            for e in sorted(validator.iter_errors(envelope), key=lambda e: list(map(str, e.instance_path)))]


def _reference_errors(validator: Draft202012Validator, envelope: dict) -> list[str]:
    return [_located(e.absolute_path, e.message)
            for e in sorted(validator.iter_errors(envelope), key=lambda e: list(e.absolute_path))]


def _contract_of(envelope: dict) -> tuple[str, str]:
    """(producer, routing key) of an envelope, from its ``source`` and ``type``."""
    return envelope["source"].rsplit("/", 1)[-1], routing_key_of(envelope)
