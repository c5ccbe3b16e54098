"""Who is calling: bearer keys to principals, each caller's request budget, and the route table's "who" to 401 / 403 /
404.

The operator key is configuration; client and provider keys belong to the postings and providers services, which
alone can tell whether a key is live (the gateway stores none). A client key carries a role (owner, manager,
finance); routes.admits says which roles a route's ``who`` lets in. A principal asking for another tenant's or
another provider's resource gets 404, never 403, so the answer does not reveal that the resource exists.

Rate limits: each client organisation, each provider and the operator may make ``RATE_LIMIT`` requests (``limits``
notation, for example ``120/minute``) in a moving window, whichever of its keys it calls with (so minting more keys
buys no more requests); beyond it the answer is 429 with ``Retry-After``. The counters live in
``RATE_LIMIT_STORAGE``: ``memory://`` counts per gateway process, so with N gateway replicas a caller may make up to
N times its budget; a storage shared by the replicas (for example ``redis://`` in a larger deployment) makes it one
budget. An unauthenticated request is refused (401) before it spends anything.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from nameko.exceptions import ConfigurationError
from nameko.extensions import DependencyProvider
from nameko.rpc import ReplyListener, ServiceProxy

from services.gateway.dependencies import call_with_timeout
from services.gateway.errors import TooManyRequests
from services.gateway.routes import CLIENT, OPERATOR, PROVIDER_ITSELF, Route, admits
from shared.vocabulary import apikeys
from shared.vocabulary.errors import Forbidden, NotFound, Unauthorized

DEFAULT_RATE_LIMIT = "120/minute"


@dataclass(frozen=True)
class Principal:
    kind: str
    tenant_id: str | None = None
    role: str | None = None
    provider_id: str | None = None
    # The id of the key it called with (the operator key has none): what the audit names.
    key_id: str | None = None
    # The workload lane its calls travel in (a client's segment, a provider's kind: ``lane_of``); the operator's:
    # None, the default lane.
    lane: str | None = None

    @classmethod
    def operator(cls) -> Principal:
        return cls(OPERATOR)

    @classmethod
    def client(cls, tenant_id: str, role: str, key_id: str | None = None, lane: str | None = None) -> Principal:
        return cls(CLIENT, tenant_id=tenant_id, role=role, key_id=key_id, lane=lane)

    @classmethod
    def provider(cls, provider_id: str, key_id: str | None = None, lane: str | None = None) -> Principal:
        return cls(PROVIDER_ITSELF, provider_id=provider_id, key_id=key_id, lane=lane)

    @property
    def budget_key(self) -> str:
        """Whose request budget a request spends: the organisation's, the provider's or the operator's, never one
        key's (an owner may issue keys, each would otherwise come with a budget of its own)."""
        return self.actor

    @property
    def actor(self) -> str:
        """How the principal is named where the services record who did something."""
        if self.kind == CLIENT:
            return f"client:{self.tenant_id}"
        if self.kind == PROVIDER_ITSELF:
            return f"provider:{self.provider_id}"
        return OPERATOR


