"""Reading an inbound command message (shared.runtime.commands.read_delivery): who sent it, whether it may be answered,
and what is wrong with it. The broker-path integration tests (tests/integration/gateway/test_broker_path.py) send
the same cases through a real broker."""

import json
from types import SimpleNamespace

import pytest

from shared.runtime.commands import outcome_envelope, read_delivery

TENANT = "ten_" + "a" * 32
OTHER = "ten_" + "b" * 32
MAX_BYTES = 10_000


def message(routing_key: str = f"{TENANT}.posting.publish.v1", *, user_id: str | None = TENANT,
            content_type: str | None = "application/json", correlation_id: str | None = None, body=None,
            exchange: str = "tasklinkr.inbound"):
    body = body if body is not None else {"id": "cmd-1", "type": "posting.publish.v1",
                                          "data": {"posting_id": "pst_" + "c" * 32}}
    properties = {key: value for key, value in (("user_id", user_id), ("content_type", content_type),
                                                ("correlation_id", correlation_id)) if value is not None}
    return SimpleNamespace(properties=properties, headers={}, body=body if isinstance(body, bytes)
                           else json.dumps(body).encode(),
                           delivery_info={"exchange": exchange, "routing_key": routing_key})


def read(msg) -> dict:
    return read_delivery(msg, msg.delivery_info["routing_key"].split(".", 1)[1], MAX_BYTES)


def test_a_well_formed_command_is_answered_to_its_validated_sender_under_its_correlation_id():
    delivery = read(message(correlation_id="erp-7"))
    assert delivery["problem"] is None and delivery["answer"] is True
    assert (delivery["sender_id"], delivery["command_id"], delivery["correlation_id"]) == (TENANT, "cmd-1", "erp-7")
    assert read(message())["correlation_id"] == "cmd-1"  # default: the command id


@pytest.mark.parametrize("user_id, reason", [
    (None, "no user_id"),
    ("guest", "is not a tenant's or provider's broker user"),
])
def test_without_a_tenants_user_id_the_routing_key_names_nobody_and_nobody_is_answered(user_id, reason):
    delivery = read(message(f"{OTHER}.posting.publish.v1", user_id=user_id))
    assert delivery["sender_id"] is None and delivery["answer"] is False
    assert reason in delivery["problem"]["reason"]
    assert "tenantid" not in outcome_envelope("gateway", delivery, lane="smb")


def test_an_event_type_fed_back_in_is_not_answered_even_from_a_tenant():
    delivery = read_delivery(message(f"{TENANT}.command.rejected.v1"), None, MAX_BYTES)
    assert delivery["answer"] is False and "an event the platform publishes" in delivery["problem"]["reason"]
    assert "tenantid" not in outcome_envelope("gateway", delivery, lane="smb")


def test_another_tenants_key_from_a_validated_sender_is_rejected_to_the_sender():
    delivery = read(message(f"{OTHER}.posting.publish.v1"))
    assert delivery["answer"] is True and delivery["sender_id"] == TENANT
    assert "does not match the routing key" in delivery["problem"]["reason"]
    assert outcome_envelope("gateway", delivery, lane="smb")["tenantid"] == TENANT


@pytest.mark.parametrize("content_type, problem", [
    ("application/json; charset=utf-8", None),
    ("APPLICATION/JSON", None),
    ("text/plain", "content_type must be application/json, not 'text/plain'"),
    (None, "content_type must be application/json, not None"),
])
def test_the_content_type_must_be_json_parameters_allowed(content_type, problem):
    delivery = read(message(content_type=content_type))
    assert (delivery["problem"] or {}).get("reason") == problem
    assert delivery["command_id"] == "cmd-1"  # the rejection still names the command


def test_an_oversized_body_is_not_even_parsed():
    delivery = read(message(body={"id": "cmd-1", "pad": "x" * MAX_BYTES}))
    assert delivery["command_id"] is None and "larger than" in delivery["problem"]["reason"]
