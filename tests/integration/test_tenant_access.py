"""A tenant's own broker user (on the session's own RabbitMQ node with the management plugin): what it may do,
what the broker refuses, and revocation.
"""

from __future__ import annotations

import uuid

import amqp.exceptions
import pika
import pytest
from kombu import Connection, Exchange, Queue

from shared.runtime import topology
from shared.tools.brokeradmin import BrokerAdmin, BrokerAdminError
from tests.support.infra import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def tenant_id() -> str:
    return f"ten_{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def rabbit(managed_rabbit):
    return managed_rabbit


@pytest.fixture(scope="module")
def admin(rabbit):
    return BrokerAdmin(rabbit.management_url, rabbit.uri)


@pytest.fixture()
def tenant(admin):
    """A provisioned tenant: (id, credentials)."""
    tid = tenant_id()
    credentials = admin.grant(tid)
    yield tid, credentials
    admin.revoke(tid)


def connect(rabbit, credentials) -> Connection:
    return Connection(hostname="127.0.0.1", port=rabbit.port, userid=credentials.username,
                      password=credentials.password, virtual_host=credentials.vhost, connect_timeout=5,
                      transport_options={"confirm_publish": True})


FEED = Exchange(topology.FEED_EXCHANGE, type="topic", passive=True)
INBOUND = Exchange(topology.INBOUND_EXCHANGE, type="topic", passive=True)


def test_a_tenant_binds_its_own_prefix_on_the_feed_and_publishes_commands_as_itself(rabbit, tenant):
    tid, credentials = tenant
    with connect(rabbit, credentials) as connection:
        queue = Queue(f"{tid}.erp", exchange=FEED, routing_key=f"{tid}.#", durable=True)
        queue(connection.channel()).declare()
        producer = connection.Producer()
        producer.publish({"command": "ping"}, exchange=INBOUND, routing_key=f"{tid}.posting.create.v1",
                         user_id=tid, retry=False)  # confirmed by the broker, or this raises


@pytest.mark.parametrize("attempt", [
    "bind_another_tenants_prefix",
    "bind_every_key",
    "bind_an_internal_exchange",
    "declare_a_queue_outside_its_prefix",
])
def test_the_broker_refuses_reading_outside_the_tenants_own_keys(rabbit, tenant, attempt):
    tid, credentials = tenant
    other = tenant_id()
    internal = Exchange("postings.events", type="topic", passive=True)
    queue_of = {
        "bind_another_tenants_prefix": Queue(f"{tid}.spy", exchange=FEED, routing_key=f"{other}.#"),
        "bind_every_key": Queue(f"{tid}.spy", exchange=FEED, routing_key="#"),
        "bind_an_internal_exchange": Queue(f"{tid}.spy", exchange=internal, routing_key="posting.published.v1"),
        "declare_a_queue_outside_its_prefix": Queue(f"{other}.spy"),
    }
    with connect(rabbit, credentials) as connection:
        with pytest.raises(amqp.exceptions.AccessRefused):
            queue_of[attempt](connection.channel()).declare()


@pytest.mark.parametrize("attempt, refusal", [
    ("internal_exchange", amqp.exceptions.AccessRefused),
    ("default_exchange_into_a_service_queue", amqp.exceptions.AccessRefused),
    ("another_tenants_command_key", amqp.exceptions.AccessRefused),
    ("another_tenants_user_id", amqp.exceptions.PreconditionFailed),
])
def test_the_broker_refuses_publishing_anything_but_own_commands(rabbit, tenant, attempt, refusal):
    tid, credentials = tenant
    other = tenant_id()
    publish = {
        "internal_exchange": dict(exchange=Exchange("postings.events", type="topic", passive=True),
                                  routing_key="posting.published.v1", user_id=tid),
        "default_exchange_into_a_service_queue": dict(exchange="", routing_key="dlq.matching", user_id=tid),
        "another_tenants_command_key": dict(exchange=INBOUND, routing_key=f"{other}.posting.create.v1",
                                            user_id=tid),
        "another_tenants_user_id": dict(exchange=INBOUND, routing_key=f"{tid}.posting.create.v1", user_id=other),
    }[attempt]
    with connect(rabbit, credentials) as connection:
        with pytest.raises(refusal):
            connection.Producer().publish({"command": "ping"}, retry=False, **publish)


def test_revoking_closes_the_tenants_connections_and_refuses_new_ones(rabbit, admin):
    tid = tenant_id()
    credentials = admin.grant(tid)
    connection = connect(rabbit, credentials)
    connection.ensure_connection(max_retries=1)
    assert tid in admin.users()

    outcome = admin.revoke(tid)

    assert outcome["user_deleted"] is True
    assert tid not in admin.users()

    def cut() -> bool:
        try:
            connection.drain_events(timeout=0.2)
        except TimeoutError:
            return False
        except (OSError, amqp.exceptions.ConnectionForced, amqp.exceptions.RecoverableConnectionError):
            return True
        return False

    assert wait_for(cut, timeout=15)
    with pytest.raises(amqp.exceptions.AccessRefused):
        connect(rabbit, credentials).ensure_connection(max_retries=1)
    assert admin.revoke(tid)["user_deleted"] is False  # revoking twice is harmless


def test_grant_refuses_what_is_not_a_tenant_id(admin):
    with pytest.raises(BrokerAdminError):
        admin.grant("guest")


def test_grant_prints_everything_a_client_needs_and_a_second_client_library_connects_with_only_that(rabbit, tenant):
    tid, credentials = tenant
    printed = credentials.as_dict()
    assert printed == {"host": "127.0.0.1", "port": rabbit.port, "tls": False, "username": tid,
                       "password": credentials.password, "vhost": "/", "feed_exchange": topology.FEED_EXCHANGE,
                       "inbound_exchange": topology.INBOUND_EXCHANGE, "key_prefix": f"{tid}."}
    parameters = pika.ConnectionParameters(
        host=printed["host"], port=printed["port"], virtual_host=printed["vhost"], connection_attempts=1,
        credentials=pika.PlainCredentials(printed["username"], printed["password"]))
    with pika.BlockingConnection(parameters) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(printed["inbound_exchange"], f"{printed['key_prefix']}posting.create.v1", b"{}",
                              pika.BasicProperties(user_id=printed["username"], content_type="application/json"))


def test_grant_prints_the_address_tenants_reach_the_broker_at_when_it_is_not_the_platforms(rabbit):
    admin = BrokerAdmin(rabbit.management_url, rabbit.uri, tenant_broker_url="amqps://broker.example.com")
    tid = tenant_id()
    try:
        printed = admin.grant(tid).as_dict()
    finally:
        admin.revoke(tid)
    assert (printed["host"], printed["port"], printed["tls"]) == ("broker.example.com", 5671, True)


def test_without_the_management_api_grant_says_exactly_what_to_run(rabbit):
    unreachable = BrokerAdmin(f"http://127.0.0.1:{free_port()}", rabbit.uri, timeout=2)
    with pytest.raises(BrokerAdminError, match="rabbitmq-plugins enable rabbitmq_management"):
        unreachable.grant(tenant_id())
