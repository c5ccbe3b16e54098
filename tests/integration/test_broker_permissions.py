"""Each service's broker user (deploy/gen_definitions.py ``service_permissions``) on the real RabbitMQ: enough for
everything the service really does, and refused everything of another service.

The users and their permissions live in a vhost of the test's own, both deleted afterwards. The contracting
service runs as its own user: it declares its queues, consumes an award, answers RPC, and its outbox relay
publishes the contract's events; the same user is then refused billing's queues and exchange.
"""

from __future__ import annotations

import secrets

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Queue
from nameko.rpc import get_rpc_exchange
from nameko.standalone.rpc import ServiceRpcProxy

from services.contracting.service import ContractingService
from shared.runtime import topology
from shared.runtime.messaging import dead_letter_queue_name
from shared.runtime.outbox import outbox_size, pending_count
from tests.contract.scripts import load_script
from tests.integration.contracting import awards
from tests.support.infra import LOCAL_AMQP, rabbitmqctl, unique_name
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

REPO_DEFINITIONS = "deploy/gen_definitions.py"


@pytest.fixture(scope="module")
def generator():
    from pathlib import Path

    return load_script(Path(__file__).resolve().parents[2] / REPO_DEFINITIONS, "gen_definitions")


@pytest.fixture(scope="module")
def broker_users(generator):
    """A vhost with the topology applied (by guest, as the operator would) and the users of contracting and
    billing with exactly the permissions the definitions give them."""
    vhost = unique_name("perms")
    catalog = topology.load_catalog()
    users = {}
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        for service in ("contracting", "billing"):
            user, password = f"{vhost}-{service}", secrets.token_hex(16)
            rabbitmqctl("add_user", user, password)
            granted = generator.service_permissions(catalog, service)
            rabbitmqctl("set_permissions", "-p", vhost, user, granted["configure"], granted["write"], granted["read"])
            users[service] = f"amqp://{user}:{password}@{LOCAL_AMQP}/{vhost}"
        operator = f"amqp://guest:guest@{LOCAL_AMQP}/{vhost}"
        topology.apply(operator)
        yield {"operator": operator, **users}
    finally:
        for user in users:
            try:
                rabbitmqctl("delete_user", f"{vhost}-{user}")
            except Exception:  # never created
                pass
        rabbitmqctl("delete_vhost", vhost)


def billing_event_queue() -> str:
    _, queues = topology.declarations(topology.load_catalog())
    return next(q.name for q in queues
                if q.name.startswith("evt-") and "--billing." in q.name and ".retry-" not in q.name)


def test_a_service_runs_as_its_own_broker_user_consuming_answering_and_publishing(
        broker_users, container_factory, service_config, database):
    from datetime import UTC, datetime, timedelta

    container_factory(ContractingService, {**service_config, "AMQP_URI": broker_users["contracting"]}).start()
    event = awards.award_event(start=datetime.now(UTC).date() + timedelta(days=7))
    awards.publish(broker_users["operator"], event)  # as postings' relay would

    assert wait_for(lambda: database.contracts.find_one({"posting_id": event["subject"]}) is not None, timeout=20)
    contract_id = database.contracts.find_one({"posting_id": event["subject"]})["_id"]
    client = {"kind": "client", "tenant_id": event["data"]["client"]["tenant_id"]}
    with ServiceRpcProxy("contracting", {"AMQP_URI": broker_users["operator"], "serializer": "json"},
                         timeout=20) as contracting:
        draft = contracting.get_contract(client, contract_id)
        assert contracting.sign_contract(client, draft["id"], {"terms_hash": draft["terms_hash"]})["signatures"]
    # Its relay published the signature's event (to contracting.events and the tenant feed) as itself.
    assert wait_for(lambda: outbox_size(database) > 0 and pending_count(database) == 0, timeout=20)

    # Retry and dead-letter copies go through the default exchange, to its own queues.
    with Connection(broker_users["contracting"], transport_options={"confirm_publish": True}) as connection:
        connection.Producer().publish({"probe": True}, exchange="", routing_key=dead_letter_queue_name("contracting"),
                                      serializer="json", mandatory=True)


@pytest.mark.parametrize("trespass", ["consume billing's event queue", "read billing's dead letters",
                                      "take billing's RPC queue", "publish as billing"])
def test_a_service_user_is_refused_another_services_queues_and_exchange(broker_users, trespass):
    with Connection(broker_users["contracting"], transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        with pytest.raises(AccessRefused):
            if trespass == "consume billing's event queue":
                Queue(billing_event_queue(), channel=channel).get()
            elif trespass == "read billing's dead letters":
                Queue(dead_letter_queue_name("billing"), channel=channel).get()
            elif trespass == "take billing's RPC queue":
                Queue("rpc-billing--smb", get_rpc_exchange({}), routing_key="billing.smb.*", durable=True,
                      channel=channel).declare()
            else:
                connection.Producer(channel).publish({"forged": True}, exchange="billing.events",
                                                     routing_key="invoice.issued.v1", serializer="json")
