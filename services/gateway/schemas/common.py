"""The pieces every group's schemas build on: the vocabulary lists, the field helpers, the strict base
schema and its cross-field rules (``OneOrBatch``, ``ByKind``, ``DependentRequired``, ``NotEmpty``, ``AnyOf``), the error
answer and the paging query."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from shared.vocabulary.fields import DECIMAL_PATTERN, BoundedDateTime, Name, WireDate, parse_decimal
from shared.vocabulary.terms import Lane, Model, ProviderKind

MODELS = [m.value for m in Model]
KINDS = [k.value for k in ProviderKind]
SEGMENTS = [lane.value for lane in Lane]
AVAILABILITY = ["available", "limited", "unavailable"]
POSTING_STATUSES = ["draft", "open", "awarded", "cancelled"]
INVITATION_STATUSES = ["pending", "accepted", "declined", "closed"]
PROPOSAL_STATUSES = ["awaiting_client", "awaiting_provider", "agreed", "awarded", "closed"]
ENGAGEMENTS = ["hourly", "fixed", "retainer", "per_unit"]
SHORING = ["any", "onshore", "nearshore", "offshore"]
COVERAGE = ["business_hours", "extended", "24x7"]
SLA_DIRECTIONS = ["at_most", "at_least"]
SLA_WINDOWS = ["daily", "weekly", "monthly"]

MAX_PAGE = 100
# A firm's delivery centre id, as the providers service assigns and accepts it.
CENTRE_ID_PATTERN = r"^dc_[a-z0-9]{1,60}$"


def _text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


# Free text that says something: the services strip it, then want one character at least.
CONTENT_PATTERN = r"^[\s\S]*\S[\s\S]*$"


def _content(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=max_length),
                                   validate.Regexp(CONTENT_PATTERN, error="Say something (not only spaces).")],
                         **kwargs)


def _name(max_length: int, **kwargs) -> fields.String:
    """A name or title (``shared.vocabulary.fields.Name``): one line, no control or bidi formatting characters."""
    return Name(validate=validate.Length(min=1, max=max_length), **kwargs)


def _distinct(values: list) -> None:
    if len(values) != len(set(values)):
        raise ValidationError("Each value may appear only once.")


def _set_of(inner: fields.Field, min_items: int = 0, max_items: int | None = None, **kwargs) -> fields.List:
    """A list whose items are distinct (``uniqueItems``), as the services want their lists of names and codes."""
    return fields.List(inner, validate=[validate.Length(min=min_items, max=max_items), _distinct],
                       metadata={"uniqueItems": True, **kwargs.pop("metadata", {})}, **kwargs)


def _one_of(choices: list[str], **kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def _timestamp(**kwargs) -> fields.String:
    """An RFC 3339 time within the platform's range (``shared.vocabulary.fields``); sent on in UTC."""
    return BoundedDateTime(**kwargs)


def _date(**kwargs) -> fields.String:
    """An ISO date within the platform's range (``shared.vocabulary.fields``)."""
    return WireDate(**kwargs)


