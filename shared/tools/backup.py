"""``tasklinkr backup`` / ``tasklinkr restore``: a service's database to files and back, over pymongo.

A backup of one service is a folder ``<out>/<service>/`` with one file per collection, each document one line of
canonical MongoDB Extended JSON (exact types: Decimal128 stays Decimal128, dates stay dates, int64 stays int64),
the collection's indexes, and ``manifest.json`` (database, counts, SHA-256 of every file). The collections are read
in one snapshot session, so the copy is of one moment: an outbox event and the change it belongs to are both in
it, or neither.

A restore checks the whole backup (manifest, checksums, every line parses) before it writes anything, refuses a
database that already holds data unless told to replace it, and creates the indexes before the documents so the
unique ones hold. mongodump/mongorestore work too (deploy/README.md); this needs only the image's Python.

``tasklinkr split`` restores a backup of a service from before its cells into each cell, each cell getting the part it
holds: the service says, for every collection it has, which documents a cell keeps (``services/<service>/cells.py``,
``SPLIT``: those of its lane, those that belong to a document it keeps, or all). Everything is decided before anything
is written: a collection the service does not name, a document of no known lane, or one that belongs to no kept
document stops the split, so nothing is dropped or copied to a cell by a guess.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bson import json_util
from pymongo import MongoClient
from pymongo.database import Database

from shared.runtime import config as settings
from shared.runtime.inbox import APPLIED_EVENTS
from shared.runtime.outbox import LEGACY_OUTBOX, RELAY_LEASES, SEGMENT_PREFIX
from shared.tools import embedded
from shared.vocabulary.terms import LANES

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


def database_uri(service: str, environ: dict | None = None) -> str:
    """The URI of a service's (or a cell's) database server: its setting, else the embedded server ``make run``
    starts for the service (one per service, ``embedded.port_for``; a cell's is its service's)."""
    return settings.get("mongo_uri", service, environ) or embedded.uri_for(
        embedded.port_for(settings.service_of(service), settings.get("embedded_db_port", environ=environ)))


def client_for(service: str) -> MongoClient:
    return MongoClient(database_uri(service), serverSelectionTimeoutMS=5000, tz_aware=True)


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
    _manifest, documents, indexes = _checked(folder, service)
    return _write(client, service, documents, indexes, replace)


def _holding(database: Database) -> list[str]:
    """The collections of ``database`` that hold documents."""
    return sorted(name for name in database.list_collection_names() if not name.startswith("system.")
                  and database[name].estimated_document_count())


def _refuse_data(database: Database, present: list[str]) -> None:
    if present:
        raise BackupError(f"{database.name} already holds data ({', '.join(present)}); "
                          "restore with --replace to drop it first")


def _write(client: MongoClient, service: str, documents: dict[str, list[dict]], indexes: dict[str, list[dict]],
           replace: bool) -> Restored:
    database = _database(client, service)
    present = _holding(database)
    if not replace:
        _refuse_data(database, present)
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


# -- splitting a service's database into its cells -------------------------------------------------------------


@dataclass(frozen=True)
class Keep:
    """Which documents of a collection a cell keeps: those whose ``lane_field`` names the cell's lane, those whose
    ``field`` is the ``_id`` of a document the cell keeps in ``of`` (which is split by lane), or, with neither,
    every one (the collection is copied whole into every cell)."""

    lane_field: str | None = None
    of: str | None = None
    field: str | None = None


WHOLE = Keep()
BY_LANE = Keep(lane_field="lane")


def belonging_to(collection: str, field: str) -> Keep:
    """The documents whose ``field`` is the ``_id`` of a document the cell keeps in ``collection``."""
    return Keep(of=collection, field=field)


def _platform_part(name: str) -> Keep | None:
    """Collections of the platform kit's own in every service's database: claimed event ids, the outbox and its
    relays' leases go whole into every cell (a cell's relay publishes only its lane's events)."""
    if name in (APPLIED_EVENTS, LEGACY_OUTBOX, RELAY_LEASES) or name.startswith(SEGMENT_PREFIX):
        return WHOLE
    return None


