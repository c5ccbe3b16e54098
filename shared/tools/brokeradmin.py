"""A tenant's own RabbitMQ user: what an enterprise integrator connects with.

``grant`` creates (or re-keys) the user named after the tenant id and gives it exactly this, on the platform's
vhost, through the RabbitMQ management HTTP API:

- **configure** ``^<tenant>\\..*``: it may declare and delete only queues (and, as RabbitMQ cannot tell them apart
  by name, exchanges) named with its own prefix;
- **write** its own queues (needed to bind them) and the inbound exchange;
- **read** its own queues and the tenant feed exchange;
- **topic permissions**: on the feed it may bind only keys that start with ``<tenant>.``; on the inbound exchange it
  may publish only keys that start with ``<tenant>.``.

So it can neither read another tenant's events (a binding under another prefix, or on an internal exchange, is
refused and the broker closes the channel) nor publish to the platform's internal exchanges; and because the user
name *is* the tenant id, RabbitMQ's own ``user_id`` validation ties every inbound command to its tenant.

Each user also gets limits (``USER_LIMITS``: connections and channels), and every queue named like a tenant's
(``<tenant>.*``) an operator policy (``TENANT_QUEUE_POLICY``: a length cap, a byte cap and a message TTL, which a
queue's own arguments can lower but never raise), so an unread tenant queue cannot grow without bound into a broker
memory or disk alarm that would block the platform. (RabbitMQ cannot cap the number of queues per user: the
sweep, ``shared.tools.tenantsweep``, does.)

What the permissions cannot refuse: RabbitMQ checks a binding's destination with the *write* permission, the same
that publishing needs, so a user that may publish commands to the inbound exchange may also bind an exchange of its
own (or the feed, under its own keys) to it, or dead-letter its queues into it. Such routes only carry what the tenant
published itself (its ``user_id`` is validated by the broker) or messages without a ``user_id``, which the gateway
parks unanswered and audits (``shared.runtime.commands``); the sweep (``shared.tools.tenantsweep``, the gateway's timer)
removes them within seconds, and ``revoke`` with everything else the user declared.

``revoke`` deletes the user, closes its open connections, and deletes what it declared: its queues and exchanges
(``<tenant>.*``) with their bindings, and every binding it made into the platform's exchanges under its keys.

A provider integrates the same way, as the user named by its provider id (``prv_…``): its prefix carries the
outcomes of the commands it sends (time entries, for instance).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import quote, unquote, urlsplit

import requests

from shared.runtime.topology import FEED_EXCHANGE, INBOUND_EXCHANGE, sender_lane_binding
from shared.vocabulary.errors import DomainError, NotFound
from shared.vocabulary.terms import lane_of

# A client organisation (tenant) or a provider: each integrates as its own broker user named by its id.
PARTY_ID = re.compile(r"^(ten|prv)_[0-9a-f]{32}$")
TENANT_QUEUE_PATTERN = r"^(ten|prv)_[0-9a-f]{32}\."


class BrokerAdminError(RuntimeError):
    pass


# Per broker user. RabbitMQ has no per-user queue count (``max-queues`` is per vhost); the queue policy below caps
# what each queue may hold instead.
USER_LIMITS = {"max-connections": 5, "max-channels": 20}
TENANT_QUEUE_POLICY = "tasklinkr-tenant-queues"
TENANT_QUEUE_LIMITS = {"max-length": 100_000, "max-length-bytes": 256 * 1024 * 1024,
                       "message-ttl": 7 * 24 * 3600 * 1000}


@dataclass(frozen=True)
class TenantCredentials:
    host: str
    port: int
    tls: bool
    username: str
    password: str
    vhost: str
    feed_exchange: str
    inbound_exchange: str
    key_prefix: str

    def as_dict(self) -> dict:
        return asdict(self)


def permissions_for(tenant_id: str) -> dict:
    """The vhost permissions and topic permissions a tenant's user gets (regular expressions, as RabbitMQ takes)."""
    own = re.escape(tenant_id) + r"\."
    return {
        "permissions": {
            "configure": f"^{own}.*",
            "write": f"^({own}.*|{re.escape(INBOUND_EXCHANGE)})$",
            "read": f"^({own}.*|{re.escape(FEED_EXCHANGE)})$",
        },
        "topic_permissions": [
            {"exchange": FEED_EXCHANGE, "read": f"^{own}", "write": "^$"},
            {"exchange": INBOUND_EXCHANGE, "read": "^$", "write": f"^{own}"},
        ],
    }