def bearer_key(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header; 401 when there is none."""
    if not authorization:
        raise Unauthorized("Send an API key: Authorization: Bearer <key>.")
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        raise Unauthorized("The Authorization header must be 'Bearer <key>'.")
    return key


KeyLookup = Callable[[str], dict | None]


def identify(key: str, operator_key: str, clients: KeyLookup, providers: KeyLookup) -> Principal:
    """The principal a key stands for; 401 for a key nobody issued."""
    if hmac.compare_digest(key.encode(), operator_key.encode()):
        return Principal.operator()
    kind = apikeys.kind_of(key)
    if kind == apikeys.CLIENT:
        found = clients(key)
        if found:
            # A key without a role is refused rather than guessed: every client key the key ring issues has one.
            if found.get("role") not in apikeys.CLIENT_ROLES:
                raise Unauthorized("The API key is not valid.")
            return Principal.client(found["tenant_id"], found["role"], found.get("key_id"), found.get("lane"))
    elif kind == apikeys.PROVIDER:
        found = providers(key)
        if found:
            return Principal.provider(found["provider_id"], found.get("key_id"), found.get("lane"))
    raise Unauthorized("The API key is not valid.")


def authorize(principal: Principal, route: Route, path_values: dict[str, str]) -> None:
    """403 for a caller (kind, and a client's role) the route does not serve; 404 past its own tenant or profile."""
    if not admits(route.who, principal.kind, principal.role):
        caller = f"client {principal.role} key" if principal.kind == CLIENT else principal.kind
        raise Forbidden(f"A {caller} may not call {route.method} {route.path}.")
    # On /providers/{provider_id} a provider reaches only its own profile; on /tenants/{tenant_id} a client only its
    # own organisation. Elsewhere (postings, invitations, proposals) the owning service answers 404 for what is
    # not the caller's own.
    if (principal.kind == PROVIDER_ITSELF and "provider_id" in path_values
            and path_values["provider_id"] != principal.provider_id):
        raise NotFound("No such provider.")
    if principal.kind == CLIENT and "tenant_id" in path_values and path_values["tenant_id"] != principal.tenant_id:
        raise NotFound("No such tenant.")


class RequestBudget:
    """Each caller's requests (``Principal.budget_key``) in a moving window; ``spend`` raises 429 (with the seconds
    to wait) past the limit."""

    def __init__(self, limit: str, storage_uri: str = "memory://"):
        self.limit = None if limit.strip().lower() in ("", "off", "0") else parse_limit(limit)
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri)) if self.limit else None

    def spend(self, principal: Principal) -> None:
        if self.limiter is None or self.limiter.hit(self.limit, principal.budget_key):
            return
        reset_at, _ = self.limiter.get_window_stats(self.limit, principal.budget_key)
        wait = max(1, math.ceil(reset_at - time.time()))
        raise TooManyRequests(
            f"{principal.actor} made more than {self.limit} requests, with all its keys; retry in {wait} s.",
            {"retry_after_seconds": wait, "limit": str(self.limit)},
        )


class Authentication(DependencyProvider):
    """Gives each worker an ``Authenticator``; the gateway refuses to start without an operator key."""

    # The same shared listener RpcProxy uses: key lookups are ordinary RPC calls of this worker.
    rpc_reply_listener = ReplyListener()

    def setup(self) -> None:
        config = self.container.config
        self.operator_key = str(config.get("OPERATOR_KEY") or "")
        if not self.operator_key:
            raise ConfigurationError("OPERATOR_KEY is empty: the gateway will not start without an operator key")
        self.timeout = float(config.get("RPC_TIMEOUT_SECONDS", 30))
        self.budget = RequestBudget(str(config.get("RATE_LIMIT", DEFAULT_RATE_LIMIT)),
                                    str(config.get("RATE_LIMIT_STORAGE") or "memory://"))

    def get_dependency(self, worker_ctx) -> Authenticator:
        def lookup(service: str) -> KeyLookup:
            proxy = ServiceProxy(worker_ctx, service, self.rpc_reply_listener)
            return lambda key: call_with_timeout(proxy.authenticate, key, timeout=self.timeout)

        return Authenticator(self.operator_key, clients=lookup("postings"), providers=lookup("providers"),
                             budget=self.budget)


class Authenticator:
    def __init__(self, operator_key: str, clients: KeyLookup, providers: KeyLookup, budget: RequestBudget):
        self._operator_key = operator_key
        self._clients = clients
        self._providers = providers
        self._budget = budget

    def identify(self, authorization: str | None) -> Principal:
        """Who calls (401 for no key or a dead one), once it has budget left (429 otherwise)."""
        principal = identify(bearer_key(authorization), self._operator_key, self._clients, self._providers)
        self._budget.spend(principal)
        return principal

    @staticmethod
    def authorize(principal: Principal, route: Route, path_values: dict[str, str]) -> None:
        authorize(principal, route, path_values)
