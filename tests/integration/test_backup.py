"""`tasklinkr backup` / `restore`: a service's database to files and back, every value with its exact type."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from bson import Binary, Decimal128, Int64, ObjectId
from typer.testing import CliRunner

from shared.tools.backup import BackupError, backup, restore
from shared.tools.cli import app
from tests.support.infra import unique_name

pytestmark = pytest.mark.integration

INVOICE = {
    "_id": "inv_0001",
    "tenant_id": "ten_" + "a" * 32,
    "number": Int64(2**40 + 7),
    "total": {"amount": Decimal128(Decimal("1234.50")), "currency": "EUR"},
    "lines": [{"hours": Decimal128(Decimal("7.25")), "rate": Decimal128(Decimal("0.0001"))}],
    "issued_at": datetime(2026, 3, 31, 23, 59, 59, 123000, tzinfo=UTC),
    "pdf": Binary(b"%PDF-1.7\x00\xff"),
    "note": "Zürich – 東京",
    "voided": None,
}


@pytest.fixture
def billing_db(mongo_client, monkeypatch, mongo_uri):
    name = unique_name("backup")
    monkeypatch.setenv("TASKLINKR_CONFIG_FILE", "/nonexistent.yaml")
    monkeypatch.setenv("TASKLINKR_BILLING_MONGO_URI", mongo_uri)
    monkeypatch.setenv("TASKLINKR_BILLING_MONGO_DATABASE", name)
    database = mongo_client[name]
    database.invoices.create_index([("tenant_id", 1), ("number", 1)], unique=True, name="number_per_tenant")
    database.invoices.insert_one(dict(INVOICE))
    database.outbox.insert_many([{"_id": ObjectId(), "status": "pending", "created_at": INVOICE["issued_at"],
                                  "seq": i} for i in range(2500)])
    yield database
    mongo_client.drop_database(name)


def test_a_database_round_trips_through_a_backup_with_every_type_and_index_intact(billing_db, mongo_client,
                                                                                    tmp_path):
    manifest = backup(mongo_client, "billing", tmp_path)
    assert manifest["collections"]["outbox"]["documents"] == 2500
    before = {name: list(billing_db[name].find().sort("_id", 1)) for name in ("invoices", "outbox")}
    mongo_client.drop_database(billing_db.name)

    restored = restore(mongo_client, "billing", tmp_path / "billing")

    assert restored.documents == {"invoices": 1, "outbox": 2500}
    after = {name: list(billing_db[name].find().sort("_id", 1)) for name in ("invoices", "outbox")}
    assert after == before
    invoice = after["invoices"][0]
    assert isinstance(invoice["total"]["amount"], Decimal128) and invoice["total"]["amount"].to_decimal() == \
        Decimal("1234.50")
    assert isinstance(invoice["number"], int) and invoice["number"] == 2**40 + 7
    assert invoice["issued_at"] == INVOICE["issued_at"]
    assert billing_db.invoices.index_information()["number_per_tenant"]["unique"] is True


def test_a_restore_refuses_a_database_with_data_unless_told_to_replace_it(billing_db, mongo_client, tmp_path):
    backup(mongo_client, "billing", tmp_path)
    billing_db.invoices.insert_one({"_id": "inv_0002", "tenant_id": "ten_x", "number": 2})
    with pytest.raises(BackupError, match="already holds data"):
        restore(mongo_client, "billing", tmp_path / "billing")
    assert billing_db.invoices.count_documents({}) == 2  # untouched

    restore(mongo_client, "billing", tmp_path / "billing", replace=True)
    assert [doc["_id"] for doc in billing_db.invoices.find()] == ["inv_0001"]


def test_a_changed_or_truncated_backup_is_refused_before_anything_is_written(billing_db, mongo_client, tmp_path):
    backup(mongo_client, "billing", tmp_path)
    outbox = tmp_path / "billing" / "outbox.jsonl"
    outbox.write_text("".join(outbox.read_text().splitlines(keepends=True)[:-1]))  # the last event lost
    mongo_client.drop_database(billing_db.name)
    with pytest.raises(BackupError, match="outbox.jsonl"):
        restore(mongo_client, "billing", tmp_path / "billing")
    assert billing_db.list_collection_names() == []
    with pytest.raises(BackupError, match="not a backup of postings"):
        restore(mongo_client, "postings", tmp_path / "billing")


def test_the_cli_backs_up_and_restores_with_the_services_own_settings(billing_db, mongo_client, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["backup", "billing", "--out", str(tmp_path / "nightly")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "nightly/billing/manifest.json").read_text())["database"] == billing_db.name
    refused = runner.invoke(app, ["restore", "billing", "--from", str(tmp_path / "nightly")])
    assert refused.exit_code == 1 and "already holds data" in refused.output
    result = runner.invoke(app, ["restore", "billing", "--from", str(tmp_path / "nightly"), "--replace"])
    assert result.exit_code == 0, result.output
    assert "restored 2501 documents" in result.output
