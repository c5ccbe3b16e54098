"""The OpenAPI 3.0.3 document, generated from the route table and the marshmallow schemas the routes really use."""

from __future__ import annotations

import copy
import functools
from http import HTTPStatus

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields, validate

from services.gateway import schemas
from services.gateway.routes import PROVIDER_ITSELF, ROUTES, Route, describe
from shared.vocabulary.fields import NAME_PATTERN
from shared.vocabulary.idempotency import MAX_HEADER_KEY

TITLE = "TaskLINKr API"
VERSION = "1.0.0"
BEARER = "bearer"


def _only_null_when_nullable(self, field: fields.Field, ret: dict, **kwargs) -> dict:
    """apispec writes a nullable nested object as ``anyOf: [{type: object, nullable: true}, {$ref}]``, whose first
    branch is any object at all: say it is null or the referenced object, nothing else."""
    if "anyOf" not in ret:
        return {}
    return {"anyOf": [dict(branch, enum=[None]) if branch == {"type": "object", "nullable": True} else branch
                      for branch in ret["anyOf"]]}


def _fixed_keys(self, field: fields.Field, ret: dict, **kwargs) -> dict:
    """A dict keyed by a fixed set (categories, say) is an object with those properties and no others."""
    if not isinstance(field, fields.Dict) or field.key_field is None:
        return {}
    choices = next((v.choices for v in field.key_field.validators if isinstance(v, validate.OneOf)), None)
    if not choices:
        return {}
    value = ret.get("additionalProperties", {})
    return {"properties": {choice: value for choice in choices}, "additionalProperties": False}


def _engagement_variants() -> dict:
    """Per-unit work names its unit, other work has none: the rule the postings service checks, as ``oneOf``."""
    unit = {"type": "string", "minLength": 1, "maxLength": 40, "pattern": NAME_PATTERN}
    others = [kind for kind in schemas.ENGAGEMENTS if kind != "per_unit"]
    return {"oneOf": [
        {"type": "object", "properties": {"type": {"type": "string", "enum": ["per_unit"]}, "unit": unit},
         "required": ["type", "unit"], "additionalProperties": False},
        {"type": "object", "properties": {"type": {"type": "string", "enum": others},
                                          "unit": {"nullable": True, "enum": [None]}},
         "required": ["type"], "additionalProperties": False},
    ]}


def _shoring_variants() -> dict:
    """The forms of a posting's shoring the postings service accepts, as ``oneOf``: without ``accepted``, a
    required shoring names its class and one not required accepts every class; with ``accepted``, each class at most
    once, the preference among them (or ``any``), and ``required`` false only when every class is accepted."""
    classes = [kind for kind in schemas.SHORING if kind != "any"]

    def form(preferences: list[str], required: bool, accepted: dict | None = None, must_say: bool = False) -> dict:
        properties = {"preference": {"type": "string", "enum": preferences},
                      "required": {"type": "boolean", "enum": [required]}}
        if accepted is not None:
            properties["accepted"] = {"type": "array", "items": {"type": "string", "enum": classes},
                                      "uniqueItems": True, "maxItems": len(classes), **accepted}
        named = ["preference", *(["required"] if must_say else []), *(["accepted"] if accepted is not None else [])]
        return {"type": "object", "properties": properties, "required": named, "additionalProperties": False}

    # "Contains the preferred class", in OpenAPI 3.0 (no ``contains``): not made only of the other classes.
    def naming(preference: str) -> dict:
        return {"minItems": 1, "not": {"items": {"enum": [kind for kind in classes if kind != preference]}}}

    return {
        "description": "The classes a provider may be in (`accepted`, each once) and the one the score favours "
                       "(`preference`, `any` for none, else one of the accepted). Without `accepted`: `required` "
                       "true accepts only the preferred class (not `any`), false or left out every class. With "
                       "`accepted`: `required` true or left out; false only when every class is accepted.",
        "oneOf": [
            form(schemas.SHORING, required=False),
            form(classes, required=True, must_say=True),
            form(["any"], required=True, accepted={"minItems": 1}),
            *(form([kind], required=True, accepted=naming(kind)) for kind in classes),
            form(schemas.SHORING, required=False, accepted={"minItems": len(classes)}, must_say=True),
        ],
    }


# Rules across the fields of a schema, which marshmallow checks in code, stated for the description.
ACROSS_FIELDS = {"Engagement": _engagement_variants, "Shoring": _shoring_variants}


