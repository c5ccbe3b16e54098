"""Inbound commands travel in their sender's lane (issue 15): a sender granted access in the enterprise lane has
its commands routed to the enterprise queues, whatever it publishes to the one inbound exchange."""

from __future__ import annotations

import pytest
from kombu import Connection
from nameko.standalone.rpc import ServiceRpcProxy

from examples.tenant_client import TenantClient
from shared.runtime.topology import command_queue_name
from shared.tools.brokeradmin import platform_knows
from tests.support import samples
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def small_lane_platform(container_factory, config):
    """Postings (every lane) and a gateway that consumes only the small lane."""
    from services.gateway.service import GatewayService
    from services.postings.service import PostingsService

    for service, lanes in ((PostingsService, None), (GatewayService, ["smb"])):
        own = dict(config, MONGO_DATABASE=f"{config['MONGO_DATABASE']}_{service.name}", LANES=lanes)
        container_factory(service, own).start()
    with ServiceRpcProxy("postings", config) as proxy:
        yield proxy


def depth(amqp_uri: str, queue: str) -> int:
    with Connection(amqp_uri) as connection:
        return connection.channel().queue_declare(queue, passive=True).message_count


def test_an_enterprise_tenants_command_waits_in_the_enterprise_queue_and_a_small_tenants_is_answered(
        small_lane_platform, admin, managed_rabbit, config):
    postings = small_lane_platform
    known = platform_knows(config["AMQP_URI"])
    enterprise_queue = command_queue_name("posting.create.v1", "gateway", "posting_create_command", "enterprise")
    before = depth(config["AMQP_URI"], enterprise_queue)
    senders = {}
    for segment in ("enterprise", "smb"):
        tenant = postings.create_tenant({**samples.tenant(), "name": f"{segment} co", "segment": segment})["tenant"]
        senders[segment] = (tenant, admin.grant(tenant["id"], known=known))
    try:
        clients = {segment: TenantClient(host="127.0.0.1", port=managed_rabbit.port, username=cred.username,
                                         password=cred.password, vhost=cred.vhost).__enter__()
                   for segment, (_, cred) in senders.items()}
        small_id = clients["smb"].send("posting.create.v1", {"posting": samples.posting()})
        big_id = clients["enterprise"].send("posting.create.v1", {"posting": samples.posting()})

        assert clients["smb"].outcome(small_id)["type"].endswith("command.accepted.v1")
        assert clients["smb"].outcome(small_id)["lane"] == "smb"
        # Nobody consumes the enterprise lane here: the command waits there, unanswered, never in the small lane.
        assert wait_for(lambda: depth(config["AMQP_URI"], enterprise_queue) == before + 1, timeout=10)
        clients["enterprise"].drain(1.0)
        assert not [body for _, body, _ in clients["enterprise"].received
                    if body.get("data", {}).get("command_id") == big_id]
    finally:
        with Connection(config["AMQP_URI"]) as connection:  # the session's broker: leave no command behind
            connection.channel().queue_purge(enterprise_queue)
        for segment, (tenant, _) in senders.items():
            clients[segment].__exit__(None, None, None)
            admin.revoke(tenant["id"])
    # Revoking the sender removes its lane routing too.
    bindings = admin.listing("bindings")
    assert not [b for b in bindings if b["routing_key"].startswith(senders["enterprise"][0]["id"])]
