"""The broker path as a tenant's own system takes it, careless or hostile, with a client library the platform does
not use (pika, connected with nothing but what ``tenant-access grant`` printed): forged senders, the platform's
events fed back in, a full queue of the tenant's, revocation, content types and correlation ids.

Postings and the gateway run on the session's own RabbitMQ node (tests/integration/conftest.py: managed_rabbit).
"""

from __future__ import annotations

import json
import time
import uuid

import pika
import pytest
import requests
from pika.exceptions import AMQPConnectionError

from services.gateway.audit import AuditLog
from shared.runtime.topology import FEED_EXCHANGE, INBOUND_EXCHANGE
from shared.tools.brokeradmin import USER_LIMITS, BrokerAdminError, platform_knows
from shared.tools.operations import DeadLetters
from tests.support import samples
from tests.support.tenants import new_tenant
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

OUTCOMES = (".command.accepted.v1", ".command.rejected.v1")


def connect(credentials) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=credentials.host, port=credentials.port, virtual_host=credentials.vhost,
        ssl_options=None if not credentials.tls else pika.SSLOptions(None),
        credentials=pika.PlainCredentials(credentials.username, credentials.password), connection_attempts=1,
        blocked_connection_timeout=10))


class PikaTenant:
    """A tenant's system: its queue ``<id>.feed`` holds everything the feed has for it."""

    def __init__(self, credentials):
        self.id = credentials.username
        self.connection = connect(credentials)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()  # a refused publish raises
        self.channel.queue_declare(f"{self.id}.feed", durable=True)
        self.channel.queue_bind(f"{self.id}.feed", FEED_EXCHANGE, routing_key=f"{self.id}.#")
        self.received: list[tuple[str, dict, pika.BasicProperties]] = []

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()

    def publish(self, body, *, routing_key: str, exchange: str = INBOUND_EXCHANGE, **properties) -> None:
        """As this tenant (``user_id``), JSON, persistent, unless ``properties`` say otherwise (None: unset)."""
        properties = {"user_id": self.id, "content_type": "application/json", "delivery_mode": 2, **properties}
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.channel.basic_publish(exchange, routing_key, payload, pika.BasicProperties(**properties))

    def send(self, command_type: str, data: dict, *, command_id: str | None = None, **properties) -> str:
        command_id = command_id or str(uuid.uuid4())
        self.publish({"id": command_id, "type": command_type, "data": data},
                     routing_key=f"{self.id}.{command_type}", **properties)
        return command_id

    def take_all(self, queue: str) -> list[tuple[str, dict, pika.BasicProperties]]:
        taken = []
        while True:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((method.routing_key, json.loads(body), properties))

    def feed(self) -> list[tuple[str, dict, pika.BasicProperties]]:
        self.received.extend(self.take_all(f"{self.id}.feed"))
        return self.received

    def outcomes(self) -> list[dict]:
        return [body for key, body, _ in self.feed() if key.endswith(OUTCOMES)]

    def outcome(self, command_id: str, timeout: float = 30.0) -> dict:
        def answered() -> list[dict]:
            return [body for body in self.outcomes() if body["data"]["command_id"] == command_id]

        assert wait_for(answered, timeout=timeout), f"no outcome for command {command_id}"
        return answered()[0]


@pytest.fixture
def tenants(postings, admin):
    """``tenants(name)``: a tenant the platform knows, with its system connected over pika; revoked afterwards."""
    made: list[tuple[str, PikaTenant]] = []

    def make(name: str) -> PikaTenant:
        tenant, credentials = new_tenant(postings, admin, name)
        made.append((tenant["id"], PikaTenant(credentials)))
        return made[-1][1]

    yield make
    for tenant_id, system in made:
        system.close()
        admin.revoke(tenant_id)


@pytest.fixture(autouse=True)
def empty_dead_letter_queue(managed_rabbit):
    """What these tests park is theirs: the next module on the session's node starts with an empty DLQ."""
    yield
    DeadLetters(managed_rabbit.uri, "gateway").purge()


