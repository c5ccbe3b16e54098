"""A tenant's own RabbitMQ user: what an enterprise integrator connects with.

``grant`` creates (or re-keys) the user named after the tenant id and gives it exactly this, on the platform's
vhost, through the RabbitMQ management HTTP API:

- **configure** ``^<tenant>\\..*``: it may declare and delete only queues named with its own prefix;
- **write** its own queues (needed to bind them) and the inbound exchange;
- **read** its own queues and the tenant feed exchange;
- **topic permissions**: on the feed it may bind only keys that start with ``<tenant>.``; on the inbound exchange it
  may publish only keys that start with ``<tenant>.``.

So it can neither read another tenant's events (a binding under another prefix, or on an internal exchange, is
refused and the broker closes the channel) nor publish to the platform's internal exchanges; and because the user
name *is* the tenant id, RabbitMQ's own ``user_id`` validation ties every inbound command to its tenant.

``revoke`` deletes the user and closes its open connections: one command, effective at once.

A provider integrates the same way, as the user named by its provider id (``prv_…``): its prefix carries the
outcomes of the commands it sends (time entries, for instance).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass
from urllib.parse import quote, unquote, urlsplit

import requests

from shared.topology import FEED_EXCHANGE, INBOUND_EXCHANGE

# A client organisation (tenant) or a provider: each integrates as its own broker user named by its id.
PARTY_ID = re.compile(r"^(ten|prv)_[0-9a-f]{32}$")


class BrokerAdminError(RuntimeError):
    pass


@dataclass(frozen=True)
class TenantCredentials:
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


class BrokerAdmin:
    """The RabbitMQ management HTTP API, with the credentials and vhost of the platform's AMQP URI."""

    def __init__(self, management_url: str, amqp_uri: str, timeout: float = 10.0):
        parts = urlsplit(amqp_uri)
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
                "it needs the rabbitmq_management plugin (compose's rabbitmq image has it)") from exc
        if response.status_code not in ok:
            raise BrokerAdminError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response

    @property
    def _vhost(self) -> str:
        return quote(self.vhost, safe="")

    def grant(self, tenant_id: str, password: str | None = None) -> TenantCredentials:
        """Create the tenant's user (a new password each time: granting again re-keys it) with its rights."""
        if not PARTY_ID.match(tenant_id or ""):
            raise BrokerAdminError(f"not a tenant or provider id: {tenant_id!r} (expected ten_ or prv_ and 32 hex "
                                   "digits)")
        password = password or secrets.token_urlsafe(32)
        user = quote(tenant_id, safe="")
        rights = permissions_for(tenant_id)
        self._call("PUT", f"/users/{user}", {"password": password, "tags": ""})
        self._call("PUT", f"/permissions/{self._vhost}/{user}", rights["permissions"])
        for topic in rights["topic_permissions"]:
            self._call("PUT", f"/topic-permissions/{self._vhost}/{user}", topic)
        return TenantCredentials(username=tenant_id, password=password, vhost=self.vhost,
                                 feed_exchange=FEED_EXCHANGE, inbound_exchange=INBOUND_EXCHANGE,
                                 key_prefix=f"{tenant_id}.")

    def revoke(self, tenant_id: str) -> dict:
        """Delete the tenant's user and close its connections. Returns what was done; revoking twice is harmless."""
        user = quote(tenant_id, safe="")
        deleted = self._call("DELETE", f"/users/{user}", ok=(200, 204, 404)).status_code != 404
        closed = 0
        for connection in self._call("GET", "/connections").json():
            if connection.get("user") == tenant_id:
                self._call("DELETE", f"/connections/{quote(connection['name'], safe='')}", ok=(200, 204, 404),
                           headers={"X-Reason": "TaskLINKr: tenant access revoked"})
                closed += 1
        return {"user_deleted": deleted, "connections_closed": closed}

    def users(self) -> list[str]:
        return [u["name"] for u in self._call("GET", "/users").json() if PARTY_ID.match(u["name"])]