class DecimalString(fields.String):
    """A decimal number sent as a string (``"99.5"``): like money, never a float, so nothing is rounded."""

    def __init__(self, *args, **kwargs):
        kwargs["metadata"] = {"pattern": DECIMAL_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return format(parse_decimal(super()._deserialize(value, attr, data, **kwargs)), "f")


class Strict(Schema):
    """Unknown fields are an error: a misspelt field silently ignored is a bug the client never sees.

    In a JSON body a whole number must be a JSON integer and a flag a JSON boolean, as the services require: 37.5
    hours a week is refused, not cut to 37, and "yes" is not true. Query strings are text, so query schemas
    (``json_types = False``) keep marshmallow's parsing of "7" and "true".
    """

    json_types = True

    class Meta:
        unknown = RAISE

    @pre_load
    def _json_types(self, data, **kwargs):
        if not self.json_types or not isinstance(data, dict):
            return data
        errors: dict[str, list[str]] = {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            if key not in data or data[key] is None:
                continue
            values = (data[key].values() if isinstance(field, fields.Dict) and isinstance(data[key], dict)
                      else [data[key]])
            inner = field.value_field if isinstance(field, fields.Dict) else field
            if isinstance(inner, fields.Integer) and not all(type(v) is int for v in values):
                errors[key] = ["A whole number (a JSON integer)."]
            elif isinstance(inner, fields.Boolean) and not all(isinstance(v, bool) for v in values):
                errors[key] = ["true or false."]
        if errors:
            raise ValidationError(errors)
        return data


class OneOrBatch(Strict):
    """One item's fields, or a batch of items under one field (``batch_field``), never both: ``one`` is the schema of a
    single item, whose rules apply to the fields sent alone. The OpenAPI document states it as ``oneOf``."""

    one: type[Schema]
    batch_field = "batch"

    @validates_schema(pass_original=True)
    def _one_or_batch(self, data: dict, original: dict, **kwargs) -> None:
        batch_key = self.fields[self.batch_field].data_key or self.batch_field
        if self.batch_field in data:
            mixed = sorted(set(original) - {batch_key})
            if mixed:
                raise ValidationError({name: [f"Send one item's fields or `{batch_key}`, not both."]
                                       for name in mixed})
            return
        errors = self.one().validate(original)
        if errors:
            raise ValidationError(errors)


class ByKind(Strict):
    """A rule across fields: per value of the field ``kind_field``, the fields it requires (``requires``: given, not
    null, a list not empty), fields that belong to one value only (``belongs``: field -> value; with
    ``others_may_be_empty`` another kind may still send them null or empty, which says nothing) and the choices a
    field has per value (``choices``: field -> value -> choices; a list's items). The OpenAPI document states it
    as one ``oneOf`` branch per value, with a ``discriminator`` on ``kind_field``."""

    kind_field = "kind"
    requires: dict[str, tuple[str, ...]] = {}
    belongs: dict[str, str] = {}
    others_may_be_empty = False
    choices: dict[str, dict[str, tuple[str, ...]]] = {}

    @validates_schema
    def _fits_its_kind(self, data: dict, **kwargs) -> None:
        kind = data.get(self.kind_field)
        if kind not in self.requires:
            return
        errors = {name: [f"Required for {kind}."] for name in self.requires[kind] if data.get(name) in (None, [])}
        said = (lambda value: value not in (None, [])) if self.others_may_be_empty else (lambda value: True)
        errors.update({name: [f"Not part of {kind}."] for name, owner in self.belongs.items()
                       if owner != kind and name in data and said(data[name])})
        for name, per_kind in self.choices.items():
            values = data.get(name)
            wrong = [v for v in (values if isinstance(values, list) else [values]) if v is not None
                     and v not in per_kind[kind]]
            if wrong:
                errors[name] = [f"A {kind} offers only {', '.join(per_kind[kind])}; not {', '.join(wrong)}."]
        if errors:
            raise ValidationError(errors)


class DependentRequired(Strict):
    """Fields that need others (``dependent``: name -> the names it needs), as JSON Schema's ``dependentRequired``
    says it; the OpenAPI document states it with ``anyOf`` (3.0 has no such keyword), and describes a query with
    such a rule as one object parameter (``style: form``), whose properties are the query's parameters."""

    dependent: dict[str, tuple[str, ...]] = {}

    @validates_schema
    def _dependent_required(self, data: dict, **kwargs) -> None:
        errors = {needed: [f"Required with {name}."] for name, needs in self.dependent.items() if name in data
                  for needed in needs if needed not in data}
        if errors:
            raise ValidationError(errors)


class NotEmpty(Strict):
    """A body that must say something: one field at least (``minProperties: 1`` in the document)."""

    @validates_schema(pass_original=True)
    def _not_empty(self, data: dict, original: dict, **kwargs) -> None:
        if not original:
            raise ValidationError(f"Give one of {', '.join(self.fields)} at least.", "_schema")


class AnyOf(Strict):
    """One of the fields ``any_of`` at least is given and says something (not null, not an empty list): ``anyOf``
    in the document."""

    any_of: tuple[str, ...] = ()

    @validates_schema
    def _any_of(self, data: dict, **kwargs) -> None:
        if not any(data.get(name) not in (None, [], {}) for name in self.any_of):
            raise ValidationError(f"Give one of {', '.join(self.any_of)} at least.", "_schema")


# --- common ------------------------------------------------------------------------------------------------------


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"example": "validation_failed"})
    message = fields.String(required=True)
    details = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "Per field, the list of messages (422), or what the error concerns."},
    )


class PageQuerySchema(Strict):
    json_types = False

    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE), metadata={"description": "1-100, default 20."})
    cursor = fields.String(validate=validate.Length(min=1, max=512), metadata={"description": "Opaque cursor."})
