"""Make the secrets a docker compose deployment of TaskLINKr reads (deploy/README.md), in a folder of their own.

    python deploy/gen_secrets.py ~/tasklinkr-secrets                  # once per host; keeps what exists
    python deploy/gen_secrets.py ~/tasklinkr-secrets --hostname broker.example.com   # names tenants connect to
    export TASKLINKR_SECRETS_DIR=~/tasklinkr-secrets

Every password is drawn at random here and never leaves the folder (mode 0700): the broker user of each service
and of the operator, each database's root and service user, the operator API key, Grafana's admin. A file
that exists is kept, so running it again adds only what is missing; delete a file to rotate it (then
recreate the containers that read it). It also makes a private CA and the TLS certificates of the broker, the
databases and the HTTPS proxy (with ``openssl``), and the broker's definitions file carrying the users (hashed
with random salts, see gen_definitions.py).

Files are 0644 inside the 0700 folder: compose bind-mounts each secret into containers whose processes run as
their own users (rabbitmq, mongodb, tasklinkr), which must read them; the folder keeps other host users out.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script from anywhere: its sibling generator is a script too
    sys.path.insert(0, str(HERE))

import gen_definitions  # noqa: E402

from shared.runtime.config import CELL_SERVICES, DATA_SERVICES, service_of  # noqa: E402
from shared.vocabulary.terms import LANES  # noqa: E402

SERVICES = gen_definitions.SERVICES
# One MongoDB per service, and per lane for a service deployed in cells (``mongo-matching-enterprise``,
# docs/operations.md, Cells): each with its own root, service and exporter users and its service's URI.
DATABASES = [database for service in DATA_SERVICES
             for database in ([f"{service}-{lane}" for lane in LANES] if service in CELL_SERVICES else [service])]
BROKER_HOST = "rabbitmq"
# The URIs of the services: TLS to the broker (5671) and to their own database, verified against the
# deployment's CA (the compose secret tls_ca; TASKLINKR_TLS_CA_FILE names it for the broker clients too); the
# single-member sets are reached directly (see docker-compose.yml).
MONGO_OPTIONS = "authSource=admin&directConnection=true&tls=true&tlsCAFile=/run/secrets/tls_ca"
CERT_DAYS = 825


def mongo_host(database: str) -> str:
    return f"mongo-{database}"


class Secrets:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)

    def path(self, name: str) -> Path:
        return self.folder / name

    def keep_or_write(self, name: str, make) -> str:
        path = self.path(name)
        if not path.exists():
            path.write_text(make())
            path.chmod(0o644)
        return path.read_text()

    def password(self, name: str) -> str:
        return self.keep_or_write(name, lambda: secrets.token_urlsafe(32)).strip()

    def write(self, name: str, text: str) -> None:
        """Derived files (URIs, definitions) are rewritten from the kept passwords on every run."""
        path = self.path(name)
        path.write_text(text)
        path.chmod(0o644)


def broker_passwords(store: Secrets) -> dict[str, str]:
    return {user: store.password(f"rabbitmq-password-{user}")
            for user in gen_definitions.broker_users(gen_definitions.load_catalog())}


def amqp_uri(user: str, password: str) -> str:
    return f"amqps://{quote(user, safe='')}:{quote(password, safe='')}@{BROKER_HOST}:5671/"


def mongo_uri(user: str, password: str, database: str) -> str:
    return f"mongodb://{quote(user, safe='')}:{quote(password, safe='')}@{mongo_host(database)}:27017/?{MONGO_OPTIONS}"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=120)


def certificates(store: Secrets, hostnames: list[str]) -> None:
    """A private CA (10 years) and one server certificate for the broker, the databases and the proxy, whose
    names are every compose host name plus ``hostnames`` (what tenants and browsers connect to)."""
    ca_key, ca_cert = store.path("tls-ca.key"), store.path("tls-ca.pem")
    if not ca_cert.exists():
        openssl("req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", "3650", "-subj", "/CN=TaskLINKr CA",
                "-keyout", str(ca_key), "-out", str(ca_cert))
        ca_key.chmod(0o600)  # signs certificates only here; no container reads it
        ca_cert.chmod(0o644)
    key, cert = store.path("tls-server.key"), store.path("tls-server.pem")
    if cert.exists():
        return
    names = ["localhost", BROKER_HOST, "proxy", *(mongo_host(d) for d in DATABASES), *hostnames]
    extensions = store.path("tls-server.ext")
    extensions.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                          "extendedKeyUsage=serverAuth\nsubjectAltName="
                          + ",".join([*(f"DNS:{name}" for name in dict.fromkeys(names)), "IP:127.0.0.1"]) + "\n")
    request = store.path("tls-server.csr")
    common_name = hostnames[0] if hostnames else BROKER_HOST
    openssl("req", "-new", "-newkey", "rsa:3072", "-nodes", "-subj", f"/CN={common_name}",
            "-keyout", str(key), "-out", str(request))
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", str(CERT_DAYS), "-extfile", str(extensions), "-out", str(cert))
    request.unlink()
    key.chmod(0o644)
    cert.chmod(0o644)
    # mongod wants the certificate and its key in one file.
    store.write("tls-server-with-key.pem", cert.read_text() + key.read_text())


def generate(folder: Path, hostnames: list[str] | None = None) -> Secrets:
    store = Secrets(folder)
    passwords = broker_passwords(store)
    store.write("broker-passwords.json", json.dumps(passwords, indent=2) + "\n")
    store.write("rabbitmq-definitions.json", gen_definitions.render(passwords=passwords))
    for user, password in passwords.items():
        store.write(f"amqp-uri-{user.removeprefix(gen_definitions.USER_PREFIX)}", amqp_uri(user, password))
    for database in DATABASES:  # a cell's service user is its service's (matching), on the cell's server
        store.password(f"mongo-root-password-{database}")  # read by its mongo container only
        own = store.password(f"mongo-password-{database}")
        exporter = store.password(f"mongo-exporter-password-{database}")
        store.write(f"mongo-uri-{database}", mongo_uri(service_of(database), own, database))
        store.write(f"mongodb-exporter-{database}.env", f"MONGODB_URI={mongo_uri('exporter', exporter, database)}\n")
    # mongod's internal-auth key: base64 characters only, at most 1024 of them.
    store.keep_or_write("mongo-keyfile", lambda: base64.b64encode(secrets.token_bytes(756)).decode() + "\n")
    store.password("operator-key")
    store.password("grafana-admin-password")
    certificates(store, hostnames or [])
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the secrets go (created 0700); TASKLINKR_SECRETS_DIR")
    parser.add_argument("--hostname", action="append", default=[],
                        help="a name the host is reached by (broker for tenants, HTTPS for clients); repeatable")
    args = parser.parse_args(argv)
    store = generate(args.folder.expanduser(), args.hostname)
    print(f"secrets in {store.folder}; export TASKLINKR_SECRETS_DIR={store.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
