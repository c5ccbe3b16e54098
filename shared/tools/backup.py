"""``tasklinkr backup`` / ``tasklinkr restore``: a service's database to files and back, over pymongo.

A backup of one service is a folder ``<out>/<service>/`` with one file per collection, each document one line of
canonical MongoDB Extended JSON (exact types: Decimal128 stays Decimal128, dates stay dates, int64 stays int64),
the collection's indexes, and ``manifest.json`` (database, counts, SHA-256 of every file). The collections are read
in one snapshot session, so the copy is of one moment: an outbox event and the change it belongs to are both in
it, or neither.

A restore checks the whole backup (manifest, checksums, every line parses) before it writes anything, refuses a
database that already holds data unless told to replace it, and creates the indexes before the documents so the
unique ones hold. mongodump/mongorestore work too (deploy/README.md); this needs only the image's Python.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bson import json_util
from pymongo import MongoClient
from pymongo.database import Database

from shared.runtime import config as settings
from shared.tools import embedded

FORMAT = "tasklinkr-backup/1"
MANIFEST = "manifest.json"
BATCH = 1000
_JSON = json_util.CANONICAL_JSON_OPTIONS


class BackupError(Exception):
    """A backup that cannot be restored as it is, or a database a restore must not overwrite."""


@dataclass(frozen=True)
class Restored:
    service: str
    database: str
    documents: dict[str, int]


def _database(client: MongoClient, service: str) -> Database:
    return client[settings.get("mongo_database", service)]


def client_for(service: str) -> MongoClient:
    uri = settings.get("mongo_uri", service) or embedded.uri_for(settings.get("embedded_db_port"))
    return MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup(client: MongoClient, service: str, out: Path) -> dict:
    """Write the service's database under ``out/<service>/``; returns the manifest."""
    database = _database(client, service)
    folder = out / service
    folder.mkdir(parents=True, exist_ok=False)
    collections = {}
    names = sorted(name for name in database.list_collection_names() if not name.startswith("system."))
    # Only reads take a snapshot (servers refuse it for listing collections and indexes).
    with client.start_session(snapshot=True) as session:
        for name in names:
            documents = folder / f"{name}.jsonl"
            count = 0
            with documents.open("w", encoding="utf-8") as fh:
                for document in database[name].find({}, session=session).sort("_id", 1):
                    fh.write(json_util.dumps(document, json_options=_JSON) + "\n")
                    count += 1
            indexes = [index for index in database[name].list_indexes() if index["name"] != "_id_"]
            (folder / f"{name}.indexes.json").write_text(json_util.dumps(indexes, json_options=_JSON, indent=1))
            collections[name] = {"documents": count, "sha256": _sha256(documents),
                                 "indexes_sha256": _sha256(folder / f"{name}.indexes.json")}
    manifest = {"format": FORMAT, "service": service, "database": database.name,
                "taken_at": datetime.now(UTC).isoformat(), "collections": collections}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _checked(folder: Path, service: str) -> tuple[dict, dict[str, list[dict]], dict[str, list[dict]]]:
    """The manifest, documents and indexes of a backup, every file checked against the manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder}: no readable {MANIFEST} ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("service") != service:
        raise BackupError(f"{folder} is not a backup of {service} ({manifest.get('format')}, "
                          f"{manifest.get('service')})")
    documents, indexes = {}, {}
    for name, expected in manifest["collections"].items():
        data, index_file = folder / f"{name}.jsonl", folder / f"{name}.indexes.json"
        for path, digest in ((data, expected["sha256"]), (index_file, expected["indexes_sha256"])):
            if not path.is_file() or _sha256(path) != digest:
                raise BackupError(f"{path.name} is missing or does not match the manifest (changed or truncated)")
        with data.open(encoding="utf-8") as fh:
            documents[name] = [json_util.loads(line, json_options=_JSON) for line in fh if line.strip()]
        if len(documents[name]) != expected["documents"]:
            raise BackupError(f"{data.name}: {len(documents[name])} documents, the manifest says "
                              f"{expected['documents']}")
        indexes[name] = json_util.loads(index_file.read_text(), json_options=_JSON)
    return manifest, documents, indexes


def restore(client: MongoClient, service: str, folder: Path, *, replace: bool = False) -> Restored:
    """Restore ``folder`` (a backup's ``<service>/`` folder) into the service's database."""
    manifest, documents, indexes = _checked(folder, service)
    database = _database(client, service)
    present = [name for name in database.list_collection_names() if not name.startswith("system.")
               and database[name].estimated_document_count()]
    if present and not replace:
        raise BackupError(f"{database.name} already holds data ({', '.join(sorted(present))}); "
                          "restore with --replace to drop it first")
    for name in present if replace else ():
        database.drop_collection(name)
    for name, specs in indexes.items():
        collection = database[name]
        for spec in specs:
            options = {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
            collection.create_index(list(spec["key"].items()), **options)
        for start in range(0, len(documents[name]), BATCH):
            collection.insert_many(documents[name][start:start + BATCH], ordered=True)
    return Restored(service, database.name, {name: len(docs) for name, docs in documents.items()})
