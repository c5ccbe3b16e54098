"""Who is calling: bearer keys to principals, and the route table's "who" to 401 / 403 / 404.

The operator key is configuration; client and provider keys belong to the postings and providers services, which
alone can tell whether a key is live (the gateway stores nothing). A principal asking for another provider's
resource gets 404, never 403, so the answer does not reveal that the resource exists.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from nameko.exceptions import ConfigurationError
from nameko.extensions import DependencyProvider
from nameko.rpc import ReplyListener, ServiceProxy

from services.gateway.dependencies import call_with_timeout
from services.gateway.routes import CLIENT, OPERATOR, PROVIDER_ITSELF, Route
from shared import apikeys
from shared.errors import Forbidden, NotFound, Unauthorized


@dataclass(frozen=True)
class Principal:
    kind: str
    tenant_id: str | None = None
    role: str | None = None
    provider_id: str | None = None

    @classmethod
    def operator(cls) -> Principal:
        return cls(OPERATOR)

    @classmethod
    def client(cls, tenant_id: str, role: str) -> Principal:
        return cls(CLIENT, tenant_id=tenant_id, role=role)

    @classmethod
    def provider(cls, provider_id: str) -> Principal:
        return cls(PROVIDER_ITSELF, provider_id=provider_id)

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
            return Principal.client(found["tenant_id"], found.get("role") or "owner")
    elif kind == apikeys.PROVIDER:
        found = providers(key)
        if found:
            return Principal.provider(found["provider_id"])
    raise Unauthorized("The API key is not valid.")


def authorize(principal: Principal, route: Route, path_values: dict[str, str]) -> None:
    """403 for a kind of caller the route does not serve; 404 for a provider reaching past its own profile."""
    if principal.kind not in route.who:
        raise Forbidden(f"A {principal.kind} may not call {route.method} {route.path}.")
    # On /providers/{provider_id} a provider reaches only its own profile. Elsewhere (its invitations, its
    # proposals) it acts as itself and the owning service answers 404 for what is not its own.
    if (principal.kind == PROVIDER_ITSELF and "provider_id" in path_values
            and path_values["provider_id"] != principal.provider_id):
        raise NotFound("No such provider.")


class Authentication(DependencyProvider):
    """Gives each worker an ``Authenticator``; the gateway refuses to start without an operator key."""

    # The same shared listener RpcProxy uses: key lookups are ordinary RPC calls of this worker.
    rpc_reply_listener = ReplyListener()

    def setup(self) -> None:
        self.operator_key = str(self.container.config.get("OPERATOR_KEY") or "")
        if not self.operator_key:
            raise ConfigurationError("OPERATOR_KEY is empty: the gateway will not start without an operator key")
        self.timeout = float(self.container.config.get("RPC_TIMEOUT_SECONDS", 30))

    def get_dependency(self, worker_ctx) -> Authenticator:
        def lookup(service: str) -> KeyLookup:
            proxy = ServiceProxy(worker_ctx, service, self.rpc_reply_listener)
            return lambda key: call_with_timeout(proxy.authenticate, key, timeout=self.timeout)

        return Authenticator(self.operator_key, clients=lookup("postings"), providers=lookup("providers"))


class Authenticator:
    def __init__(self, operator_key: str, clients: KeyLookup, providers: KeyLookup):
        self._operator_key = operator_key
        self._clients = clients
        self._providers = providers

    def require(self, authorization: str | None, route: Route, path_values: dict[str, str]) -> Principal:
        principal = identify(bearer_key(authorization), self._operator_key, self._clients, self._providers)
        authorize(principal, route, path_values)
        return principal
