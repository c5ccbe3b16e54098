"""The HTTP edge: one entrypoint class that turns every answer, good or bad, into a JSON response.

``@route("get_posting")`` registers a service method under its row of the route table and runs, inside the worker,
what every route needs before its one RPC call: authentication and the role check, the body (size, JSON, schema) and
the query string; afterwards the answer is shaped by the route's response schema. The service method is left with
the call itself.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NoReturn

from eventlet.event import Event
from marshmallow import Schema, ValidationError
from nameko.web.handlers import HttpRequestHandler
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wrappers import Request, Response

from services.gateway.auth import Principal
from services.gateway.errors import (
    LengthRequired,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    error_response,
    validation_failed,
)
from services.gateway.routes import BY_OPERATION, CONSOLE_PATHS, Route
from services.gateway.webserver import CORRELATION_HEADER, JsonWebServer, finish, json_response
from shared.runtime import metrics
from shared.runtime.tracing import CORRELATION_KEY, new_id

# An inbound id is reused only when it is a plausible id: it is echoed in headers and written to every log line.
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_CORRELATION_ENVIRON = "tasklinkr.correlation_id"

FALLBACK_METHODS = "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS"
DEFAULT_MAX_REQUEST_BYTES = 1_048_576


@dataclass
class Reply:
    """What a route answers when the route table's status is not the whole story (``/health``: 200 or 503)."""

    body: Any
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A document (HTML, CSV, PDF) is sent as it is; None: the body is JSON.
    media_type: str | None = None


@dataclass(frozen=True)
class ApiRequest:
    """A request after the gateway's checks: who is calling, and the body and query as the schemas loaded them."""

    route: Route
    caller: Principal | None
    body: dict
    query: dict
    path: dict[str, str]
    headers: EnvironHeaders
    correlation_id: str


