import re

from werkzeug.routing import Map

from services.gateway import openapi
from services.gateway.entrypoints import HttpEntrypoint
from services.gateway.routes import ROUTES
from services.gateway.service import GatewayService

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_the_document_has_the_structure_of_openapi_3():
    document = openapi.build()
    assert document["openapi"] == "3.0.3"
    assert document["info"]["title"] and document["info"]["version"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "API key."
    }
    operation_ids = []
    for path, item in document["paths"].items():
        assert path.startswith("/")
        for method, operation in item.items():
            assert method in HTTP_METHODS
            operation_ids.append(operation["operationId"])
            assert operation["responses"]
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status)
                assert response["description"]
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path))
            for parameter in operation["parameters"]:
                assert parameter["in"] in {"path", "query", "header", "cookie"}
                assert "schema" in parameter
                if parameter["in"] == "path":
                    assert parameter["required"] is True
            for requirement in operation["security"]:
                assert set(requirement) <= set(document["components"]["securitySchemes"])
            if "requestBody" in operation:
                assert set(operation["requestBody"]["content"]) == {"application/json"}
    assert len(operation_ids) == len(set(operation_ids))


def test_every_reference_resolves_to_a_component():
    document = openapi.build()
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in document["components"]["schemas"]


def test_the_documents_paths_and_methods_are_the_route_table():
    document = openapi.build()
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert documented == {(r.path, r.method) for r in ROUTES}


def test_query_schemas_become_query_parameters_and_public_routes_need_no_key():
    document = openapi.build()
    operations = {op["operationId"]: op for item in document["paths"].values() for op in item.values()}
    query = {p["name"] for p in operations["list_postings"]["parameters"] if p["in"] == "query"}
    assert {"limit", "cursor", "status"} <= query
    # A query with rules between its parameters is one exploded object whose properties are the parameters.
    [search] = [p for p in operations["search_providers"]["parameters"] if p["in"] == "query"]
    assert (search["style"], search["explode"]) == ("form", True)
    component = document["components"]["schemas"][search["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"limit", "cursor", "max_hourly_rate", "currency", "verified"} <= set(component["properties"])
    assert {"anyOf": [{"not": {"required": ["max_hourly_rate"]}}, {"required": ["currency"]}]} in component["allOf"]
    assert operations["health"]["security"] == []
    assert operations["create_posting"]["security"] == [{"bearer": []}]
    assert operations["create_tenant"]["requestBody"]["required"] is True
    assert operations["publish_posting"]["requestBody"]["required"] is False
    assert "Idempotency-Key" in {p["name"] for p in operations["create_posting"]["parameters"]}


def test_the_served_document_is_a_copy_callers_cannot_spoil():
    first = openapi.document()
    first["paths"].clear()
    assert openapi.document()["paths"]


def _route_entrypoints(container):
    return [e for e in container.entrypoints if isinstance(e, HttpEntrypoint) and e.route is not None]


def test_every_route_has_one_handler_of_its_name_and_the_url_map_serves_exactly_the_table(container_factory):
    container = container_factory(GatewayService, {"AMQP_URI": "memory://", "OPERATOR_KEY": "k"})
    entrypoints = _route_entrypoints(container)
    assert sorted(e.method_name for e in entrypoints) == sorted(r.operation for r in ROUTES)
    assert all(e.route.operation == e.method_name for e in entrypoints)

    url_map = Map([e.get_url_rule() for e in entrypoints])
    served = {(rule.rule, method) for rule in url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == {(r.werkzeug_rule, r.method) for r in ROUTES}
    for route in ROUTES:
        path = re.sub(r"\{\w+\}", "x_1", route.path)
        url_map.bind("localhost").match(path, method=route.method)  # raises NotFound / MethodNotAllowed


def test_the_catch_all_answers_every_other_path_and_the_console_its_files(container_factory):
    container = container_factory(GatewayService, {"AMQP_URI": "memory://", "OPERATOR_KEY": "k"})
    unrouted = [e for e in container.entrypoints if isinstance(e, HttpEntrypoint) and e.route is None]
    assert {(e.url, e.method_name) for e in unrouted} == {
        ("/", "unknown_route"), ("/<path:path>", "unknown_route"),
        ("/console", "console_file"), ("/console/", "console_file"), ("/console/<path:path>", "console_file")}