def _by_kind(rule: type[schemas.ByKind], name: str, components: dict) -> None:
    """One ``oneOf`` branch per kind (its own component, ``<name><Kind>``), chosen by the ``discriminator``: the
    fields the kind requires required and said (not null, a list not empty), its choices per field, and the fields
    of other kinds absent (or, with ``others_may_be_empty``, null or empty)."""
    component = components[name]
    mapping = {}
    for kind, needed in rule.requires.items():
        properties = {}
        for field, value in component["properties"].items():
            owner = rule.belongs.get(field, kind)
            if owner != kind:
                if rule.others_may_be_empty:
                    properties[field] = ({"type": "array", "maxItems": 0} if value.get("type") == "array"
                                         else {"nullable": True, "enum": [None]})
                continue
            if field in needed:
                value = _said(value)
            if field in rule.choices:
                allowed = list(rule.choices[field][kind])
                value = ({**value, "items": {**value["items"], "enum": allowed}} if value.get("type") == "array"
                         else {**value, "enum": allowed})
            properties[field] = value
        properties[rule.kind_field] = {**properties[rule.kind_field], "enum": [kind]}
        required = [*component.get("required", []), *(field for field in needed
                                                      if field not in component.get("required", []))]
        branch = f"{name}{kind.title().replace('_', '')}"
        components[branch] = {"type": "object", "properties": properties, "required": required,
                              "additionalProperties": False}
        mapping[kind] = f"#/components/schemas/{branch}"
    components[name] = {"oneOf": [{"$ref": ref} for ref in mapping.values()],
                        "discriminator": {"propertyName": rule.kind_field, "mapping": mapping}}


def _said(value: dict) -> dict:
    """A property's schema without null: a list at least one long, a nullable reference only the reference."""
    if "anyOf" in value:
        [value] = [branch for branch in value["anyOf"] if branch.get("enum") != [None]]
        return value
    value = {key: part for key, part in value.items() if key != "nullable"}
    if value.get("type") == "array":
        value["minItems"] = max(value.get("minItems", 0), 1)
    return value


def _given(name: str, property_: dict) -> dict:
    """``name`` is there and says something: not null, not an empty list."""
    said = {"minItems": 1} if property_.get("type") == "array" else {"type": "object"}
    return {"required": [name], "properties": {name: said}}


def _one_or_batch(rule: type[schemas.OneOrBatch], component: dict, components: dict) -> dict:
    """One item (the single item's own schema) or a batch under its one field, never both."""
    field = rule().fields[rule.batch_field]
    key = field.data_key or rule.batch_field
    one = next(name for name, cls in _components(components) if cls is rule.one)
    return {"oneOf": [
        {"$ref": f"#/components/schemas/{one}"},
        {"type": "object", "properties": {key: component["properties"][key]}, "required": [key],
         "additionalProperties": False},
    ]}


def _component_name(schema: type[Schema]) -> str:
    return schema.__name__.removesuffix("Schema")


def _components(components: dict) -> list[tuple[str, type]]:
    """The document's component schemas with the marshmallow class each was generated from (apispec names a
    component after its class, without ``Schema``)."""
    classes = {_component_name(cls): cls for cls in vars(schemas).values()
               if isinstance(cls, type) and issubclass(cls, Schema)}
    return [(name, classes[name]) for name in components if name in classes]


def _cross_field_rules(components: dict) -> None:
    """State the rule across the fields of each schema that has one (``ByKind``, ``OneOrBatch``,
    ``DependentRequired``, ``NotEmpty``, ``AnyOf``), generated from the same attributes its validator reads."""
    for name, cls in _components(components):
        if issubclass(cls, schemas.ByKind):
            _by_kind(cls, name, components)
        if issubclass(cls, schemas.AnyOf):
            components[name]["anyOf"] = [_given(name_, components[name]["properties"][name_]) for name_ in cls.any_of]
        if issubclass(cls, schemas.NotEmpty):
            components[name]["minProperties"] = 1
        if issubclass(cls, schemas.DependentRequired) and cls.dependent:
            components[name]["allOf"] = [{"anyOf": [{"not": {"required": [field]}}, {"required": list(needs)}]}
                                         for field, needs in cls.dependent.items()]
    for name, cls in _components(components):
        if issubclass(cls, schemas.OneOrBatch):
            components[name] = _one_or_batch(cls, components[name], components)


