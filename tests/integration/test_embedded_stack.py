"""`make run` without a MongoDB URI: one embedded database server per service, as compose runs one MongoDB each."""

import json
import os
import socket

import pytest
from pymongo import MongoClient

from shared.runtime import config
from shared.tools import embedded
from shared.tools.operations import outbox_backlog
from shared.tools.stack import Stack, StackError

pytestmark = pytest.mark.integration


def free_port_range(count: int) -> int:
    """The first of ``count`` consecutive ports that are free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count >= 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


@pytest.fixture
def embedded_stack(tmp_path, amqp_uri):
    stack = Stack(data_dir=tmp_path, amqp_uri=amqp_uri, mongo_uri="", gateway_address="127.0.0.1:0",
                  embedded_port=free_port_range(len(config.DATA_SERVICES)), env={})
    (tmp_path / "logs").mkdir()
    yield stack
    stack.shutdown()


def test_each_service_gets_its_own_embedded_server_with_its_data_under_the_data_dir(embedded_stack, tmp_path):
    embedded_stack.ensure_database()

    uris = {service: embedded_stack.env[config.env_name("mongo_uri", service)] for service in config.DATA_SERVICES}
    assert len(set(uris.values())) == len(config.DATA_SERVICES)
    for service, uri in uris.items():
        with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
            client[f"tasklinkr_{service}"].outbox.insert_one({"status": "pending", "service": service})
        assert (tmp_path / "secantusdb" / service).is_dir()
        # What one service writes is in its own server only.
        others = [other for other in uris.values() if other != uri]
        with MongoClient(others[0], serverSelectionTimeoutMS=3000) as client:
            assert client[f"tasklinkr_{service}"].outbox.count_documents({"service": service}) == 0

    environ = {"TASKLINKR_EMBEDDED_DB_PORT": str(embedded_stack.embedded_port),
               "TASKLINKR_CONFIG_FILE": str(tmp_path / "absent.yaml")}
    assert {service: outbox_backlog(service, environ) for service in config.DATA_SERVICES} == {
        service: 1 for service in config.DATA_SERVICES}


def test_a_port_of_the_range_already_taken_is_refused_with_the_way_out(embedded_stack):
    taken_port = embedded.port_for("matching", embedded_stack.embedded_port)
    squatter = embedded.start(":memory:", taken_port)
    try:
        with pytest.raises(StackError, match=f"{taken_port}.*TASKLINKR_EMBEDDED_DB_PORT"):
            embedded_stack.ensure_database()
        assert embedded_stack.databases == {}
    finally:
        squatter.terminate()
        squatter.wait(timeout=10)


def test_the_operators_tools_beside_make_run_read_and_write_each_services_own_server(embedded_stack, tmp_path,
                                                                                       monkeypatch):
    """``tasklinkr backup`` / ``restore`` from a shell beside ``make run``, no URI set: billing's database is on
    billing's server, not on the first of the range (which holds a database of the same name, empty of it)."""
    from typer.testing import CliRunner

    from shared.tools.cli import app

    embedded_stack.ensure_database()
    billing = embedded_stack.env[config.env_name("mongo_uri", "billing")]
    first = embedded.uri_for(embedded_stack.embedded_port)
    assert billing != first
    for name in [key for key in os.environ if key.endswith(("MONGO_URI", "MONGO_URI_FILE"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TASKLINKR_EMBEDDED_DB_PORT", str(embedded_stack.embedded_port))
    monkeypatch.setenv("TASKLINKR_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    database = config.get("mongo_database", "billing")
    with MongoClient(billing, serverSelectionTimeoutMS=3000) as client:
        client[database].invoices.insert_one({"_id": "inv_1", "number": "INV-000001"})
    with MongoClient(first, serverSelectionTimeoutMS=3000) as client:
        client[database].stray.insert_one({"_id": "not billing's"})

    cli = CliRunner()
    backed_up = cli.invoke(app, ["backup", "billing", "--out", str(tmp_path / "backup")])
    assert backed_up.exit_code == 0, backed_up.output
    lines = (tmp_path / "backup" / "billing" / "invoices.jsonl").read_text().splitlines()
    assert [json.loads(line)["number"] for line in lines] == ["INV-000001"]
    assert not (tmp_path / "backup" / "billing" / "stray.jsonl").exists()

    with MongoClient(billing, serverSelectionTimeoutMS=3000) as client:
        client[database].invoices.delete_many({})
    restored = cli.invoke(app, ["restore", "billing", "--from", str(tmp_path / "backup"), "--replace"])
    assert restored.exit_code == 0, restored.output
    with MongoClient(billing, serverSelectionTimeoutMS=3000) as client:
        assert [doc["number"] for doc in client[database].invoices.find()] == ["INV-000001"]
    with MongoClient(first, serverSelectionTimeoutMS=3000) as client:
        assert "invoices" not in client[database].list_collection_names()
