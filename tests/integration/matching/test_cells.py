"""Matching in cells (docs/operations.md, Cells): a process per lane, each with a database of its own. Each cell
keeps the provider projection from the provider-wide events every lane's queue receives, shortlists only its own
lane's postings, and a client's shortlist read, called in the client's lane as the gateway calls it, reaches the
cell that holds it."""

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.matching.service import MatchingService
from shared.runtime.rpc import lane_routing_prefix
from shared.vocabulary.errors import NotFound
from tests.integration.matching.events import (
    TENANT,
    deliver,
    emitted,
    profile_event,
    publish,
)
from tests.support.waiting import applied
from tests.unit.matching import builders as b

pytestmark = pytest.mark.integration

LANE_TENANTS = {"smb": b.TENANT, "enterprise": "ten_" + "e" * 32}
LANE_POSTINGS = {"smb": "pst_" + "5" * 32, "enterprise": "pst_" + "6" * 32}


@pytest.fixture
def cells(container_factory, config, quiet_queues, mongo_client):
    """A matching process per lane, each on a database of its own."""
    found = {}
    for lane in LANE_TENANTS:
        cell_config = {**config, "LANES": [lane], "MONGO_DATABASE": f"{config['MONGO_DATABASE']}_{lane}"}
        container = container_factory(MatchingService, cell_config)
        container.start()
        found[lane] = (container, mongo_client[cell_config["MONGO_DATABASE"]])
    yield found
    for _, database in found.values():
        mongo_client.drop_database(database.name)


def shortlist_in(amqp_uri, lane, tenant, posting_id):
    """``matching.get_shortlist`` called in ``lane``, the gateway's way (``rpc-matching--<lane>``)."""
    with ServiceRpcProxy(lane_routing_prefix("matching", lane), {"AMQP_URI": amqp_uri, "serializer": "json"},
                         timeout=20) as proxy:
        return proxy.get_shortlist(tenant, posting_id)


def test_each_cell_keeps_the_providers_and_shortlists_only_its_lanes_postings(cells, amqp_uri):
    providers = [b.profile(n=n) for n in (31, 32)]
    for provider in providers:  # provider-wide: a copy for each lane's queue, applied by each cell
        with entrypoint_waiter(cells["smb"][0], "on_provider_registered", timeout=20), \
                entrypoint_waiter(cells["enterprise"][0], "on_provider_registered", timeout=20):
            event = publish(amqp_uri, "providers", "provider.registered.v1", {"provider": profile_event(provider)},
                            provider["id"], lane="smb")
        assert all(applied(container, event["id"]) for container, _ in cells.values())
    for lane, (_, database) in cells.items():
        assert {p["_id"] for p in database.providers.find({}, {"_id": 1})} == {p["id"] for p in providers}, lane

    for lane, tenant in LANE_TENANTS.items():
        container = cells[lane][0]
        deliver(container, amqp_uri, "on_tenant_registered", "postings", "tenant.registered.v1",
                {"tenant": {**TENANT, "id": tenant, "segment": lane}}, tenant, lane=lane, tenant=tenant)
        posting = {**b.POSTING, "id": LANE_POSTINGS[lane], "tenant_id": tenant}
        deliver(container, amqp_uri, "on_posting_published", "postings", "posting.published.v1",
                {"posting": posting}, posting["id"], lane=lane, tenant=tenant)

    for lane, (_, database) in cells.items():
        other = next(o for o in LANE_POSTINGS if o != lane)
        (proposed,) = emitted(database, "matches.proposed.v1", LANE_POSTINGS[lane])
        assert proposed["lane"] == lane
        assert {c["provider_id"] for c in proposed["data"]["shortlist"]["candidates"]} == {p["id"] for p in providers}
        assert emitted(database, "matches.proposed.v1", LANE_POSTINGS[other]) == [], "the other cell's posting"
        # The client's read in its own lane reaches its cell; in the other lane it reaches a cell without it.
        shortlist = shortlist_in(amqp_uri, lane, LANE_TENANTS[lane], LANE_POSTINGS[lane])["shortlist"]
        assert shortlist == proposed["data"]["shortlist"]
        with pytest.raises(NotFound):
            shortlist_in(amqp_uri, other, LANE_TENANTS[lane], LANE_POSTINGS[lane])