def build(routes: tuple[Route, ...] = ROUTES) -> dict:
    marshmallow = MarshmallowPlugin()
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.0.3",
        plugins=[marshmallow],
        info={
            "description": "Outsourcing marketplace: client organisations post non-core work, providers answer. "
            "Authenticate with `Authorization: Bearer <key>`: the operator key, a client key (`tlk_c_…`, with the "
            "role owner, manager or finance) or a provider key (`tlk_p_…`). Each client organisation, provider and "
            "the operator has one request budget, whichever of its keys it calls with: past it the answer is 429 "
            "with `Retry-After`. Every state-changing request is written to an audit trail. "
            "Every response carries `X-Correlation-ID`; send your own to follow a request through the platform.",
        },
    )
    marshmallow.converter.add_attribute_function(_only_null_when_nullable)
    marshmallow.converter.add_attribute_function(_fixed_keys)
    spec.components.security_scheme(BEARER, {"type": "http", "scheme": "bearer", "description": "API key."})
    spec.components.schema("Error", schema=schemas.ErrorSchema)
    for query in {route.query for route in routes if route.query is not None}:
        if issubclass(query, schemas.DependentRequired):
            spec.components.schema(_component_name(query), schema=query)
    for route in routes:
        spec.path(path=route.path, operations={route.method.lower(): _operation(route)})
    document = spec.to_dict()
    _cross_field_rules(document["components"]["schemas"])
    for name, rule in ACROSS_FIELDS.items():
        document["components"]["schemas"][name] = rule()
    return document


@functools.cache
def _cached() -> dict:
    return build()


def document() -> dict:
    """The document for ``GET /v1/openapi.json``; built once, handed out as a copy nobody can spoil."""
    return copy.deepcopy(_cached())


def _operation(route: Route) -> dict:
    description = f"Who may call: {describe(route.who)}."
    if PROVIDER_ITSELF in route.who and "provider_id" in route.path_parameters:
        description += " A provider only its own profile (another provider's: 404)."
    if "tenant_id" in route.path_parameters:
        description += " A client only its own organisation (another's: 404)."
    if route.description:
        description += "\n\n" + route.description
    operation: dict = {
        "operationId": route.operation,
        "summary": route.summary,
        "description": description,
        "tags": [route.tag],
        "x-callers": list(route.who),
        "security": [{BEARER: []}] if route.who else [],
        "responses": {str(status): _response(route, status) for status in route.statuses},
    }
    parameters: list[dict] = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in route.path_parameters
    ]
    if route.query is not None and issubclass(route.query, schemas.DependentRequired):
        # Its parameters as one object's properties, so that the rules between them can be stated.
        parameters.append({"in": "query", "name": "query", "style": "form", "explode": True,
                           "schema": {"$ref": f"#/components/schemas/{_component_name(route.query)}"},
                           "description": "The query parameters (each property is one parameter)."})
    elif route.query is not None:
        parameters.append({"in": "query", "schema": route.query})
    parameters.extend(_header(route, name, text) for name, text in route.headers.items())
    parameters.append(
        {
            "in": "header",
            "name": "X-Correlation-ID",
            "required": False,
            "description": "Reused when given, else generated; echoed on the response.",
            "schema": {"type": "string"},
        }
    )
    operation["parameters"] = parameters
    if route.request is not None:
        operation["requestBody"] = {
            # A body with no required field (publish, verify, a PATCH) may be left out altogether.
            "required": issubclass(route.request, schemas.OneOrBatch | schemas.NotEmpty)
            or any(f.required for f in route.request().fields.values()),
            "content": {"application/json": {"schema": route.request}},
        }
    return operation


def _header(route: Route, name: str, text: str) -> dict:
    if route.keyed_batch and name == "Idempotency-Key":
        return {"in": "header", "name": name, "required": True, "schema": {
            "type": "string", "minLength": 1, "maxLength": MAX_HEADER_KEY},
            "description": f"{text} Required unless every item carries its own `key`; keys are unique in a batch."}
    return {"in": "header", "name": name, "required": False, "description": text, "schema": {"type": "string"}}


def _response(route: Route, status: int) -> dict:
    description = HTTPStatus(status).phrase
    if status == route.status and route.media_type != "application/json":
        schema = {"type": "string"} if route.media_type.startswith("text/") else {"type": "string", "format": "binary"}
        return {"description": description, "content": {route.media_type: {"schema": schema}}}
    if status == route.status or (route.operation == "health" and status == 503):
        if route.response is None:
            return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}
        return {"description": description, "content": {"application/json": {"schema": route.response}}}
    return {"description": description, "content": {"application/json": {"schema": "Error"}}}