@pytest.fixture
def audit(platform, mongo_client) -> AuditLog:
    return AuditLog(mongo_client[f"{platform['MONGO_DATABASE']}_gateway"])


def audited(audit: AuditLog, **filters) -> list[dict]:
    return audit.page(filters, 50)["items"]


def parked(amqp_uri: str) -> list[str | None]:
    """The ids of the messages in the gateway's dead-letter queue (left there)."""
    return [letter.event_id for letter in DeadLetters(amqp_uri, "gateway").list()]


def command(command_id: str, command_type: str = "posting.create.v1", **data) -> dict:
    return {"id": command_id, "type": command_type, "data": data or {"posting": samples.posting()}}


def test_a_command_routed_in_without_user_id_is_parked_audited_and_answered_to_nobody(
        tenants, audit, managed_rabbit):
    attacker, victim = tenants("Mallory Ltd"), tenants("Victim Clinics")
    # Route one: an exchange of its own, bound to the inbound exchange.
    attacker.channel.exchange_declare(f"{attacker.id}.relay", "fanout", durable=False, auto_delete=True)
    attacker.channel.exchange_bind(INBOUND_EXCHANGE, f"{attacker.id}.relay")
    attacker.publish(command("forged-relay"), exchange=f"{attacker.id}.relay", user_id=None,
                     routing_key=f"{victim.id}.posting.create.v1", correlation_id="chosen-by-the-attacker")
    # Route two: a queue of its own on its feed that dead-letters into the inbound exchange (what expires there:
    # the outcome of a command it sends).
    attacker.channel.queue_declare(f"{attacker.id}.bounce", arguments={
        "x-message-ttl": 0, "x-dead-letter-exchange": INBOUND_EXCHANGE,
        "x-dead-letter-routing-key": f"{victim.id}.posting.publish.v1"})
    attacker.channel.queue_bind(f"{attacker.id}.bounce", FEED_EXCHANGE, routing_key=f"{attacker.id}.#")
    own = attacker.send("posting.publish.v1", {"posting_id": "pst_none"})

    def recorded() -> list[dict]:
        return [record for record in audited(audit, actor="unverified:no user_id")
                if record["path"].startswith(victim.id)]

    assert wait_for(lambda: len(recorded()) == 2, timeout=20)
    assert {record["operation"] for record in recorded()} == {"posting.create.v1", "posting.publish.v1"}
    assert all(record["outcome"] == "failed" and "no user_id" in record["error"] for record in recorded())
    # ... each traced to the attacker by the route it built.
    routes = {record["operation"]: {name: value for name, value in record["resource_ids"].items()
                                    if name != "command_id"} for record in recorded()}
    assert routes == {"posting.create.v1": {"published_to": f"{attacker.id}.relay"},
                      "posting.publish.v1": {"dead_lettered_from": f"{attacker.id}.bounce"}}
    assert wait_for(lambda: "forged-relay" in parked(managed_rabbit.uri), timeout=10)
    time.sleep(1)
    assert victim.outcomes() == []  # answered to nobody
    assert [body["data"]["command_id"] for body in attacker.outcomes()] == [own]


