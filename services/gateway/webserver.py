"""The gateway's HTTP server: nameko's, with every answer it gives on its own in JSON.

Some requests never reach a route: eventlet refuses an over-long request line (414) or header line (400) with an
empty body, Python's ``http.server`` refuses a malformed request line with an HTML page, and werkzeug answers a
method no rule knows (``TRACE``, ``PROPFIND``) with HTML. Here each of those is the problem body every other error
has, ``{"error", "message"}`` with the correlation id and the security headers.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any, NoReturn

from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from services.gateway.errors import MethodNotAllowed, RouteNotFound, error_response
from services.gateway.routes import CONSOLE_PATHS, ROUTES
from shared.runtime.tracing import new_id
from shared.vocabulary.errors import DomainError

CORRELATION_HEADER = "X-Correlation-ID"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def finish(response: Response, correlation_id: str) -> Response:
    response.headers[CORRELATION_HEADER] = correlation_id
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


class EdgeError(DomainError):
    """An error answered before any route runs; its status is the one the server chose."""

    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(message, details)
        self.status = status
        self.code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def problem(status: int, message: str) -> bytes:
    """A whole HTTP/1.0 response (status line, headers, JSON body) for an error answered below WSGI."""
    _, body, _ = error_response(EdgeError(status, message), "")
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"HTTP/1.0 {status} {HTTPStatus(status).phrase}", "Connection: close",
             "Content-Type: application/json", f"Content-Length: {len(payload)}",
             f"{CORRELATION_HEADER}: {new_id()}", *(f"{k}: {v}" for k, v in SECURITY_HEADERS.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


# eventlet writes these canned refusals straight to the socket (status line, empty body).
_CANNED = re.compile(rb"^HTTP/1\.0 (4\d\d) ([^\r\n]*)\r\n(?:[^\r\n]+\r\n)*\r\n", re.DOTALL)


class _JsonRefusals:
    """The connection's write side, turning eventlet's canned refusals into JSON problem responses."""

    def __init__(self, wfile):
        self._wfile = wfile

    def write(self, data: bytes):
        canned = _CANNED.match(data) if isinstance(data, bytes) and data.startswith(b"HTTP/1.0 4") else None
        if canned:
            reason = canned.group(2).decode("latin-1")
            tail = data[canned.end():].decode("utf-8", "replace").strip()
            data = problem(int(canned.group(1)), f"{reason}: {tail}" if tail else f"{reason}.")
        return self._wfile.write(data)

    def __getattr__(self, name: str):
        return getattr(self._wfile, name)


class JsonEdgeProtocol(HttpOnlyProtocol):
    def setup(self) -> None:
        super().setup()
        self.wfile = _JsonRefusals(self.wfile)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """``http.server``'s refusals (a malformed request line, an unsupported version) as JSON."""
        self.close_connection = True
        self.wfile.write(problem(code, message or HTTPStatus(code).phrase))


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app; a request no rule matches (a method no route has, such as TRACE) is answered in JSON."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            answer = provider.handle_request(request)
        except HTTPException:
            answer = _as_json(request)
        return answer(environ, start_response)


_ROUTE_MAP = Map([*(Rule(r.werkzeug_rule, methods=[r.method], endpoint=r.operation) for r in ROUTES),
                  *(Rule(path, methods=["GET"], endpoint="console_file") for path in CONSOLE_PATHS)])


def unrouted(request: Request) -> NoReturn:
    """404 for a path no route has, 405 (with Allow) for a known path asked with the wrong method."""
    adapter = _ROUTE_MAP.bind_to_environ(request.environ)
    try:
        adapter.match()
    except WerkzeugMethodNotAllowed as exc:
        allowed = sorted(exc.valid_methods or [])
        raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}.", allowed) from None
    except Exception:
        pass
    raise RouteNotFound(f"No route {request.method} {request.path}.")


def _as_json(request: Request) -> Response:
    correlation_id = new_id()
    try:
        unrouted(request)
    except DomainError as exc:
        status, body, headers = error_response(exc, correlation_id)
    return finish(json_response(body, status, headers), correlation_id)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, protocol=JsonEdgeProtocol, debug=False):
        return super().get_wsgi_server(sock, wsgi_app, protocol=protocol, debug=debug)