def test_a_providers_contract_in_one_lane_counts_in_every_cells_load(cells, amqp_uri):
    """An individual (the smb lane's provider) on an enterprise client's contract: the contract's events travel in
    the enterprise lane, and each cell still counts the load, so the smb cell (where postings asks for free capacity
    in the default lane) does not offer hours the provider has committed elsewhere."""
    from tests.integration.matching.test_track_record import PROVIDER, example

    provider = {**b.profile(), "id": PROVIDER}
    with entrypoint_waiter(cells["smb"][0], "on_provider_registered", timeout=20), \
            entrypoint_waiter(cells["enterprise"][0], "on_provider_registered", timeout=20):
        publish(amqp_uri, "providers", "provider.registered.v1", {"provider": profile_event(provider)}, PROVIDER)
    activated = example("contract.activated.v1")  # 20 h a week
    contract = activated["contract"]
    with entrypoint_waiter(cells["smb"][0], "on_contract_activated", timeout=20), \
            entrypoint_waiter(cells["enterprise"][0], "on_contract_activated", timeout=20):
        event = publish(amqp_uri, "contracting", "contract.activated.v1", activated, contract["id"],
                        lane="enterprise", tenant=contract["tenant_id"])
    assert all(applied(container, event["id"]) for container, _ in cells.values())
    for lane in cells:
        with ServiceRpcProxy(lane_routing_prefix("matching", lane), {"AMQP_URI": amqp_uri, "serializer": "json"},
                             timeout=20) as proxy:
            answer = proxy.free_capacity(PROVIDER)
        assert float(answer["free_hours_per_week"]) == provider["capacity_hours_per_week"] - 20, lane


def test_a_matching_database_from_before_cells_split_into_cells_leaves_each_cell_its_lanes_postings(
        container_factory, config, quiet_queues, mongo_client, mongo_uri, amqp_uri, tmp_path, monkeypatch):
    """The upgrade from one matching database (docs/operations.md, Cells): both lanes' postings shortlisted by one
    process on one database, backed up and split by ``tasklinkr split matching``; each cell then holds its lane's
    postings with their shortlists and every provider, and answers its clients' reads."""
    whole = f"{config['MONGO_DATABASE']}_whole"
    before = container_factory(MatchingService, {**config, "MONGO_DATABASE": whole})
    before.start()
    provider = b.profile(n=41)
    with entrypoint_waiter(before, "on_provider_registered", timeout=20):
        publish(amqp_uri, "providers", "provider.registered.v1", {"provider": profile_event(provider)},
                provider["id"], lane="smb")
    shortlists = {}
    for lane, tenant in LANE_TENANTS.items():
        deliver(before, amqp_uri, "on_tenant_registered", "postings", "tenant.registered.v1",
                {"tenant": {**TENANT, "id": tenant, "segment": lane}}, tenant, lane=lane, tenant=tenant)
        posting = {**b.POSTING, "id": LANE_POSTINGS[lane], "tenant_id": tenant}
        deliver(before, amqp_uri, "on_posting_published", "postings", "posting.published.v1", {"posting": posting},
                posting["id"], lane=lane, tenant=tenant)
        (proposed,) = emitted(mongo_client[whole], "matches.proposed.v1", LANE_POSTINGS[lane])
        shortlists[lane] = proposed["data"]["shortlist"]
    before.stop()

    from typer.testing import CliRunner

    from shared.tools.cli import app

    for name, value in (("CONFIG_FILE", "/nonexistent.yaml"), ("MATCHING_MONGO_URI", mongo_uri),
                        ("MATCHING_MONGO_DATABASE", whole),
                        *((f"MATCHING_{lane.upper()}_MONGO_DATABASE", f"{whole}_{lane}") for lane in LANE_TENANTS)):
        monkeypatch.setenv(f"TASKLINKR_{name}", value)
    cli = CliRunner()
    try:
        backed_up = cli.invoke(app, ["backup", "matching", "--out", str(tmp_path)])
        assert backed_up.exit_code == 0, backed_up.output
        split = cli.invoke(app, ["split", "matching", "--from", str(tmp_path)])
        assert split.exit_code == 0, split.output
        for lane in LANE_TENANTS:
            database = mongo_client[f"{whole}_{lane}"]
            assert [posting["_id"] for posting in database.postings.find()] == [LANE_POSTINGS[lane]]
            assert [found["_id"] for found in database.providers.find()] == [provider["id"]]
            container_factory(MatchingService, {**config, "LANES": [lane], "MONGO_DATABASE": database.name}).start()
        for lane, tenant in LANE_TENANTS.items():
            assert shortlist_in(amqp_uri, lane, tenant, LANE_POSTINGS[lane])["shortlist"] == shortlists[lane]
            other = next(o for o in LANE_TENANTS if o != lane)
            with pytest.raises(NotFound):  # the other lane's cell does not hold it
                shortlist_in(amqp_uri, other, tenant, LANE_POSTINGS[lane])
    finally:
        for name in (whole, *(f"{whole}_{lane}" for lane in LANE_TENANTS)):
            mongo_client.drop_database(name)