def platform_knows(amqp_uri: str, timeout: float = 10.0) -> Callable[[str], str | bool]:
    """``known(id)`` for ``grant``: asks postings about a tenant id, providers about a provider id, over RPC, and
    answers the sender's lane (``shared.vocabulary.lane_of``: a tenant's segment, a provider's kind), or False."""

    def known(party_id: str) -> str | bool:
        from nameko.exceptions import RemoteError
        from nameko.standalone.rpc import ServiceRpcProxy

        service, method = ("providers", "get") if party_id.startswith("prv_") else ("postings", "get_tenant")
        try:
            with ServiceRpcProxy(service, {"AMQP_URI": amqp_uri}, timeout=timeout) as proxy:
                party = getattr(proxy, method)(party_id)
        except NotFound:
            return False
        except (DomainError, RemoteError) as exc:
            raise BrokerAdminError(f"{service} could not say whether {party_id} exists: {exc}") from exc
        except Exception as exc:  # a timeout, no broker: grant nothing rather than guess
            raise BrokerAdminError(f"{service} did not answer whether {party_id} exists ({exc!r}); is the "
                                   "platform running?") from exc
        if party_id.startswith("prv_"):
            return lane_of(provider_kind=party["kind"]).value
        return lane_of(segment=party["segment"]).value

    return known


