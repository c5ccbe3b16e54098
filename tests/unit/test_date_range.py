"""Every date and time a route or an inbound command carries is checked against the platform's one range
(``shared.vocabulary.fields``): 9999-12-20 once reached contracting and overflowed there, 1900-01-01 made a
contract its own API refuses."""

import importlib
import inspect

import pytest
from marshmallow import Schema, ValidationError, fields

from services.gateway.entrypoints import shared_instance
from services.gateway.routes import ROUTES
from shared.vocabulary.fields import FIRST_YEAR, LAST_YEAR, BoundedDate, BoundedDateTime, WireDate, check_in_range

DATE_KINDS = (fields.Date, fields.DateTime)
BOUNDED = (BoundedDate, BoundedDateTime, WireDate)
EDGE_SCHEMA_MODULES = [f"services.{name}.schemas" for name in
                       ("gateway", "postings", "providers", "contracting", "billing", "matching")]
OUTSIDE = {"date": ["9999-12-20", "1900-01-01", "0001-01-01"],
           "date-time": ["9999-12-31T23:00:00Z", "1900-01-01T00:00:00Z", "9999-12-31T23:30:00-05:00"]}


def _leaves(schema: Schema, path: tuple = ()):
    """Every field of a schema, nested schemas and list items included, with the path of keys that reaches it."""
    for name, field in schema.fields.items():
        key = field.data_key or name
        while isinstance(field, fields.List):
            field = field.inner
        if isinstance(field, fields.Nested):
            yield from _leaves(field.schema, (*path, key))
        else:
            yield (*path, key), field


def _is_date(field) -> str | None:
    if isinstance(field, fields.Date) or (field.metadata or {}).get("format") == "date":
        return "date"
    if isinstance(field, fields.DateTime) or (field.metadata or {}).get("format") == "date-time":
        return "date-time"
    return None


def _edge_schemas():
    for module_name in EDGE_SCHEMA_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Schema) and cls.__module__ == module_name:
                yield cls


def test_no_schema_at_any_edge_has_a_date_or_time_field_outside_the_shared_range():
    unbounded = [f"{cls.__module__}.{cls.__name__}: {'.'.join(path)}"
                 for cls in _edge_schemas() for path, field in _leaves(cls())
                 if (isinstance(field, DATE_KINDS) or _is_date(field)) and not isinstance(field, BOUNDED)]
    assert unbounded == []


def _request_date_fields():
    for route in ROUTES:
        for schema in (route.request, route.query):
            if schema is None:
                continue
            for path, field in _leaves(shared_instance(schema)):
                if _is_date(field):
                    yield route, schema, path, _is_date(field)


def _body_at(path: tuple, value: str):
    body = value
    for key in reversed(path):
        body = {key: body}
    return body


def _messages_at(messages, path: tuple):
    for key in path:
        if isinstance(messages, dict) and key in messages:
            messages = messages[key]
        elif isinstance(messages, dict) and 0 in messages:  # a list item
            messages = messages[0].get(key) if isinstance(messages[0], dict) else None
        else:
            return None
    return messages


REQUEST_DATE_FIELDS = list(_request_date_fields())


def test_the_routes_carry_dates_and_times_to_check():
    kinds = {kind for *_, kind in REQUEST_DATE_FIELDS}
    assert kinds == {"date", "date-time"} and len(REQUEST_DATE_FIELDS) >= 10


@pytest.mark.parametrize(("route", "schema", "path", "kind"), REQUEST_DATE_FIELDS,
                         ids=[f"{r.operation}:{'.'.join(p)}" for r, _, p, _ in REQUEST_DATE_FIELDS])
def test_every_date_and_time_a_route_accepts_is_refused_outside_the_range(route, schema, path, kind):
    for outside in OUTSIDE[kind]:
        body = _body_at(path, outside)
        # A list item sits at index 0.
        body = _listify(shared_instance(schema), body)
        with pytest.raises(ValidationError) as refused:
            shared_instance(schema).load(body)
        assert _messages_at(refused.value.messages, path) == [f"Between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31."]


def _listify(schema: Schema, body: dict) -> dict:
    """``body`` with a one-item list wherever the schema has a list of nested objects."""
    out = {}
    for key, value in body.items():
        field = next((f for n, f in schema.fields.items() if (f.data_key or n) == key), None)
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested) and isinstance(value, dict):
            value = _listify(inner.schema, value)
        out[key] = [value] if isinstance(field, fields.List) else value
    return out


def test_the_range_is_the_years_1970_to_2999():
    from datetime import date

    assert check_in_range(date(1970, 1, 1)) and check_in_range(date(2999, 12, 31))
    for outside in (date(1969, 12, 31), date(3000, 1, 1)):
        with pytest.raises(ValidationError):
            check_in_range(outside)