def test_the_platforms_events_fed_back_in_are_parked_once_and_never_answered(
        tenants, audit, managed_rabbit, postings):
    tenant = tenants("Loop Clinics")
    tenant.channel.exchange_bind(INBOUND_EXCHANGE, FEED_EXCHANGE, routing_key=f"{tenant.id}.#")

    command_id = tenant.send("posting.create.v1", {"posting": samples.posting()})
    assert tenant.outcome(command_id)["type"].endswith("command.accepted.v1")
    # ... and the outcome itself came back in through the binding: parked once, not answered.
    assert wait_for(lambda: any(record["operation"] == "command.accepted.v1"
                                for record in audited(audit, actor="unverified:no user_id")),
                    timeout=15)

    # As the platform's own user (not a tenant's): parked, not answered, though it names the tenant.
    with pika.BlockingConnection(pika.URLParameters(managed_rabbit.uri)) as platform_connection:
        channel = platform_connection.channel()
        channel.basic_publish(INBOUND_EXCHANGE, f"{tenant.id}.posting.create.v1",
                              json.dumps(command("as-the-platform")).encode(),
                              pika.BasicProperties(user_id="guest", content_type="application/json"))
    # As itself, an event type: parked, not answered.
    tenant.publish({"id": "an-event"}, routing_key=f"{tenant.id}.command.rejected.v1")

    assert wait_for(lambda: {"as-the-platform", "an-event"} <= set(parked(managed_rabbit.uri)), timeout=15)
    time.sleep(2)
    assert [body["data"]["command_id"] for body in tenant.outcomes()] == [command_id]
    assert [record["resource_ids"].get("command_id") for record in audited(audit, actor="unverified:guest")] \
        == ["as-the-platform"]
    (event_record,) = audited(audit, operation="command.rejected.v1", tenant_id=tenant.id)
    assert "not answered" in event_record["error"]
    assert len(postings.list_postings(tenant.id)["items"]) == 1