class BrokerAdmin:
    """The RabbitMQ management HTTP API, with the credentials and vhost of the platform's AMQP URI."""

    def __init__(self, management_url: str, amqp_uri: str, timeout: float = 10.0, tenant_broker_url: str = ""):
        """``tenant_broker_url``: where tenants' systems reach the broker (``amqps://…`` for TLS), when that is not
        where the platform does (``amqp_uri``): what ``grant`` prints."""
        parts = urlsplit(amqp_uri)
        public = urlsplit(tenant_broker_url or amqp_uri)
        self.tls = public.scheme == "amqps"
        self.host = public.hostname or "127.0.0.1"
        self.port = public.port or (5671 if self.tls else 5672)
        self.base = management_url.rstrip("/") + "/api"
        self.auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        self.vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.timeout = timeout

    def _call(self, method: str, path: str, json: dict | None = None, ok=(200, 201, 204), **kwargs):
        try:
            response = requests.request(method, self.base + path, json=json, auth=self.auth, timeout=self.timeout,
                                        **kwargs)
        except requests.RequestException as exc:
            raise BrokerAdminError(
                f"RabbitMQ management API not reachable at {self.base} ({exc.__class__.__name__}); "
                "it needs the rabbitmq_management plugin: on a local broker run `sudo rabbitmq-plugins enable "
                "rabbitmq_management` (compose's rabbitmq image has it), or set TASKLINKR_RABBITMQ_MANAGEMENT_URL"
            ) from exc
        if response.status_code not in ok:
            raise BrokerAdminError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response

    @property
    def _vhost(self) -> str:
        return quote(self.vhost, safe="")

    def grant(self, tenant_id: str, password: str | None = None,
              known: Callable[[str], str | bool] | None = None) -> TenantCredentials:
        """Create the tenant's user (a new password each time: granting again re-keys it) with its rights and
        limits. ``known(id)`` says whether the platform knows the tenant or provider (one it does not is refused)
        and may answer its lane: the sender's commands are then routed to that lane's queues
        (``shared.runtime.topology.sender_lane_binding``), while the sender publishes to the inbound exchange as
        ever."""
        if not PARTY_ID.match(tenant_id or ""):
            raise BrokerAdminError(f"not a tenant or provider id: {tenant_id!r} (expected ten_ or prv_ and 32 hex "
                                   "digits)")
        found = known(tenant_id) if known is not None else True
        if not found:
            raise BrokerAdminError(f"no tenant or provider {tenant_id} on this platform")
        lane_binding = sender_lane_binding(tenant_id, found) if isinstance(found, str) else None
        if lane_binding:
            source, destination, key = lane_binding
            self._call("POST", f"/bindings/{self._vhost}/e/{quote(source, safe='')}/e/{quote(destination, safe='')}",
                       {"routing_key": key})
        password = password or secrets.token_urlsafe(32)
        user = quote(tenant_id, safe="")
        rights = permissions_for(tenant_id)
        self._call("PUT", f"/operator-policies/{self._vhost}/{TENANT_QUEUE_POLICY}", {
            "pattern": TENANT_QUEUE_PATTERN, "definition": TENANT_QUEUE_LIMITS, "apply-to": "queues",
            "priority": 0})
        self._call("PUT", f"/users/{user}", {"password": password, "tags": ""})
        for name, value in USER_LIMITS.items():
            self._call("PUT", f"/user-limits/{user}/{name}", {"value": value})
        self._call("PUT", f"/permissions/{self._vhost}/{user}", rights["permissions"])
        for topic in rights["topic_permissions"]:
            self._call("PUT", f"/topic-permissions/{self._vhost}/{user}", topic)
        return TenantCredentials(host=self.host, port=self.port, tls=self.tls, username=tenant_id,
                                 password=password, vhost=self.vhost, feed_exchange=FEED_EXCHANGE,
                                 inbound_exchange=INBOUND_EXCHANGE, key_prefix=f"{tenant_id}.")

    def revoke(self, tenant_id: str) -> dict:
        """Delete the tenant's user, close its connections and delete what it declared. Returns what was done;
        revoking twice is harmless."""
        if not PARTY_ID.match(tenant_id or ""):
            raise BrokerAdminError(f"not a tenant or provider id: {tenant_id!r}")
        user = quote(tenant_id, safe="")
        deleted = self._call("DELETE", f"/users/{user}", ok=(200, 204, 404)).status_code != 404
        # By the broker's own connection tracking, not the statistics behind /connections, which lag seconds
        # behind: a connection opened just before would be missed.
        closed = len(self._call("GET", f"/connections/username/{user}").json())
        self._call("DELETE", f"/connections/username/{user}", ok=(200, 204, 404),
                   headers={"X-Reason": "TaskLINKr: tenant access revoked"})
        return {"user_deleted": deleted, "connections_closed": closed, **self._remove_declared(tenant_id)}

    def _remove_declared(self, tenant_id: str) -> dict:
        """The tenant's queues and exchanges (bindings go with them), then its bindings between platform
        exchanges (the feed bound to the inbound exchange under its keys, say)."""
        own = f"{tenant_id}."
        removed = {"queues_deleted": 0, "exchanges_deleted": 0, "bindings_deleted": 0}
        for kind, counter in (("queues", "queues_deleted"), ("exchanges", "exchanges_deleted")):
            for resource in self.listing(kind):
                if resource["name"].startswith(own):
                    self.delete(kind, resource["name"])
                    removed[counter] += 1
        for binding in self.listing("bindings"):
            if binding["destination_type"] == "exchange" and binding["routing_key"].startswith(own):
                self.delete_binding(binding)
                removed["bindings_deleted"] += 1
        return removed

    def listing(self, kind: str) -> list[dict]:
        """The vhost's ``queues``, ``exchanges`` or ``bindings``, as the management API describes them."""
        return self._call("GET", f"/{kind}/{self._vhost}").json()

    def delete(self, kind: str, name: str) -> None:
        """Delete a queue or exchange (with its bindings); one already gone is no error."""
        self._call("DELETE", f"/{kind}/{self._vhost}/{quote(name, safe='')}", ok=(200, 204, 404))

    def delete_binding(self, binding: dict) -> None:
        """Delete one binding as ``listing("bindings")`` describes it; one already gone is no error."""
        destination = "e" if binding["destination_type"] == "exchange" else "q"
        self._call("DELETE", f"/bindings/{self._vhost}/e/{quote(binding['source'], safe='')}/{destination}/"
                             f"{quote(binding['destination'], safe='')}/"
                             f"{quote(binding['properties_key'], safe='')}", ok=(200, 204, 404))

    def users(self) -> list[str]:
        return [u["name"] for u in self._call("GET", "/users").json() if PARTY_ID.match(u["name"])]
