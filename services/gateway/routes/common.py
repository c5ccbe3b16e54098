"""What every group of routes is written with: the callers (``who``) and what admits them, the ``Route`` row,
the error statuses most routes share; and the console's paths."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from marshmallow import Schema

# Who may call a route: its ``who`` names callers, and a caller's key must match one of them (403 otherwise).
#
#   OPERATOR         the operator key (configuration).
#   CLIENT           a client organisation's key with role owner or manager: the safe default for client work.
#   OWNER            a client organisation's owner key only (its keys, its audit trail).
#   FINANCE          a client organisation's finance key. Finance reads invoices and reports and nothing else, so it
#                    is never implied: a route that finance may call names FINANCE explicitly (next to CLIENT).
#   PROVIDER_ITSELF  a provider's key: on /providers/{provider_id} only its own profile; on invitations and
#                    proposals, its own.
#
# On a path with {tenant_id} a client reaches only its own organisation, and a provider on {provider_id} only
# itself: anything else answers 404, like any other resource it does not own.
OPERATOR = "operator"
CLIENT = "client"
OWNER = "owner"
MANAGER = "manager"
FINANCE = "finance"
PROVIDER_ITSELF = "provider"
CALLERS = (OPERATOR, CLIENT, OWNER, FINANCE, PROVIDER_ITSELF)
# The roles of a client organisation's keys (shared.vocabulary.apikeys.CLIENT_ROLES), and the ``who`` entries that
# admit each.
_ADMITTED_BY = {OWNER: (CLIENT, OWNER), MANAGER: (CLIENT,), FINANCE: (FINANCE,)}


def admits(who: tuple[str, ...], kind: str, role: str | None = None) -> bool:
    """Whether a caller of ``kind`` (a client: with ``role``) may call a route whose callers are ``who``."""
    if kind == CLIENT:
        return any(entry in who for entry in _ADMITTED_BY.get(role or "", ()))
    return kind in who


def describe(who: tuple[str, ...]) -> str:
    """The callers of a route in words, for the OpenAPI document."""
    words = {CLIENT: "client (owner or manager key)", OWNER: "client owner key", FINANCE: "client finance key",
             PROVIDER_ITSELF: "provider", OPERATOR: "operator"}
    return ", ".join(words[entry] for entry in who) if who else "anyone (no key)"

_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    path: str
    summary: str
    # Empty: anyone, no key needed.
    who: tuple[str, ...]
    tag: str
    status: int = 200
    request: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # A batch whose items carry an idempotency ``key`` each, or take the ``Idempotency-Key`` header plus their
    # position: the description then requires the header (it cannot say "unless every item has a key").
    keyed_batch: bool = False
    # What a successful answer is: JSON (shaped by ``response``), or a document (HTML, CSV, PDF) sent as it is.
    media_type: str = "application/json"

    @property
    def public(self) -> bool:
        return not self.who

    @property
    def changes_state(self) -> bool:
        """Whether the route can change something: each such request is written to the audit trail."""
        return self.method != "GET"

    @property
    def path_parameters(self) -> list[str]:
        return _PARAMETER.findall(self.path)

    @property
    def werkzeug_rule(self) -> str:
        """``/v1/postings/{posting_id}`` as werkzeug spells it: ``/v1/postings/<posting_id>``."""
        return _PARAMETER.sub(r"<\1>", self.path)

    @property
    def statuses(self) -> tuple[int, ...]:
        return (self.status, *self.errors)


# Every route that needs a key may also answer 429: each key has a request budget (Retry-After says when).
_AUTH = (401, 403, 429)
_BODY = (400, 413, 415, 422)
_UPSTREAM = (503, 504)

# The web console's files (pages, not API routes): served by the gateway under /console.
CONSOLE_PATHS = ("/console", "/console/", "/console/<path:path>")
