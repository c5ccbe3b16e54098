"""The tenant sweep (shared/tools/tenantsweep.py): what a tenant's broker user may declare but the permissions cannot
refuse, made by the tenant with pika, and removed by a pass (the CLI's, or the gateway's timer), each removal on
the gateway's audit trail; what a tenant legitimately declared stays and keeps receiving.

On the session's own RabbitMQ node with the management plugin (tests/integration/conftest.py: managed_rabbit).
"""

from __future__ import annotations

import json
import logging
import uuid

import pika
import pytest

from services.gateway.audit import AuditLog
from shared.runtime.topology import FEED_EXCHANGE, INBOUND_EXCHANGE
from shared.tools.brokeradmin import BrokerAdmin
from shared.tools.tenantsweep import SEEN, SWEEP_OPERATION, TenantSweep
from tests.support.infra import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin(managed_rabbit):
    return BrokerAdmin(managed_rabbit.management_url, managed_rabbit.uri)


@pytest.fixture
def database(mongo_client, request):
    name = f"sweep_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)


@pytest.fixture
def audit(database) -> AuditLog:
    return AuditLog(database)


class Tenant:
    """A tenant's own system over pika, with its legitimate queue ``<id>.feed`` bound to the feed."""

    def __init__(self, rabbit, admin: BrokerAdmin):
        self.id = f"ten_{uuid.uuid4().hex}"
        credentials = admin.grant(self.id)
        self.connection = pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=rabbit.port, connection_attempts=1,
            credentials=pika.PlainCredentials(credentials.username, credentials.password)))
        self.channel = self.connection.channel()
        self.declare_queue("feed")

    def declare_queue(self, suffix: str, **arguments) -> str:
        name = f"{self.id}.{suffix}"
        self.channel.queue_declare(name, durable=True, arguments=arguments or None)
        self.channel.queue_bind(name, FEED_EXCHANGE, routing_key=f"{self.id}.{suffix}.#")
        return name

    def feed_receives(self, platform_uri: str, suffix: str = "feed") -> bool:
        """An event the platform publishes to the feed under this tenant's key arrives in its queue."""
        marker = uuid.uuid4().hex
        with pika.BlockingConnection(pika.URLParameters(platform_uri)) as platform:
            platform.channel().basic_publish(FEED_EXCHANGE, f"{self.id}.{suffix}.posting.published.v1",
                                             json.dumps({"marker": marker}).encode())

        def arrived() -> bool:
            method, _, body = self.channel.basic_get(f"{self.id}.{suffix}", auto_ack=True)
            return method is not None and json.loads(body)["marker"] == marker

        return wait_for(arrived, timeout=10)


@pytest.fixture
def tenant(managed_rabbit, admin):
    made = Tenant(managed_rabbit, admin)
    yield made
    if made.connection.is_open:
        made.connection.close()
    admin.revoke(made.id)


def sweep(admin: BrokerAdmin, database, audit: AuditLog, max_queues: int = 20) -> list:
    return TenantSweep(admin, max_queues).run(database[SEEN], audit.swept)


def names(admin: BrokerAdmin, kind: str) -> set[str]:
    return {item["name"] for item in admin.listing(kind)}


def bindings_into(admin: BrokerAdmin, destination: str) -> list[dict]:
    return [b for b in admin.listing("bindings") if b["destination"] == destination]


def swept_records(audit: AuditLog, tenant_id: str) -> dict[str, str]:
    """What the audit trail says the sweep removed of the tenant's: name -> why."""
    records = audit.page({"tenant_id": tenant_id, "operation": SWEEP_OPERATION}, 50)["items"]
    return {next(iter(record["resource_ids"].values())): record["error"] for record in records}


