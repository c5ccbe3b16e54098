"""What the groups of HTTP routes share: the page a list route asks for, and who a route acts for."""

from __future__ import annotations

from services.gateway.entrypoints import ApiRequest
from services.gateway.routes import CLIENT, OPERATOR

DEFAULT_PAGE = 20
PAGING = ("limit", "cursor")


def page(request: ApiRequest) -> dict:
    """Which page a list route asks for: ``limit`` (default 20) and ``cursor``."""
    return {"limit": request.query.get("limit", DEFAULT_PAGE), "cursor": request.query.get("cursor")}


def party(request: ApiRequest) -> dict:
    """Who negotiates (or reads and changes a contract, a billing account): the calling client organisation or the
    calling provider."""
    caller = request.caller
    if caller.kind == CLIENT:
        return {"kind": "client", "tenant_id": caller.tenant_id}
    return {"kind": "provider", "provider_id": caller.provider_id}


def payer(request: ApiRequest) -> dict:
    """Who reads or changes billing records: a client organisation, a provider or the operator."""
    return {"kind": "operator"} if request.caller.kind == OPERATOR else party(request)
