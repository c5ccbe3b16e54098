"""The audit trail's guarantee: no state change without its record, and a lost outcome is never a lost record."""

import logging
from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest
from pymongo.errors import AutoReconnect
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway.audit import AuditLog, audited_command, created_ids, new_record, query_of
from services.gateway.auth import Principal
from services.gateway.dependencies import health_report
from services.gateway.routes import BY_OPERATION
from services.gateway.service import GatewayService
from shared.vocabulary.errors import NotFound, Unavailable, ValidationFailed

MANAGER = Principal.client("ten_1", "manager", "key_m")


class FailingDatabase:
    def command(self, *args):
        raise AutoReconnect("database down")


class FailingCollection:
    database = FailingDatabase()

    def insert_one(self, record):
        raise AutoReconnect("database down")

    def update_one(self, *args):
        raise AutoReconnect("database down")


def fake_gateway(audit):
    calls = []
    auth = SimpleNamespace(identify=lambda header: MANAGER, authorize=lambda *args: None)
    return SimpleNamespace(auth=auth, audit=audit, postings=SimpleNamespace(publish_posting="publish_posting"),
                           rpc=lambda method, *args, **kwargs: calls.append(method) or {"id": args[1]}), calls


def publish_request():
    return Request(EnvironBuilder(method="POST", path="/v1/postings/pst_1/publish", json={}).get_environ())


def test_when_the_audit_record_cannot_be_written_the_request_is_refused_and_never_passed_on():
    service, calls = fake_gateway(AuditLog({"audit": FailingCollection()}))
    reply = GatewayService.publish_posting(service, publish_request(), posting_id="pst_1")
    assert reply.status == 503 and reply.body["error"] == "unavailable"
    assert reply.headers["Retry-After"] == "5"
    assert calls == []


def test_the_record_is_written_before_the_call_and_gets_the_outcome_after_it():
    order = []
    audit = MagicMock()
    audit.begin.side_effect = lambda *args: order.append("begin") or {"_id": 1}
    audit.finish.side_effect = lambda record, status, body: order.append(("finish", status))
    service, calls = fake_gateway(audit)
    service.rpc = lambda method, *args, **kwargs: order.append("call") or {"id": "pst_1"}
    reply = GatewayService.publish_posting(service, publish_request(), posting_id="pst_1")
    assert reply.status == 200
    assert order == ["begin", "call", ("finish", 200)]


def test_a_lost_outcome_leaves_the_record_unknown_and_the_outcome_in_the_log(caplog):
    record = new_record(BY_OPERATION["publish_posting"], MANAGER, {"posting_id": "pst_1"}, "corr-1", None)
    assert record["outcome"] == "unknown" and record["status"] is None
    with caplog.at_level(logging.ERROR):
        AuditLog({"audit": FailingCollection()}).finish(record, 200, {"id": "pst_1"})
    assert "publish_posting answered 200" in caplog.text


def test_a_record_names_the_key_id_and_the_resources_never_the_key():
    record = new_record(BY_OPERATION["publish_posting"], MANAGER, {"posting_id": "pst_1"}, "corr-1", None)
    assert (record["key_id"], record["tenant_id"], record["actor"]) == ("key_m", "ten_1", "client:ten_1")
    assert record["resources"] == ["pst_1"]
    assert created_ids({"tenant": {"id": "ten_9"}, "api_key": "tlk_c_secret"}) == {"tenant_id": "ten_9"}
    assert created_ids({"id": "pst_2"}) == {"result_id": "pst_2"}


def test_the_audit_query_is_built_from_the_filters_and_a_bad_cursor_is_422():
    query = query_of({"tenant_id": "ten_1", "resource_id": "pst_1", "outcome": "failed"})
    assert query == {"tenant_id": "ten_1", "resources": "pst_1", "outcome": "failed"}
    with pytest.raises(ValidationFailed):
        query_of({"cursor": "not-an-id"})


def test_begin_raises_unavailable_not_a_database_error():
    with pytest.raises(Unavailable):
        AuditLog({"audit": FailingCollection()}).begin(BY_OPERATION["create_posting"], MANAGER, {}, "corr-1")


class MemoryCollection:
    def __init__(self):
        self.records = {}

    def insert_one(self, record):
        self.records[record["_id"]] = dict(record)

    def update_one(self, selector, change):
        record = self.records[selector["_id"]]
        for name, value in change["$set"].items():
            if name.startswith("resource_ids."):
                record["resource_ids"][name.split(".", 1)[1]] = value
            else:
                record[name] = value


def test_an_inbound_command_is_recorded_before_it_runs_with_the_tenant_the_command_id_and_the_resulting_ids():
    collection = MemoryCollection()
    ran = []

    @audited_command("posting.create.v1")
    def create(self, tenant_id, data, command_id):
        ran.append(len(collection.records))
        return {"posting_id": "pst_9", "status": "draft"}

    commands = SimpleNamespace(audit=AuditLog({"audit": collection}), tracing="corr-7")
    assert create(commands, "ten_1", {"posting": {}}, "cmd-1") == {"posting_id": "pst_9", "status": "draft"}
    [record] = collection.records.values()
    assert ran == [1]  # the record existed before the handler ran
    assert (record["actor"], record["tenant_id"], record["operation"], record["outcome"]) == (
        "client:ten_1", "ten_1", "posting.create.v1", "succeeded")
    assert record["resource_ids"] == {"command_id": "cmd-1", "posting_id": "pst_9"}
    assert record["correlation_id"] == "corr-7" and record["key_id"] is None


def test_a_refused_command_is_recorded_as_failed_and_one_that_cannot_be_recorded_does_not_run():
    collection = MemoryCollection()

    @audited_command("posting.publish.v1")
    def publish(self, tenant_id, data, command_id):
        raise NotFound("Posting pst_1 not found.")

    with pytest.raises(NotFound):
        publish(SimpleNamespace(audit=AuditLog({"audit": collection}), tracing="c"), "ten_1",
                {"posting_id": "pst_1"}, "cmd-2")
    [record] = collection.records.values()
    assert (record["status"], record["outcome"], record["error"]) == (404, "failed", "not_found")

    ran = []
    unrecorded = audited_command("posting.publish.v1")(lambda self, *args: ran.append(args))
    with pytest.raises(Unavailable):
        unrecorded(SimpleNamespace(audit=AuditLog({"audit": FailingCollection()}), tracing="c"), "ten_1", {}, "c3")
    assert ran == []


def test_health_is_degraded_while_the_audit_database_that_every_write_needs_does_not_answer():
    gateway = AuditLog({"audit": FailingCollection()}).health()
    assert gateway == {"status": "unavailable", "database": "unavailable", "error": "AutoReconnect"}
    everything_else = {"status": "ok", "database": "ok"}
    report = health_report({"status": "ok"}, gateway, {"postings": everything_else})
    assert report["status"] == "degraded" and report["gateway"] == gateway
    assert health_report({"status": "ok"}, everything_else, {"postings": everything_else})["status"] == "ok"