def test_a_sweep_removes_the_tenants_exchanges_and_bindings_into_the_inbound_exchange_and_nothing_of_the_platform(
        managed_rabbit, admin, tenant, database, audit):
    platform_exchanges = {name for name in names(admin, "exchanges") if not name.startswith(("ten_", "prv_"))}
    platform_queues = {name for name in names(admin, "queues") if not name.startswith(("ten_", "prv_"))}
    platform_bindings = len([b for b in admin.listing("bindings") if not b["source"].startswith(("ten_", "prv_"))
                             and b["destination"] != INBOUND_EXCHANGE])
    relay = f"{tenant.id}.relay"
    tenant.channel.exchange_declare(relay, "fanout", durable=True)
    tenant.channel.exchange_bind(INBOUND_EXCHANGE, relay)
    tenant.channel.exchange_bind(INBOUND_EXCHANGE, FEED_EXCHANGE, routing_key=f"{tenant.id}.#")
    assert len(bindings_into(admin, INBOUND_EXCHANGE)) == 2

    sweep(admin, database, audit)

    assert relay not in names(admin, "exchanges")
    assert bindings_into(admin, INBOUND_EXCHANGE) == []
    records = swept_records(audit, tenant.id)
    assert records[relay].startswith("removed by the tenant sweep: a tenant's or provider's user may declare "
                                     "queues only")
    assert f"binds {FEED_EXCHANGE} into {INBOUND_EXCHANGE}" in records[
        f"{FEED_EXCHANGE} -> {INBOUND_EXCHANGE} [{tenant.id}.#]"]
    # The platform's own topology is untouched, and the tenant's legitimate queue still receives.
    assert platform_exchanges <= names(admin, "exchanges")
    assert platform_queues <= names(admin, "queues")
    assert platform_bindings == len([b for b in admin.listing("bindings")
                                     if not b["source"].startswith(("ten_", "prv_"))])
    assert tenant.feed_receives(managed_rabbit.uri)


def test_a_sweep_removes_a_tenant_queue_that_dead_letters_into_the_inbound_exchange(
        managed_rabbit, admin, tenant, database, audit):
    bounce = tenant.declare_queue("bounce", **{"x-message-ttl": 0, "x-dead-letter-exchange": INBOUND_EXCHANGE,
                                               "x-dead-letter-routing-key": f"{tenant.id}.posting.create.v1"})
    kept = tenant.declare_queue("own-dlx", **{"x-dead-letter-exchange": f"{tenant.id}.nowhere"})

    sweep(admin, database, audit)

    queues = names(admin, "queues")
    assert bounce not in queues
    assert {f"{tenant.id}.feed", kept} <= queues
    assert swept_records(audit, tenant.id)[bounce] == \
        f"removed by the tenant sweep: dead-letters into the exchange {INBOUND_EXCHANGE}, not one of its own"
    assert tenant.feed_receives(managed_rabbit.uri)


def test_a_sweep_keeps_the_max_number_of_queues_per_user_and_deletes_the_newest_beyond_it(
        managed_rabbit, admin, tenant, database, audit):
    older = tenant.declare_queue("erp")
    assert sweep(admin, database, audit, max_queues=3) == []  # .feed and .erp: first seen now
    newer = [tenant.declare_queue(f"extra{n}") for n in range(3)]

    removed = sweep(admin, database, audit, max_queues=3)

    assert [(removal.kind, removal.name) for removal in removed] == [("queue", newer[2]), ("queue", newer[1])]
    assert {name for name in names(admin, "queues") if name.startswith(tenant.id)} == \
        {f"{tenant.id}.feed", older, newer[0]}
    assert swept_records(audit, tenant.id)[newer[2]] == \
        "removed by the tenant sweep: more than 3 queues for one user"
    assert tenant.feed_receives(managed_rabbit.uri) and tenant.feed_receives(managed_rabbit.uri, "erp")
    # Another tenant's queues are counted on their own.
    other = Tenant(managed_rabbit, admin)
    try:
        assert sweep(admin, database, audit, max_queues=3) == []
    finally:
        other.connection.close()
        admin.revoke(other.id)


