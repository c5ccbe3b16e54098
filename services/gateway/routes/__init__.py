"""The route table: the one list the HTTP entrypoints are registered from and the OpenAPI document is built from.

A service method is bound to its row by name (``@route("create_posting")``), so a route cannot exist in the
server without being in the document, nor in the document without a handler (tests hold both directions).

The rows are written per route group, one module each (``tenants``: tenants and keys; ``providers``; ``postings``:
postings and negotiation; ``matching``; ``contracts``; ``billing``; ``reports``: the audit trail and the cost
reports; ``operations``), with the callers and the ``Route`` row of ``common``; here they make the one table, in
the order the document lists them.
"""

from __future__ import annotations

from services.gateway.routes.billing import BILLING
from services.gateway.routes.common import (
    CALLERS,
    CLIENT,
    CONSOLE_PATHS,
    FINANCE,
    MANAGER,
    OPERATOR,
    OWNER,
    PROVIDER_ITSELF,
    Route,
    admits,
    describe,
)
from services.gateway.routes.contracts import CONTRACTS
from services.gateway.routes.matching import MATCHING
from services.gateway.routes.operations import OPERATIONS
from services.gateway.routes.postings import NEGOTIATION, POSTINGS
from services.gateway.routes.providers import PROVIDERS
from services.gateway.routes.reports import AUDIT, COSTS
from services.gateway.routes.tenants import KEYS, TENANTS

ROUTES: tuple[Route, ...] = (
    *TENANTS,
    *PROVIDERS,
    *POSTINGS,
    *NEGOTIATION,
    *MATCHING,
    *KEYS,
    *AUDIT,
    *CONTRACTS,
    *BILLING,
    *COSTS,
    *OPERATIONS,
)

BY_OPERATION: dict[str, Route] = {r.operation: r for r in ROUTES}

__all__ = ["BY_OPERATION", "CALLERS", "CLIENT", "CONSOLE_PATHS", "FINANCE", "MANAGER", "OPERATOR", "OWNER",
           "PROVIDER_ITSELF", "ROUTES", "Route", "admits", "describe"]
