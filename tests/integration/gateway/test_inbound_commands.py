"""Commands from a tenant's own system over the broker, answered on its feed: the real postings service behind
the gateway, on the session's own RabbitMQ node (tenants' broker users need its management API).

The tenant's side is examples/tenant_client.py, plain kombu, as an integrator would write it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection, Queue
from nameko.standalone.rpc import ServiceRpcProxy

from examples.tenant_client import TenantClient
from services.billing.service import BillingService
from services.contracting.service import ContractingService
from services.gateway.service import GatewayService
from services.postings.service import PostingsService
from services.providers.service import ProvidersService
from shared.runtime.contracts import errors as contract_errors
from shared.tools.operations import DeadLetters, consumer_services
from shared.vocabulary.times import rfc3339
from tests.integration.contracting import awards
from tests.support import samples
from tests.support.tenants import new_tenant, take
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def client(postings, admin, managed_rabbit):
    tenant, credentials = new_tenant(postings, admin, "Acme Clinics")
    with TenantClient(host="127.0.0.1", port=managed_rabbit.port, username=credentials.username,
                      password=credentials.password, vhost=credentials.vhost) as tenant_client:
        yield tenant_client
    admin.revoke(tenant["id"])


posting = samples.posting


def test_a_command_creates_and_publishes_a_posting_once_however_often_it_is_sent(client, postings):
    command_id = client.send("posting.create.v1", {"posting": posting(), "publish": True})
    outcome = client.outcome(command_id)

    assert outcome["type"] == "tasklinkr.gateway.command.accepted.v1", outcome["data"]
    assert contract_errors(outcome) == []
    assert outcome["tenantid"] == client.tenant_id and outcome["correlationid"] == command_id
    created = postings.get_posting(client.tenant_id, outcome["data"]["result"]["posting_id"])
    assert created["status"] == "open"

    client.send("posting.create.v1", {"posting": posting(), "publish": True}, command_id=command_id)

    def answers() -> list[dict]:
        client.drain(0.2)
        return [body for _, body, _ in client.received if body.get("data", {}).get("command_id") == command_id]

    assert wait_for(lambda: len(answers()) == 2, timeout=30)
    again = answers()
    assert len(again) == 2 and again[1]["data"]["result"] == outcome["data"]["result"]
    assert len(postings.list_postings(client.tenant_id)["items"]) == 1


def test_a_posting_that_cannot_be_published_is_not_created_either_and_the_corrected_command_reuses_its_id(
        client, postings):
    unpublishable = {k: v for k, v in posting().items() if k != "start_date"}
    command_id = client.send("posting.create.v1", {"posting": unpublishable, "publish": True})
    rejected = client.outcome(command_id)
    assert rejected["type"].endswith("command.rejected.v1") and "start_date" in json.dumps(rejected["data"])
    assert postings.list_postings(client.tenant_id)["items"] == []  # nothing changed, as the rejection says

    client.received.clear()
    client.send("posting.create.v1", {"posting": posting(), "publish": True}, command_id=command_id)
    accepted = client.outcome(command_id)
    assert accepted["type"].endswith("command.accepted.v1"), accepted["data"]
    assert accepted["data"]["result"]["status"] == "open"
    assert len(postings.list_postings(client.tenant_id)["items"]) == 1


def test_an_invalid_command_is_rejected_per_field_and_nothing_is_written(client, postings):
    command_id = client.send("posting.create.v1", {"posting": posting(hours_per_week=0)})
    outcome = client.outcome(command_id)

    assert outcome["type"] == "tasklinkr.gateway.command.rejected.v1"
    assert contract_errors(outcome) == []
    assert "hours_per_week" in outcome["data"]["errors"]
    assert postings.list_postings(client.tenant_id)["items"] == []


def test_a_command_cannot_touch_another_tenants_posting(client, postings, admin):
    other, _ = new_tenant(postings, admin, "Other Co")
    theirs = postings.create_posting(other["id"], posting())

    command_id = client.send("posting.publish.v1", {"posting_id": theirs["id"]})
    outcome = client.outcome(command_id)

    assert outcome["type"] == "tasklinkr.gateway.command.rejected.v1"
    assert "not found" in outcome["data"]["reason"].lower()
    assert postings.get_posting(other["id"], theirs["id"])["status"] == "draft"


def test_the_outcome_also_goes_to_the_reply_queue_with_the_correlation_id(client, managed_rabbit):
    reply_queue = f"{client.tenant_id}.replies"
    Queue(reply_queue, durable=True)(client.channel).declare()

    command_id = client.send("posting.create.v1", {"posting": posting()}, correlation_id="erp-order-77",
                             reply_to=reply_queue)
    client.outcome(command_id)

    message = take(managed_rabbit.uri, reply_queue)
    assert message.properties["correlation_id"] == "erp-order-77"
    assert json.loads(message.body)["data"]["command_id"] == command_id


@pytest.mark.parametrize("send, reason", [
    (lambda c: c.producer.publish(b"{not json", exchange="tasklinkr.inbound", content_type="application/json",
                                  routing_key=f"{c.tenant_id}.posting.create.v1", user_id=c.tenant_id),
     "not valid JSON"),
    (lambda c: c.send("posting.explode.v1", {"posting": {}}), "unknown command type"),
    (lambda c: c.send("posting.create.v1", {"tenant_id": "ten_" + "0" * 32}), "breaks its schema"),
    (lambda c: c.send("posting.create.v1", {"posting": {"description": "x" * 300_000}}), "larger than"),
], ids=["not-json", "unknown-type", "wrong-schema", "oversized"])
def test_a_malformed_message_is_rejected_with_its_reason_parked_and_the_consumer_keeps_serving(
        client, managed_rabbit, send, reason):
    send(client)
    assert wait_for(lambda: any(body.get("type", "").endswith("command.rejected.v1")
                                and reason in body["data"]["reason"]
                                for _, body, _ in (client.drain(0.2) or client.received)), timeout=15)
    rejected = next(body for _, body, _ in client.received if reason in body["data"].get("reason", ""))
    assert contract_errors(rejected) == []

    assert reason in take(managed_rabbit.uri, "dlq.gateway").headers["x-tasklinkr-error"]

    command_id = client.send("posting.create.v1", {"posting": posting()})
    assert client.outcome(command_id)["type"].endswith("command.accepted.v1")


def test_the_example_client_creates_a_posting_by_command(platform, postings, admin, managed_rabbit, tmp_path):
    tenant, credentials = new_tenant(postings, admin, "Example Integrator")
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(credentials.as_dict()))

    run = subprocess.run([sys.executable, "examples/tenant_client.py", str(path), "--port", str(managed_rabbit.port),
                          "--listen", "3"], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert lines[1]["outcome"] == "tasklinkr.gateway.command.accepted.v1"
    posting_id = lines[1]["data"]["result"]["posting_id"]
    assert postings.get_posting(tenant["id"], posting_id)["status"] == "open"
    # ... and it consumed the tenant's own events from the feed: the posting's publication among them.
    assert {"event": f"{tenant['id']}.posting.published.v1", "subject": posting_id} in lines[2:]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
COMMAND_TYPES = st.sampled_from(["posting.create.v1", "posting.publish.v1", "invitation.create.v1",
                                 "posting.award.v1", "posting.delete.v1", "x"])
HOSTILE = st.one_of(
    st.tuples(COMMAND_TYPES, st.binary(max_size=300)),
    st.tuples(COMMAND_TYPES, JSON),
    st.tuples(COMMAND_TYPES, st.fixed_dictionaries({"id": st.text(max_size=120), "type": COMMAND_TYPES,
                                                    "data": st.dictionaries(st.sampled_from(
                                                        ["posting", "posting_id", "provider_id", "proposal_id",
                                                         "publish", "confirm_core"]), JSON, max_size=4)})),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=HOSTILE)
def test_hostile_messages_each_get_a_clear_answer_and_change_nothing(client, postings, message):
    command_type, body = message
    correlation = str(uuid.uuid4())
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    client.producer.publish(payload, exchange="tasklinkr.inbound", routing_key=f"{client.tenant_id}.{command_type}",
                            user_id=client.tenant_id, content_type="application/json", correlation_id=correlation)

    def answered() -> list[dict]:
        client.drain(0.1)
        return [body for _, body, _ in client.received if body.get("correlationid") == correlation]

    assert wait_for(answered, timeout=15), "every message gets an outcome"
    (outcome,) = answered()
    assert contract_errors(outcome) == []
    assert outcome["type"] == "tasklinkr.gateway.command.rejected.v1", outcome["data"]
    assert outcome["data"]["reason"]
    assert postings.list_postings(client.tenant_id)["items"] == []  # nothing half-written


def test_after_hostile_input_the_consumer_still_serves(client):
    client.producer.publish(b"\x00\xff" * 100, exchange="tasklinkr.inbound", content_type="application/json",
                            routing_key=f"{client.tenant_id}.posting.create.v1", user_id=client.tenant_id,
                            headers={"nameko.call_id_stack": 5, "call_id_stack": [1]})
    command_id = client.send("posting.create.v1", {"posting": posting()})
    assert client.outcome(command_id)["type"].endswith("command.accepted.v1")


@pytest.mark.parametrize("headers", [
    {"nameko.call_id_stack": [1]},  # nameko would join it before any handler runs and kill the container
    {"nameko.call_id_stack": 5, "nameko.correlation_id": {"x": 1}},
    {"x-tasklinkr-attempts": "x", "x-tasklinkr-origin-user-id": "ten_" + "0" * 32},
    {"call_id_stack": [1], "correlation_id": {"x": 1}},  # nameko reads unprefixed headers as context too
])
def test_a_command_with_headers_only_the_platform_may_set_is_still_answered_and_the_gateway_keeps_serving(
        client, postings, headers):
    command_id = str(uuid.uuid4())
    client.producer.publish({"id": command_id, "type": "posting.create.v1", "data": {"posting": posting()}},
                            exchange="tasklinkr.inbound", routing_key=f"{client.tenant_id}.posting.create.v1",
                            user_id=client.tenant_id, serializer="json", delivery_mode=2, headers=headers)
    outcome = client.outcome(command_id)
    assert outcome["type"].endswith("command.accepted.v1"), outcome["data"]
    assert postings.get_posting(client.tenant_id, outcome["data"]["result"]["posting_id"])["status"] == "draft"
    second = client.send("posting.create.v1", {"posting": posting()})
    assert client.outcome(second)["type"].endswith("command.accepted.v1")


def test_sla_measurements_by_command_count_once_and_only_on_the_tenants_own_contract(
        client, platform, container_factory, postings, admin, managed_rabbit):
    container_factory(ContractingService, dict(platform, MONGO_DATABASE=f"{platform['MONGO_DATABASE']}_ctr")).start()
    award = awards.award_event(start=datetime.now(UTC).date() - timedelta(days=2), tenant_id=client.tenant_id)
    awards.publish(managed_rabbit.uri, award)
    client_party = {"kind": "client", "tenant_id": client.tenant_id}
    provider_party = {"kind": "provider", "provider_id": award["data"]["provider"]["provider_id"]}
    with ServiceRpcProxy("contracting", platform, timeout=20) as contracting:
        assert wait_for(lambda: contracting.list_contracts(client_party)["items"], timeout=15)
        draft = contracting.list_contracts(client_party)["items"][0]
        for party in (client_party, provider_party):
            contract = contracting.sign_contract(party, draft["id"], {"terms_hash": draft["terms_hash"]})
        assert contract["status"] == "active"
    measurement = {"sla_id": contract["slas"][0]["id"], "value": "42",
                   "measured_at": rfc3339(datetime.now(UTC) - timedelta(hours=1))}
    data = {"contract_id": contract["id"], "measurements": [measurement]}

    first = client.outcome(client.send("sla_measurements.record.v1", data, command_id="helpdesk-1"))
    assert "result" in first["data"], first["data"]
    assert first["data"]["result"] == {"contract_id": contract["id"], "recorded": 1, "late": 0, "duplicate": 0}
    client.received.clear()
    again = client.outcome(client.send("sla_measurements.record.v1", data, command_id="helpdesk-1"))
    assert again["data"]["result"]["recorded"] == 0 and again["data"]["result"]["duplicate"] == 1

    stranger, credentials = new_tenant(postings, admin, "Stranger Ltd")
    with TenantClient(host="127.0.0.1", port=managed_rabbit.port, username=credentials.username,
                      password=credentials.password, vhost=credentials.vhost) as theirs:
        refused = theirs.outcome(theirs.send("sla_measurements.record.v1", data))
    assert refused["type"].endswith("command.rejected.v1") and "not found" in refused["data"]["reason"].lower()


def test_each_tenant_consumes_exactly_its_own_events_on_the_feed(client, postings, admin, managed_rabbit):
    other, credentials = new_tenant(postings, admin, "Other Clinics")
    with TenantClient(host="127.0.0.1", port=managed_rabbit.port, username=credentials.username,
                      password=credentials.password, vhost=credentials.vhost) as theirs:
        ours = client.outcome(client.send("posting.create.v1", {"posting": posting(), "publish": True}))
        their_posting = postings.create_posting(other["id"], posting(title="Their own work"))
        postings.publish_posting(other["id"], their_posting["id"])

        def published(tenant_client, posting_id) -> bool:
            tenant_client.drain(0.2)
            return any(key.endswith(".posting.published.v1") and body["subject"] == posting_id
                       for key, body, _ in tenant_client.received)

        assert wait_for(lambda: published(client, ours["data"]["result"]["posting_id"]), timeout=15)
        assert wait_for(lambda: published(theirs, their_posting["id"]), timeout=15)
        for tenant_client in (client, theirs):
            tenant_client.drain(0.5)
            assert tenant_client.received
            for routing_key, body, _ in tenant_client.received:
                assert routing_key.startswith(f"{tenant_client.tenant_id}.")
                assert body["tenantid"] == tenant_client.tenant_id
                assert contract_errors(body) == []


def test_a_provider_submits_time_by_command_and_the_client_approves_it_by_command(
        client, platform, container_factory, postings, admin, managed_rabbit):
    for service, suffix in ((ContractingService, "ctr"), (BillingService, "bil"), (ProvidersService, "prv")):
        container_factory(service, dict(platform, MONGO_DATABASE=f"{platform['MONGO_DATABASE']}_{suffix}")).start()
    with ServiceRpcProxy("providers", platform, timeout=20) as providers:
        provider_id = providers.register(samples.individual_provider())["provider"]["id"]
    start = datetime.now(UTC).date() - timedelta(days=2)
    award = awards.award_event(start=start, tenant_id=client.tenant_id, provider_id=provider_id)
    awards.publish(managed_rabbit.uri, award)
    parties = ({"kind": "client", "tenant_id": client.tenant_id}, {"kind": "provider", "provider_id": provider_id})
    with ServiceRpcProxy("contracting", platform, timeout=20) as contracting:
        assert wait_for(lambda: contracting.list_contracts(parties[0])["items"], timeout=15)
        draft = contracting.list_contracts(parties[0])["items"][0]
        for party in parties:
            contract = contracting.sign_contract(party, draft["id"], {"terms_hash": draft["terms_hash"]})
    with ServiceRpcProxy("billing", platform, timeout=20) as billing:
        assert wait_for(lambda: billing.get_account(parties[0], contract["id"]), timeout=15, ignore_errors=True)
    entry = {"kind": "time", "date": start.isoformat(), "hours": "6.5", "description": "Inbox triage"}
    data = {"contract_id": contract["id"], "items": [entry]}

    credentials = admin.grant(provider_id)
    with TenantClient(host="127.0.0.1", port=managed_rabbit.port, username=credentials.username,
                      password=credentials.password, vhost=credentials.vhost) as provider_system:
        submitted = provider_system.outcome(provider_system.send("billable_items.submit.v1", data,
                                                                 command_id="timesheet-1"))
        assert submitted["type"].endswith("command.accepted.v1"), submitted["data"]
        assert contract_errors(submitted) == [] and submitted["tenantid"] == provider_id
        (item,) = submitted["data"]["result"]["items"]
        provider_system.received.clear()
        again = provider_system.outcome(provider_system.send("billable_items.submit.v1", data,
                                                             command_id="timesheet-1"))
        assert again["data"]["result"]["recorded"] == 0 and again["data"]["result"]["duplicate"] == 1
        not_theirs = provider_system.outcome(provider_system.send(
            "billable_items.review.v1", {"contract_id": contract["id"], "item_id": item["item_id"],
                                         "decision": "approve"}))
        assert not_theirs["type"].endswith("command.rejected.v1")
    admin.revoke(provider_id)

    refused = client.outcome(client.send("billable_items.submit.v1", data))
    assert refused["type"].endswith("command.rejected.v1") and "provider" in refused["data"]["reason"]
    approved = client.outcome(client.send("billable_items.review.v1", {
        "contract_id": contract["id"], "item_id": item["item_id"], "decision": "approve"}))
    assert approved["data"]["result"] == {"contract_id": contract["id"], "item_id": item["item_id"],
                                          "status": "approved"}


def _sent_while_postings_is_down(container_factory, config, admin, managed_rabbit) -> tuple[str, dict, float]:
    """A posting.create.v1 command sent while postings is stopped: (its id, its outcome, seconds until it came)."""
    postings_container = container_factory(PostingsService,
                                           dict(config, MONGO_DATABASE=f"{config['MONGO_DATABASE']}_postings"))
    postings_container.start()
    container_factory(GatewayService, dict(config, MONGO_DATABASE=f"{config['MONGO_DATABASE']}_gateway")).start()
    with ServiceRpcProxy("postings", config) as proxy:
        tenant, credentials = new_tenant(proxy, admin, "Down Clinics")
    postings_container.stop()  # the gateway's every call to postings now waits for its RPC timeout
    try:
        with TenantClient(host="127.0.0.1", port=managed_rabbit.port, username=credentials.username,
                          password=credentials.password, vhost=credentials.vhost) as tenant_client:
            sent = time.monotonic()
            command_id = tenant_client.send("posting.create.v1", {"posting": posting()})
            outcome = tenant_client.outcome(command_id, timeout=30)
            return command_id, outcome, time.monotonic() - sent
    finally:
        admin.revoke(tenant["id"])


def test_a_command_whose_service_stays_down_through_every_retry_is_still_answered_and_parked(
        container_factory, config, admin, managed_rabbit):
    # Every call to postings times out after 1 s (a 504).
    command_id, outcome, _ = _sent_while_postings_is_down(container_factory, dict(config, RPC_TIMEOUT_SECONDS="1"),
                                                          admin, managed_rabbit)
    assert outcome["type"].endswith("command.rejected.v1")
    assert "Send it again with the same id" in outcome["data"]["reason"]
    assert contract_errors(outcome) == []
    seen = []

    def parked() -> bool:  # for an operator to replay once postings is back
        with Connection(managed_rabbit.uri) as connection:
            queue = Queue("dlq.gateway", no_declare=True)(connection.channel())
            while (message := queue.get(no_ack=True)) is not None:
                try:
                    seen.append(json.loads(message.body).get("id"))
                except (ValueError, AttributeError):  # another test's parked message: not JSON, or not an object
                    seen.append(None)
        return command_id in seen

    # ... which the operator tools list and replay (with its reply address and correlation id)
    letters = DeadLetters(managed_rabbit.uri, "gateway")
    assert wait_for(lambda: any(letter.event_id == command_id for letter in letters.list()), timeout=10)
    assert "gateway" in consumer_services()
    assert [letter.event_id for letter in letters.replay(command_id)] == [command_id]
    assert wait_for(parked, timeout=10)  # postings is still down: the replayed command is parked again


def test_a_command_handler_that_hangs_is_cut_off_by_its_deadline_retried_answered_and_parked(
        container_factory, config, admin, managed_rabbit):
    # Postings is down and the gateway would wait a minute for each answer: the handler's 1 s deadline cuts each of
    # its 3 attempts (2 retry delays), then the command is parked and answered, long before one RPC timeout.
    hanging = dict(config, RPC_TIMEOUT_SECONDS="60", HANDLER_TIMEOUT_SECONDS="1", RETRY_DELAYS_SECONDS="0.1,0.2")
    command_id, outcome, seconds = _sent_while_postings_is_down(container_factory, hanging, admin, managed_rabbit)
    assert outcome["type"].endswith("command.rejected.v1")
    assert "Send it again with the same id" in outcome["data"]["reason"]
    assert seconds >= 3  # three attempts, each cut off after its 1 s deadline
    letters = DeadLetters(managed_rabbit.uri, "gateway")
    parked = []
    assert wait_for(lambda: parked.extend(x for x in letters.list() if x.event_id == command_id) or parked,
                    timeout=10)
    assert parked[0].attempts == 3 and "deadline" in parked[0].error