class HttpEntrypoint(HttpRequestHandler):
    """nameko's HTTP entrypoint with the gateway's edge rules: correlation id, size limit, JSON everywhere."""

    server = JsonWebServer()

    def __init__(self, method: str, url: str, route: Route | None = None, **kwargs):
        self.route = route
        super().__init__(method, url, **kwargs)

    def setup(self) -> None:
        self.max_request_bytes = int(self.container.config.get("MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES))
        super().setup()

    def handle_request(self, request: Request) -> Response:
        started = time.perf_counter()
        response = self._answer(request)
        route = self.route.operation if self.route else "unmatched"
        metrics.HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        metrics.HTTP_SECONDS.labels(route, request.method).observe(time.perf_counter() - started)
        return response

    def _answer(self, request: Request) -> Response:
        correlation_id = _adopt_correlation_id(request)
        request.shallow = False
        request.max_content_length = self.max_request_bytes
        try:
            _check_body_size(request, self.max_request_bytes)
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(
                self,
                args,
                kwargs,
                context_data={CORRELATION_KEY: correlation_id},
                handle_result=partial(self.handle_result, event),
            )
            response = self.response_from_result(event.wait())
        except Exception as exc:
            response = self.response_from_exception(exc, correlation_id)
        return finish(response, correlation_id)

    def response_from_result(self, result: Any) -> Response:
        reply = result if isinstance(result, Reply) else Reply(result)
        if reply.media_type:
            # Text documents say their encoding; a binary one (a PDF) is sent as its bytes.
            charset = "; charset=utf-8" if reply.media_type.startswith("text/") else ""
            return Response(reply.body, status=reply.status or 200, headers=reply.headers,
                            content_type=f"{reply.media_type}{charset}")
        return json_response(reply.body, reply.status or 200, reply.headers)

    def response_from_exception(self, exc: BaseException, correlation_id: str = "") -> Response:
        status, body, headers = error_response(exc, correlation_id)
        return json_response(body, status, headers)


def _adopt_correlation_id(request: Request) -> str:
    inbound = request.headers.get(CORRELATION_HEADER, "")
    correlation_id = inbound if _CORRELATION_ID.match(inbound) else new_id()
    # shared.runtime.tracing reads the header itself: make it see the id this gateway settled on.
    request.environ["HTTP_X_CORRELATION_ID"] = correlation_id
    request.environ[_CORRELATION_ENVIRON] = correlation_id
    return correlation_id


def _check_body_size(request: Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"The request body is larger than this API accepts ({limit} bytes).", {"max_bytes": limit}
        )
    # eventlet does not mark chunked input as terminated, so werkzeug would read it as empty: refuse, don't guess.
    if request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        raise LengthRequired("Send the body with a Content-Length.")


# --- routes --------------------------------------------------------------------------------------------------------


def route(operation: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a service method as the handler of the route table's row ``operation``.

    The service must declare ``auth = Authentication()`` and ``audit = AuditTrail()``. In order: who is calling
    (401) and whether its key has budget left (429); for a state-changing route the audit record, written before
    anything else happens (503 if it cannot be); the role and ownership check (403 / 404); body and query; the call.
    The record then gets the outcome, whatever it was.
    """
    spec = BY_OPERATION[operation]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def handler(service: Any, request: Request, **path_values: str) -> Reply:
            correlation_id = request.environ.get(_CORRELATION_ENVIRON) or new_id()
            record = None
            try:
                caller = None
                if not spec.public:
                    caller = service.auth.identify(request.headers.get("Authorization"))
                    service.rpc.lane = caller.lane  # the route's calls travel in its caller's lane
                    if spec.changes_state:
                        record = service.audit.begin(spec, caller, path_values, correlation_id)
                    service.auth.authorize(caller, spec, path_values)
                api_request = ApiRequest(
                    route=spec,
                    caller=caller,
                    body=load_body(request, spec),
                    query=load_query(request, spec),
                    path=path_values,
                    headers=request.headers,
                    correlation_id=correlation_id,
                )
                result = fn(service, api_request)
                if spec.media_type != "application/json":
                    result = Reply(result, media_type=spec.media_type)
                reply = result if isinstance(result, Reply) else Reply(result)
                body = (shared_instance(spec.response).dump(reply.body) if spec.response and reply.body is not None
                        else reply.body)
                reply = Reply(body, reply.status or spec.status, reply.headers, reply.media_type)
            except Exception as exc:
                # Answered here rather than raised, so nameko does not log every 404 as a failed worker; the
                # mapping is still errors.error_response, the same the entrypoint uses.
                status, body, headers = error_response(exc, correlation_id)
                reply = Reply(body, status, headers)
            if record is not None:
                service.audit.finish(record, reply.status, reply.body)
            return reply

        return HttpEntrypoint.decorator(spec.method, spec.werkzeug_rule, route=spec)(handler)

    return decorate


def _answering_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A handler outside the route table whose errors are JSON problem bodies like every route's."""

    @functools.wraps(fn)
    def handler(service: Any, request: Request, path: str = "") -> Reply:
        try:
            return fn(service, request, path)
        except Exception as exc:
            status, body, headers = error_response(exc, request.environ.get(_CORRELATION_ENVIRON) or new_id())
            return Reply(body, status, headers)

    return handler


def fallback(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register the handler of every path no route serves (nameko's own 404 is plain text)."""
    handler = HttpEntrypoint.decorator(FALLBACK_METHODS, "/")(_answering_errors(fn))
    return HttpEntrypoint.decorator(FALLBACK_METHODS, "/<path:path>")(handler)


def console_files(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register the handler of the web console's files (GET /console and below): pages, not API routes."""
    handler = _answering_errors(fn)
    for path in CONSOLE_PATHS:
        handler = HttpEntrypoint.decorator("GET", path)(handler)
    return handler


# --- bodies and query strings -------------------------------------------------------------------------------------


@functools.cache
def shared_instance(schema_class: type[Schema]) -> Schema:
    """One instance of each schema for every request: a new one copies every declared field (0.1-0.2 ms for the
    larger schemas here), and marshmallow's load and dump keep no state on the instance."""
    return schema_class()


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def read_json(request: Request) -> Any:
    """The parsed body, or None when there is none; 415 for a body not sent as JSON, 400 for one that is not."""
    data = request.get_data(cache=True)
    if len(data) > (request.max_content_length or len(data)):
        raise PayloadTooLarge("The request body is larger than this API accepts.")
    if not data.strip():
        return None
    # A form or text/plain body is what a browser can send across origins without asking: only JSON is read.
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.",
                                   {"content_type": request.content_type or ""})
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedJson("The request body is not valid JSON.", {"body": [str(exc)[:200]]}) from None


def load_body(request: Request, spec: Route) -> dict:
    """The body checked by the route's schema and written back in wire form (decimal strings, ISO dates)."""
    if spec.request is None:
        return {}
    payload = read_json(request)
    schema = shared_instance(spec.request)
    try:
        loaded = schema.load({} if payload is None else payload)
    except ValidationError as exc:
        raise validation_failed(exc) from None
    return schema.dump(loaded)


def load_query(request: Request, spec: Route) -> dict:
    if spec.query is None:
        return {}
    try:
        return shared_instance(spec.query).load(request.args.to_dict(flat=True))
    except ValidationError as exc:
        raise validation_failed(exc) from None
