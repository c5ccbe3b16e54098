"""Write deploy/rabbitmq/definitions.json, the broker definitions RabbitMQ loads at boot in docker compose.

    python deploy/gen_definitions.py            # rewrite the committed file from contracts-schema/catalog.json
    python deploy/gen_definitions.py --check    # exit 1 when the committed file is stale
    python deploy/gen_definitions.py --user ops --password s3cret --output /secure/definitions.json

Exchanges, queues and bindings come from ``shared.topology.declarations``: the very objects
``tasklinkr topology apply`` declares, so the broker boots with the same topology (a redeclaration with other
properties would fail with PRECONDITION_FAILED).

When a definitions file is loaded at boot RabbitMQ creates no default user (RABBITMQ_DEFAULT_USER/PASS and
``default_user`` are ignored), so the file carries the platform's user. The committed file holds the
development credentials ``tasklinkr``/``tasklinkr``; for anything else generate a file of your own with
``--user/--password`` and point ``TASKLINKR_RABBITMQ_DEFINITIONS`` at it (see deploy/README.md).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere, not only from an installed checkout
    sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():  # importing nameko imports eventlet, which warns it is deprecated: not news
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from shared.topology import declarations, load_catalog

OUTPUT = ROOT / "deploy" / "rabbitmq" / "definitions.json"
VHOST = "/"
DEV_USER = "tasklinkr"
DEV_PASSWORD = "tasklinkr"
# The services in compose get no topology settings (retry delays, ...) and no tasklinkr.yaml (.dockerignore keeps
# it out of the image), so the boot definitions are generated from the defaults, whatever this shell exports.
CONTAINER_ENVIRON = {"TASKLINKR_CONFIG_FILE": os.devnull}


def password_hash(user: str, password: str) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)).

    The salt is derived from the user name instead of drawn at random so that the generated file is
    reproducible (the drift test compares it byte for byte); the hash still never contains the password.
    """
    salt = hashlib.sha256(f"tasklinkr-definitions:{user}".encode()).digest()[:4]
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _topology(catalog: dict) -> tuple[list, list]:
    """``shared.topology.declarations`` as the compose containers see it: no overrides, no config file."""
    if "environ" in inspect.signature(declarations).parameters:
        return declarations(catalog, environ=CONTAINER_ENVIRON)
    return declarations(catalog)


def definitions(catalog: dict, user: str = DEV_USER, password: str = DEV_PASSWORD) -> dict:
    exchanges, queues = _topology(catalog)
    # Queues without an exchange (delay and dead-letter queues) are reached through the default exchange,
    # which binds every queue by its name: they need no binding of their own.
    bound = [queue for queue in queues if queue.exchange is not None and queue.exchange.name]
    return {
        "vhosts": [{"name": VHOST}],
        "users": [
            {
                "name": user,
                "password_hash": password_hash(user, password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
            }
        ],
        "permissions": [{"user": user, "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"}],
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
            {
                "source": queue.exchange.name,
                "vhost": VHOST,
                "destination": queue.name,
                "destination_type": "queue",
                "routing_key": queue.routing_key,
                "arguments": dict(queue.binding_arguments or {}),
            }
            for queue in bound
        ],
    }


def render(catalog: dict | None = None, user: str = DEV_USER, password: str = DEV_PASSWORD) -> str:
    return json.dumps(definitions(catalog or load_catalog(), user, password), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="file to write (default: %(default)s)")
    parser.add_argument("--user", default=DEV_USER, help="broker user the services connect as")
    parser.add_argument("--password", default=DEV_PASSWORD, help="that user's password (stored only hashed)")
    parser.add_argument("--check", action="store_true", help="only verify that --output is up to date")
    args = parser.parse_args(argv)

    text = render(user=args.user, password=args.password)
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