def split_rule(service: str) -> dict[str, Keep]:
    """What each of the service's cells keeps, by collection (``services/<service>/cells.py``)."""
    if service not in settings.CELL_SERVICES:
        raise BackupError(f"{service} does not run in cells (only {', '.join(settings.CELL_SERVICES)} do)")
    return dict(importlib.import_module(f"services.{service}.cells").SPLIT)


def split_documents(documents: dict[str, list[dict]], rule: dict[str, Keep]) -> dict[str, dict[str, list[dict]]]:
    """Each lane's part of a backup's ``documents`` (by collection), or ``BackupError`` naming what cannot be placed:
    a collection the rule does not name, a document of no known lane, or one that belongs to no kept document."""
    parts: dict[str, dict[str, list[dict]]] = {lane: {} for lane in LANES}
    unknown = sorted(name for name in documents if name not in rule and _platform_part(name) is None)
    if unknown:
        raise BackupError(f"the backup holds collections the split does not know: {', '.join(unknown)} "
                          "(nothing was written)")
    kept_ids: dict[str, dict[str, set]] = {}  # lane -> collection -> the _ids that lane keeps
    for name, keep in rule.items():
        if keep.of is not None and rule.get(keep.of, WHOLE).lane_field is None:
            raise ValueError(f"{name} belongs to {keep.of}, which is not split by lane")
    ordered = sorted(documents, key=lambda name: (rule.get(name, WHOLE).of is not None, name))
    for name in ordered:
        keep = rule.get(name) or _platform_part(name)
        for lane in LANES:
            parts[lane][name] = []
        if keep.lane_field is None and keep.of is None:
            for lane in LANES:
                parts[lane][name] = list(documents[name])
            continue
        misplaced = []
        for document in documents[name]:
            if keep.lane_field is not None:
                lane = document.get(keep.lane_field)
                lanes = [lane] if lane in LANES else []
            else:
                owner = document.get(keep.field)
                lanes = [lane for lane in LANES if owner in kept_ids.get(lane, {}).get(keep.of, ())]
            if len(lanes) != 1:
                misplaced.append(document.get("_id"))
                continue
            parts[lanes[0]][name].append(document)
            kept_ids.setdefault(lanes[0], {}).setdefault(name, set()).add(document["_id"])
        if misplaced:
            reason = (f"no lane in {keep.lane_field!r} ({', '.join(LANES)})" if keep.lane_field is not None
                      else f"its {keep.field!r} is no {keep.of} document's")
            raise BackupError(f"{len(misplaced)} document(s) of {name} belong to no cell: {reason} "
                              f"(first: {misplaced[:3]}; nothing was written)")
    return parts


def split(service: str, folder: Path, *, replace: bool = False) -> list[Restored]:
    """Restore ``folder`` (a backup's ``<service>/`` folder, of the service before its cells) into each cell, each
    with its part. The cells must be databases of their own; every part is worked out before any cell is written."""
    rule = split_rule(service)
    cells = [f"{service}-{lane}" for lane in LANES]
    places = {(database_uri(cell), settings.get("mongo_database", cell)) for cell in cells}
    if len(places) < len(cells):
        raise BackupError(f"{service}'s cells are one database here: give each cell a URI (or database) of its own "
                          f"({', '.join(settings.env_name('mongo_uri', cell) for cell in cells)}) before splitting")
    _manifest, documents, indexes = _checked(folder, service)
    parts = split_documents(documents, rule)
    with ExitStack() as stack:
        clients = {cell: stack.enter_context(client_for(cell)) for cell in cells}
        if not replace:  # a cell holding data stops the split before any cell is written
            for cell, client in clients.items():
                database = _database(client, cell)
                _refuse_data(database, _holding(database))
        return [_write(clients[cell], cell, parts[lane], indexes, replace)
                for lane, cell in zip(LANES, cells, strict=True)]
