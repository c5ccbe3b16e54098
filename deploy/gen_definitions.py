"""Write deploy/rabbitmq/definitions.json (the broker's topology) and, for a deployment, its users.

    python deploy/gen_definitions.py            # rewrite the committed topology from contracts-schema/catalog.json
    python deploy/gen_definitions.py --check    # exit 1 when the committed file is stale
    python deploy/gen_definitions.py --users passwords.json --output /secure/definitions.json

Exchanges, queues and bindings come from ``shared.runtime.topology.declarations``: the very objects
``tasklinkr topology apply`` declares, so the broker boots with the same topology (a redeclaration with other
properties would fail with PRECONDITION_FAILED).

The committed file holds no user and no password. When a definitions file is loaded at boot RabbitMQ creates no
default user either, so a deployment's file adds its users (``--users``, a JSON object user -> password, as
``deploy/gen_secrets.py`` writes it): one per service, whose permissions cover only that service's own
exchanges and queues (``service_permissions``), and the operator (administrator: topology, dead letters,
tenants' broker users). Passwords are stored as RabbitMQ's salted SHA-256 with a random salt per user.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import os
import re
import secrets
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere, not only from an installed checkout
    sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():  # importing nameko imports eventlet, which warns it is deprecated: not news
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from shared.runtime.config import SERVICES
    from shared.runtime.messaging import queue_bindings
    from shared.runtime.topology import declarations, exchange_bindings, load_catalog

OUTPUT = ROOT / "deploy" / "rabbitmq" / "definitions.json"
VHOST = "/"
# The broker users of a deployment: ``tasklinkr-<service>`` per service, and the operator's.
USER_PREFIX = "tasklinkr-"
OPERATOR_USER = "tasklinkr-operator"
# The services in compose get no topology settings (retry delays, ...) and no tasklinkr.yaml (.dockerignore keeps
# it out of the image), so the boot definitions are generated from the defaults, whatever this shell exports.
CONTAINER_ENVIRON = {"TASKLINKR_CONFIG_FILE": os.devnull}
# nameko's RPC exchange (requests and replies), and the exchanges of shared.runtime.topology that any service may use.
RPC_EXCHANGE = "nameko-rpc"
FEED_EXCHANGE = "tasklinkr.feed"
INBOUND_EXCHANGES = ("tasklinkr.inbound", "tasklinkr.inbound.unrouted",
                     *(f"tasklinkr.inbound.{lane}" for lane in ("enterprise", "smb")))
# Publishing to the default exchange (retry, dead-letter and command reply copies) is a write on this name.
DEFAULT_EXCHANGE = "amq.default"


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)), the salt 4 random
    bytes as RabbitMQ itself draws them, so two users with one password do not share a hash."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _literal(name: str) -> str:
    return name.replace(".", r"\.")


def _alternatives(names) -> str:
    return "|".join(_literal(name) for name in sorted(names))


def service_permissions(catalog: dict, service: str) -> dict:
    """configure / write / read regexes of one service's broker user: exactly what nameko and the kit declare,
    publish and consume for it.

    - its own queues: event handlers' ``evt-<source>-<type>--<service>.<method>--<lane>``, command handlers'
      ``cmd-<type>--<service>.<method>``, their ``.retry-<ms>`` delay queues, ``dlq.<service>``, its RPC queues
      ``rpc-<service>--<lane>`` and its RPC reply queues ``rpc.reply-<service>-<uuid>``;
    - exchanges it declares and publishes to: ``<service>.events`` (its outbox relay), the tenant feed, nameko's
      RPC exchange, and the default exchange (retry and dead-letter copies, command replies);
    - exchanges its queues bind to, which nameko declares again: the ``.events`` of the services it consumes
      from, the inbound exchanges when it handles commands, the RPC exchange.
    """
    svc = re.escape(service)
    sources = {e["producer"] for e in catalog["events"] for c in e.get("consumers", []) if c["service"] == service}
    handles_commands = any(c["service"] == service for c in catalog.get("commands", []))
    queues = [rf"(evt|cmd)-.+--{svc}\..+", rf"dlq\.{svc}", rf"rpc-{svc}--.+", rf"rpc\.reply-{svc}-.+"]
    # The exchanges of each source's lanes (shared.runtime.messaging): its events exchange forwards to ``.events.lanes``
    # (an exchange-to-exchange binding the consumer declares: a write on the destination), whose alternate
    # exchange is ``.events.unlaned``.
    lanes = [f"{source}.events.lanes" for source in sources]
    bound_from = [_alternatives(name for source in sources for name in (
        f"{source}.events", f"{source}.events.lanes", f"{source}.events.unlaned"))] if sources else []
    bound_from += [_alternatives(INBOUND_EXCHANGES)] if handles_commands else []
    bound_from.append(_literal(RPC_EXCHANGE))
    published_to = [_literal(f"{service}.events"), _literal(FEED_EXCHANGE)]

    consumed = [queue for queue in queues if not queue.startswith("dlq")]

    def anchored(parts) -> str:
        return "^(" + "|".join(dict.fromkeys(parts)) + ")$"

    return {
        "configure": anchored([*published_to, *bound_from, *queues]),
        # A queue is written when it is bound (besides its exchange being read); the DLQ is only published to,
        # through the default exchange.
        "write": anchored([*published_to, _literal(RPC_EXCHANGE), _literal(DEFAULT_EXCHANGE),
                           *([_alternatives(lanes)] if lanes else []), *consumed]),
        "read": anchored([*bound_from, *consumed]),
    }


def broker_users(catalog: dict) -> list[str]:
    return [*(f"{USER_PREFIX}{service}" for service in SERVICES), OPERATOR_USER]


def user_tags(user: str) -> list[str]:
    """Management tags: the operator administers (topology, dead letters, tenants' users); services get none."""
    return ["administrator"] if user == OPERATOR_USER else []


def user_permissions(catalog: dict, user: str) -> dict:
    """configure / write / read of one user of ``broker_users`` on ``VHOST``: everything for the operator, a
    service's own exchanges and queues (``service_permissions``) for a service. Compose's definitions and the
    Kubernetes ``Permission`` objects (deploy/gen_kubernetes.py) both take them from here."""
    if user == OPERATOR_USER:
        return {"configure": ".*", "write": ".*", "read": ".*"}
    return service_permissions(catalog, user.removeprefix(USER_PREFIX))


def _topology(catalog: dict) -> tuple[list, list]:
    """``shared.runtime.topology.declarations`` as the compose containers see it: no overrides, no config file."""
    if "environ" in inspect.signature(declarations).parameters:
        return declarations(catalog, environ=CONTAINER_ENVIRON)
    return declarations(catalog)


def definitions(catalog: dict, passwords: dict[str, str] | None = None) -> dict:
    """The broker's definitions: the topology, and with ``passwords`` (user -> password) every user of
    ``broker_users`` with its permissions. A user missing from ``passwords`` is an error: no default credentials."""
    exchanges, queues = _topology(catalog)
    # Queues without an exchange (delay and dead-letter queues) are reached through the default exchange,
    # which binds every queue by its name: they need no binding of their own.
    users, permissions = [], []
    if passwords is not None:
        missing = [user for user in broker_users(catalog) if not passwords.get(user)]
        if missing:
            raise ValueError(f"no password for {', '.join(missing)}")
        for user in broker_users(catalog):
            users.append({"name": user, "password_hash": password_hash(passwords[user]),
                          "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": user_tags(user)})
            permissions.append({"user": user, "vhost": VHOST, **user_permissions(catalog, user)})
    return {
        "vhosts": [{"name": VHOST}],
        "users": users,
        "permissions": permissions,
        "exchanges": [
            {
                "name": exchange.name,
                "vhost": VHOST,
                "type": exchange.type,
                "durable": exchange.durable,
                "auto_delete": exchange.auto_delete,
                "internal": False,
                "arguments": dict(exchange.arguments or {}),
            }
            for exchange in exchanges
        ],
        "queues": [
            {
                "name": queue.name,
                "vhost": VHOST,
                "durable": queue.durable,
                "auto_delete": queue.auto_delete,
                "arguments": dict(queue.queue_arguments or {}),
            }
            for queue in queues
        ],
        "bindings": [
            *({"source": source, "vhost": VHOST, "destination": destination, "destination_type": "exchange",
               "routing_key": key, "arguments": {}} for source, destination, key in exchange_bindings(catalog)),
            *({"source": exchange, "vhost": VHOST, "destination": queue.name, "destination_type": "queue",
               "routing_key": key, "arguments": arguments}
              for queue in queues for exchange, key, arguments in queue_bindings(queue)),
        ],
    }


def render(catalog: dict | None = None, passwords: dict[str, str] | None = None) -> str:
    return json.dumps(definitions(catalog or load_catalog(), passwords), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="file to write (default: %(default)s)")
    parser.add_argument("--users", type=Path, help="JSON file {user: password} of every broker user "
                        "(deploy/gen_secrets.py writes it); without it, the topology only")
    parser.add_argument("--check", action="store_true", help="only verify that --output is up to date")
    args = parser.parse_args(argv)

    passwords = json.loads(args.users.read_text()) if args.users else None
    text = render(passwords=passwords)
    if args.check:
        current = args.output.read_text() if args.output.is_file() else None
        if current != text:
            print(f"{args.output} is stale: run python deploy/gen_definitions.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