def test_without_the_management_api_a_sweep_does_nothing_and_says_so_once(managed_rabbit, database, audit, caplog):
    unreachable = TenantSweep(BrokerAdmin(f"http://127.0.0.1:{free_port()}", managed_rabbit.uri, timeout=2))
    with caplog.at_level(logging.WARNING, logger="shared.tools.tenantsweep"):
        assert unreachable.run(database[SEEN], audit.swept) == []
        assert unreachable.run(database[SEEN], audit.swept) == []
    assert len([r for r in caplog.records if "management API does not answer" in r.getMessage()]) == 1


def test_the_gateway_sweeps_on_its_timer_and_audits_each_removal(
        container_factory, service_config, managed_rabbit, admin, tenant, mongo_client):
    from services.gateway.service import GatewayService

    config = dict(service_config, AMQP_URI=managed_rabbit.uri, RABBITMQ_MANAGEMENT_URL=managed_rabbit.management_url,
                  TENANT_SWEEP_INTERVAL_SECONDS=0.5, TENANT_MAX_QUEUES=5)
    container_factory(GatewayService, config).start()
    relay = f"{tenant.id}.relay"
    tenant.channel.exchange_declare(relay, "topic", durable=True)
    tenant.channel.exchange_bind(INBOUND_EXCHANGE, relay, routing_key="#")

    assert wait_for(lambda: relay not in names(admin, "exchanges") and not bindings_into(admin, INBOUND_EXCHANGE),
                    timeout=15)
    audit = AuditLog(mongo_client[config["MONGO_DATABASE"]])
    assert wait_for(lambda: relay in swept_records(audit, tenant.id), timeout=5)
    assert tenant.feed_receives(managed_rabbit.uri)


def test_the_gateway_does_not_sweep_when_the_interval_is_off(
        container_factory, service_config, managed_rabbit, admin, tenant):
    from services.gateway.service import GatewayService

    config = dict(service_config, AMQP_URI=managed_rabbit.uri, RABBITMQ_MANAGEMENT_URL=managed_rabbit.management_url,
                  TENANT_SWEEP_INTERVAL_SECONDS="off")
    container_factory(GatewayService, config).start()
    relay = f"{tenant.id}.relay"
    tenant.channel.exchange_declare(relay, "fanout", durable=True)
    assert not wait_for(lambda: relay not in names(admin, "exchanges"), timeout=3)


def test_the_cli_sweeps_once_prints_what_it_removed_and_audits_it(
        monkeypatch, managed_rabbit, admin, tenant, mongo_uri, database):
    from typer.testing import CliRunner

    from shared.tools.cli import app

    for name, value in {"RABBITMQ_MANAGEMENT_URL": managed_rabbit.management_url, "AMQP_URI": managed_rabbit.uri,
                        "GATEWAY_MONGO_URI": mongo_uri, "GATEWAY_MONGO_DATABASE": database.name,
                        "CONFIG_FILE": "/dev/null"}.items():
        monkeypatch.setenv(f"TASKLINKR_{name}", value)
    bounce = tenant.declare_queue("bounce", **{"x-dead-letter-exchange": INBOUND_EXCHANGE})

    result = CliRunner().invoke(app, ["tenant-access", "sweep"])

    assert result.exit_code == 0, result.output
    printed = [removal for removal in json.loads(result.stdout) if removal["owner"] == tenant.id]
    assert printed == [{"kind": "queue", "name": bounce, "owner": tenant.id,
                        "reason": f"dead-letters into the exchange {INBOUND_EXCHANGE}, not one of its own"}]
    assert bounce not in names(admin, "queues")
    assert bounce in swept_records(AuditLog(database), tenant.id)


def test_the_cli_says_when_the_management_api_does_not_answer(monkeypatch, managed_rabbit):
    from typer.testing import CliRunner

    from shared.tools.cli import app

    monkeypatch.setenv("TASKLINKR_RABBITMQ_MANAGEMENT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TASKLINKR_AMQP_URI", managed_rabbit.uri)

    result = CliRunner().invoke(app, ["tenant-access", "sweep"])

    assert result.exit_code == 1
    assert "management API not reachable" in result.output