def test_a_full_tenant_queue_drops_its_copy_and_the_outcome_is_sent_once_and_nothing_parked(
        tenants, audit, managed_rabbit, postings):
    tenant = tenants("Full Queue Clinics")
    tenant.channel.queue_declare(f"{tenant.id}.tiny", durable=True,
                                 arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    tenant.channel.queue_bind(f"{tenant.id}.tiny", FEED_EXCHANGE, routing_key=f"{tenant.id}.#")
    first = tenant.send("posting.create.v1", {"posting": samples.posting()})
    tenant.outcome(first)  # its copy in .tiny fills it
    tenant.channel.queue_declare(f"{tenant.id}.replies", durable=True)

    command_id = tenant.send("posting.create.v1", {"posting": samples.posting()}, reply_to=f"{tenant.id}.replies")

    replies = []
    assert wait_for(lambda: replies.extend(tenant.take_all(f"{tenant.id}.replies")) or replies, timeout=20)
    time.sleep(3)  # time for any resend
    replies.extend(tenant.take_all(f"{tenant.id}.replies"))
    assert [body["type"] for _, body, _ in replies] == ["tasklinkr.gateway.command.accepted.v1"]
    assert [body["data"]["command_id"] for body in tenant.outcomes()] == [first, command_id]  # once each
    assert len(tenant.take_all(f"{tenant.id}.tiny")) == 1
    assert len(postings.list_postings(tenant.id)["items"]) == 2
    assert command_id not in parked(managed_rabbit.uri)
    assert [record["outcome"] for record in audited(audit, resource_id=command_id)] == ["succeeded"]


def test_revoke_removes_what_the_user_declared_and_grant_refuses_unknown_ids_and_limits_each_user(
        postings, admin, managed_rabbit):
    tenant, credentials = new_tenant(postings, admin, "Revoked Clinics")
    system = PikaTenant(credentials)
    system.channel.queue_declare(f"{tenant['id']}.erp", durable=True)
    system.channel.exchange_declare(f"{tenant['id']}.relay", "fanout", durable=True)
    system.channel.exchange_bind(INBOUND_EXCHANGE, f"{tenant['id']}.relay")
    system.channel.exchange_bind(INBOUND_EXCHANGE, FEED_EXCHANGE, routing_key=f"{tenant['id']}.#")
    api = f"{managed_rabbit.management_url}/api"

    def get(path: str):
        return requests.get(f"{api}{path}", auth=("guest", "guest"), timeout=10)

    # Every tenant queue is capped by the operator policy, whatever it declared.
    def queue() -> dict:
        return get(f"/queues/%2F/{tenant['id']}.erp").json()

    assert wait_for(lambda: queue().get("operator_policy") == "tasklinkr-tenant-queues", timeout=15)
    assert {"max-length", "max-length-bytes", "message-ttl"} <= set(queue()["effective_policy_definition"])
    # Connections per user are limited: the system already holds one.
    extra = [connect(credentials) for _ in range(USER_LIMITS["max-connections"] - 1)]
    with pytest.raises(AMQPConnectionError):
        connect(credentials)

    outcome = admin.revoke(tenant["id"])

    assert outcome["connections_closed"] == USER_LIMITS["max-connections"]
    assert outcome["queues_deleted"] == 2 and outcome["exchanges_deleted"] == 1  # .feed, .erp; .relay
    for path in (f"/queues/%2F/{tenant['id']}.erp", f"/queues/%2F/{tenant['id']}.feed",
                 f"/exchanges/%2F/{tenant['id']}.relay"):
        assert get(path).status_code == 404
    assert [binding for binding in get("/bindings/%2F").json()
            if binding["routing_key"].startswith(tenant["id"]) or binding["source"].startswith(tenant["id"])] == []
    def cut(connection: pika.BlockingConnection) -> bool:
        try:
            connection.process_data_events(time_limit=0.2)
        except pika.exceptions.AMQPError:
            return True
        return connection.is_closed

    assert all(wait_for(lambda c=connection: cut(c), timeout=10) for connection in (system.connection, *extra))

    known = platform_knows(managed_rabbit.uri)
    with pytest.raises(BrokerAdminError, match="no tenant or provider"):
        admin.grant(f"ten_{uuid.uuid4().hex}", known=known)
    with pytest.raises(BrokerAdminError, match="no tenant or provider"):
        admin.grant(f"prv_{uuid.uuid4().hex}", known=lambda _: False)
    assert admin.grant(tenant["id"], known=known).username == tenant["id"]
    admin.revoke(tenant["id"])


@pytest.mark.parametrize("content_type, accepted", [
    ("application/json; charset=utf-8", True),
    ("text/plain", False),
    (None, False),
])
def test_a_command_must_say_it_is_json(tenants, content_type, accepted):
    tenant = tenants("Typed Clinics")
    command_id = tenant.send("posting.create.v1", {"posting": samples.posting()}, content_type=content_type)
    outcome = tenant.outcome(command_id)
    if accepted:
        assert outcome["type"].endswith("command.accepted.v1"), outcome["data"]
    else:
        assert outcome["type"].endswith("command.rejected.v1")
        assert outcome["data"]["reason"].startswith("content_type must be application/json")


def test_events_a_command_causes_carry_its_correlation_id_and_the_audit_trail_finds_every_message_by_it(
        tenants, audit):
    tenant = tenants("Correlated Clinics")
    command_id = tenant.send("posting.create.v1", {"posting": samples.posting(), "publish": True},
                             correlation_id="erp-order-7")
    posting_id = tenant.outcome(command_id)["data"]["result"]["posting_id"]

    def published() -> list[dict]:
        return [body for key, body, _ in tenant.feed()
                if key.endswith(".posting.published.v1") and body["subject"] == posting_id]

    assert wait_for(published, timeout=15)
    assert published()[0]["correlationid"] == "erp-order-7"
    (record,) = audited(audit, correlation_id="erp-order-7")
    assert (record["operation"], record["outcome"], record["actor"]) == \
        ("posting.create.v1", "succeeded", f"client:{tenant.id}")
    assert record["resource_ids"]["command_id"] == command_id

    tenant.publish(b"{not json", routing_key=f"{tenant.id}.posting.create.v1", correlation_id="erp-order-8")
    assert wait_for(lambda: audited(audit, correlation_id="erp-order-8"), timeout=15)
    (malformed,) = audited(audit, correlation_id="erp-order-8")
    assert (malformed["outcome"], malformed["actor"]) == ("failed", f"client:{tenant.id}")
    assert "not valid JSON" in malformed["error"]
