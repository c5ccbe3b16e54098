"""Billing in cells (docs/operations.md, Cells): a billing process per lane, each with a database of its own, behind
the real gateway. A contract's records live in the cell of its client's lane; an individual provider (smb lane) on
an enterprise client's contract calls in its own lane, and the gateway finds the contract in the lane that holds it.
The operator's invoice run runs in every cell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from typer.testing import CliRunner

from services.billing.service import BillingService
from shared.tools.cli import app
from tests.integration.billing import feeds
from tests.support.infra import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

OPERATOR = {"Authorization": "Bearer test-operator-key"}
LANES = ("enterprise", "smb")
ANA = {
    "kind": "individual", "display_name": "Ana Nowak", "headline": "Virtual assistant",
    "models": ["virtual_assistant"], "categories": ["administrative_support"],
    "skills": [{"name": "calendar management", "level": 4}], "languages": ["en"], "country": "PL",
    "time_zone": "Europe/Warsaw",
    "working_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"},
    "delivery_centres": [], "currency": "EUR",
    "rates": {"hourly": {"amount": "20.00"}, "monthly_retainer": None, "per_unit": []},
    "capacity_hours_per_week": 40, "certifications": [], "nda_willing": True,
}


@pytest.fixture
def gateway_config(service_config):
    return dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}", RPC_TIMEOUT_SECONDS=10)


@pytest.fixture
def base_url(gateway_config):
    return f"http://{gateway_config['WEB_SERVER_ADDRESS']}"


class Cells(dict):
    """Each lane's billing database by lane, and what it takes to stop and start that lane's billing process."""

    def __init__(self, container_factory):
        super().__init__()
        self.container_factory = container_factory
        self.configs: dict[str, dict] = {}
        self.containers: dict[str, object] = {}

    def start(self, lane: str) -> None:
        self.containers[lane] = self.container_factory(BillingService, self.configs[lane])
        self.containers[lane].start()

    def stop(self, lane: str) -> None:
        self.containers.pop(lane).stop()


def start_the_rest(container_factory, runner_factory, gateway_config) -> None:
    """Providers, postings and the gateway, each on its own database."""
    from services.gateway.service import GatewayService
    from services.postings.service import PostingsService
    from services.providers.service import ProvidersService

    database = gateway_config["MONGO_DATABASE"]
    for service in (ProvidersService, PostingsService):
        container_factory(service, dict(gateway_config, MONGO_DATABASE=f"{database}_{service.name}")).start()
    runner_factory(dict(gateway_config, MONGO_DATABASE=f"{database}_gateway"), GatewayService).start()


def cell_config(gateway_config, lane: str) -> dict:
    return dict(gateway_config, LANES=[lane], MONGO_DATABASE=f"{gateway_config['MONGO_DATABASE']}_billing_{lane}",
                BILLING_INVOICE_RUN_INTERVAL_SECONDS=3600)


@pytest.fixture
def cells(container_factory, runner_factory, gateway_config, mongo_client):
    """Providers, postings and the gateway, each on its own database, and a billing process per lane on a database
    of its own (its cell)."""
    found = Cells(container_factory)
    for lane in LANES:
        found.configs[lane] = cell_config(gateway_config, lane)
        found.start(lane)
        found[lane] = mongo_client[found.configs[lane]["MONGO_DATABASE"]]
    start_the_rest(container_factory, runner_factory, gateway_config)
    yield found
    for cell_database in found.values():
        mongo_client.drop_database(cell_database.name)


def created(answer: requests.Response, key: str) -> tuple[dict, dict]:
    assert answer.status_code == 201, answer.text
    return answer.json()[key], {"Authorization": f"Bearer {answer.json()['api_key']}"}


def client_of(base_url: str, segment: str) -> tuple[dict, dict]:
    return created(requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, timeout=10, json={
        "name": f"{segment} co", "country": "DE", "time_zone": "Europe/Berlin", "segment": segment}), "tenant")


def activated(amqp_uri: str, cell, tenant_id: str, provider_id: str, lane: str) -> dict:
    """An hourly contract that started last month, activated in its client's lane."""
    first = datetime.now(UTC).date().replace(day=1) - timedelta(days=1)
    wire = feeds.contract(tenant_id=tenant_id, provider_id=provider_id, engagement="hourly", price="20.00",
                          start=first.replace(day=1))
    feeds.publish(amqp_uri, feeds.contract_activated(wire, lane))
    assert wait_for(lambda: cell.accounts.count_documents({"_id": wire["id"]}) == 1)
    return wire


OTHER = {"enterprise": "smb", "smb": "enterprise"}


def approved_work(cells, base_url: str, amqp_uri: str):
    """A client in each lane, one individual provider, a contract of each client with that provider activated in
    its client's lane, and two hours of the provider's work on each, submitted by the provider (who calls in the
    smb lane: the enterprise contract is found in the enterprise cell) and approved by the client. Returns the
    clients (tenant, key) and contracts by lane, the provider's key and each lane's item."""
    clients = {lane: client_of(base_url, lane) for lane in LANES}
    provider, provider_key = created(requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=ANA,
                                                   timeout=10), "provider")
    # Each cell learns its own lane's client and every provider (the provider-wide events reach every lane).
    for lane, cell in cells.items():
        assert wait_for(lambda c=cell, lane=lane: c.tenants.count_documents({"_id": clients[lane][0]["id"]}) == 1
                        and c.providers.count_documents({"_id": provider["id"]}) == 1)
    if cells["smb"].name != cells["enterprise"].name:  # (one database before cells holds both)
        assert all(cells[lane].tenants.count_documents({"_id": clients[OTHER[lane]][0]["id"]}) == 0
                   for lane in LANES)
    contracts = {lane: activated(amqp_uri, cells[lane], clients[lane][0]["id"], provider["id"], lane)
                 for lane in LANES}
    items = {}
    for lane, wire in contracts.items():
        submitted = requests.post(f"{base_url}/v1/billing-accounts/{wire['id']}/items", headers=provider_key,
                                  timeout=10, json={"kind": "time", "key": f"t-{lane}", "date": wire["start_date"],
                                                    "hours": "2", "description": "Inbox triage"})
        assert submitted.status_code == 200, submitted.text
        [items[lane]] = submitted.json()["items"]
        approved = requests.post(f"{base_url}/v1/billing-accounts/{wire['id']}/items/{items[lane]['id']}/approve",
                                 headers=clients[lane][1], timeout=10, json={})
        assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    return clients, contracts, provider_key, items


def test_a_providers_items_land_in_their_contracts_cell_and_the_operators_run_invoices_every_cell(
        cells, base_url, amqp_uri):
    clients, contracts, provider_key, items = approved_work(cells, base_url, amqp_uri)
    for lane, wire in contracts.items():
        assert cells[lane]["items"].count_documents({"contract_id": wire["id"]}) == 1
        assert cells[OTHER[lane]]["items"].count_documents({"contract_id": wire["id"]}) == 0
        account = requests.get(f"{base_url}/v1/billing-accounts/{wire['id']}", headers=provider_key, timeout=10)
        assert account.status_code == 200 and account.json()["contract_id"] == wire["id"], account.text
        listed = requests.get(f"{base_url}/v1/billing-accounts/{wire['id']}/items", headers=provider_key, timeout=10)
        assert [row["id"] for row in listed.json()["items"]] == [items[lane]["id"]], listed.text

    run = requests.post(f"{base_url}/v1/invoice-runs", headers=OPERATOR, json={}, timeout=30)
    assert run.status_code == 200 and run.json()["invoices_issued"] == 2, run.text
    for lane, wire in contracts.items():
        assert [invoice["contract_id"] for invoice in cells[lane].invoices.find()] == [wire["id"]]
        invoices = requests.get(f"{base_url}/v1/invoices", headers=clients[lane][1], timeout=10).json()["items"]
        assert [invoice["contract_id"] for invoice in invoices] == [wire["id"]]
    # The provider's invoices come from both cells, and each one reads from the cell that holds it.
    billed = requests.get(f"{base_url}/v1/invoices?limit=1", headers=provider_key, timeout=10).json()
    assert len(billed["items"]) == 1 and billed["next_cursor"] == billed["items"][0]["id"]
    rest = requests.get(f"{base_url}/v1/invoices?limit=1&cursor={billed['next_cursor']}", headers=provider_key,
                        timeout=10).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {invoice["contract_id"] for invoice in billed["items"] + rest["items"]} == {
        wire["id"] for wire in contracts.values()}
    for invoice in billed["items"] + rest["items"]:
        read = requests.get(f"{base_url}/v1/invoices/{invoice['id']}", headers=provider_key, timeout=10)
        assert read.status_code == 200 and read.json()["id"] == invoice["id"], read.text
    # Each cell numbers the provider's invoices and credit notes in its lane's own series: never the same number.
    numbers = {invoice["contract_id"]: invoice["number"] for invoice in billed["items"] + rest["items"]}
    assert numbers == {contracts["smb"]["id"]: "INV-000001", contracts["enterprise"]["id"]: "INV-500000001"}
    notes = {}
    for lane, wire in contracts.items():
        [invoice] = cells[lane].invoices.find({"contract_id": wire["id"]})
        note = requests.post(f"{base_url}/v1/invoices/{invoice['_id']}/credit-notes", headers=provider_key,
                             timeout=10, json={"amount": {"amount": "1.00", "currency": "EUR"}, "reason": "Rounding."})
        assert note.status_code == 201, note.text
        notes[lane] = note.json()["number"]
    assert notes == {"smb": "CN-000001", "enterprise": "CN-500000001"}

    # A contract no cell holds is still a 404.
    unknown = feeds.hex_id("ctr")
    for answer in (
        requests.post(f"{base_url}/v1/billing-accounts/{unknown}/items", headers=provider_key, timeout=10,
                      json={"kind": "time", "key": "t-x", "date": contracts["smb"]["start_date"], "hours": "1",
                            "description": "x"}),
        requests.get(f"{base_url}/v1/billing-accounts/{unknown}", headers=provider_key, timeout=10),
    ):
        assert answer.status_code == 404, answer.text


def test_the_operators_run_with_one_cell_down_invoices_the_other_and_says_so_and_asking_again_does_the_rest(
        cells, base_url, amqp_uri):
    _clients, contracts, _provider_key, _items = approved_work(cells, base_url, amqp_uri)
    cells.stop("enterprise")

    run = requests.post(f"{base_url}/v1/invoice-runs", headers=OPERATOR, json={}, timeout=30)
    assert run.status_code == 503, run.text
    body = run.json()
    assert body["error"] == "service_unavailable" and "ran in smb but not in enterprise" in body["message"]
    assert body["details"]["ran"] == {"smb": {"invoices_issued": 1, "deferred_batches": 0}}
    assert body["details"]["not_run"]["enterprise"]["error"] == "timeout"
    assert [invoice["contract_id"] for invoice in cells["smb"].invoices.find()] == [contracts["smb"]["id"]]
    assert cells["enterprise"].invoices.count_documents({}) == 0

    # Back up, the cell runs its scheduled run at start-up and invoices what it missed; asking again then issues
    # nothing twice, in either cell.
    cells.start("enterprise")
    assert wait_for(lambda: cells["enterprise"].invoices.count_documents({}) == 1, timeout=30)
    again = requests.post(f"{base_url}/v1/invoice-runs", headers=OPERATOR, json={}, timeout=30)
    assert again.status_code == 200 and again.json()["invoices_issued"] == 0, again.text
    for lane, wire in contracts.items():
        assert [invoice["contract_id"] for invoice in cells[lane].invoices.find()] == [wire["id"]]


def test_a_billing_database_from_before_cells_split_into_cells_leaves_each_cell_its_own_lane_and_bills_on(
        container_factory, runner_factory, gateway_config, base_url, mongo_client, mongo_uri, amqp_uri, tmp_path,
        monkeypatch):
    """The upgrade from one billing database (docs/operations.md, "Upgrading from one billing database"): billed
    work of both lanes, backed up, split into the cells by ``tasklinkr split billing``; each cell then holds only its
    lane's accounts and what was billed on them, and serves them on, numbering in its lane's series."""
    whole = f"{gateway_config['MONGO_DATABASE']}_billing"
    before = Cells(container_factory)
    before.configs["every lane"] = dict(gateway_config, MONGO_DATABASE=whole,
                                        BILLING_INVOICE_RUN_INTERVAL_SECONDS=3600)
    before.start("every lane")
    start_the_rest(container_factory, runner_factory, gateway_config)
    one = mongo_client[whole]
    clients, contracts, provider_key, _items = approved_work({lane: one for lane in LANES}, base_url, amqp_uri)
    run = requests.post(f"{base_url}/v1/invoice-runs", headers=OPERATOR, json={}, timeout=30)
    assert run.status_code == 200 and run.json()["invoices_issued"] == 2, run.text
    before.stop("every lane")

    monkeypatch.setenv("TASKLINKR_CONFIG_FILE", "/nonexistent.yaml")
    monkeypatch.setenv("TASKLINKR_BILLING_MONGO_URI", mongo_uri)
    monkeypatch.setenv("TASKLINKR_BILLING_MONGO_DATABASE", whole)
    cli = CliRunner()
    backed_up = cli.invoke(app, ["backup", "billing", "--out", str(tmp_path)])
    assert backed_up.exit_code == 0, backed_up.output
    # Without a database of each cell's own there is nothing to split into.
    refused = cli.invoke(app, ["split", "billing", "--from", str(tmp_path)])
    assert refused.exit_code == 1 and "billing's cells are one database here" in refused.output
    cells = Cells(container_factory)
    for lane in LANES:
        cells.configs[lane] = cell_config(gateway_config, lane)
        monkeypatch.setenv(f"TASKLINKR_BILLING_{lane.upper()}_MONGO_DATABASE", cells.configs[lane]["MONGO_DATABASE"])
        cells[lane] = mongo_client[cells.configs[lane]["MONGO_DATABASE"]]
    try:
        split = cli.invoke(app, ["split", "billing", "--from", str(tmp_path)])
        assert split.exit_code == 0, split.output
        for lane in LANES:
            assert f"billing-{lane}: restored" in split.output
            ours, theirs = contracts[lane]["id"], contracts[OTHER[lane]]["id"]
            for name in ("accounts", "items", "invoices"):
                field = "_id" if name == "accounts" else "contract_id"
                assert [document[field] for document in cells[lane][name].find()] == [ours], (lane, name)
                assert cells[lane][name].count_documents({field: theirs}) == 0
            assert cells[lane].tenants.count_documents({}) == one.tenants.count_documents({})  # whole in both
        for lane in LANES:
            cells.start(lane)

        # Each cell serves its own: the provider's invoices come once each from both, with their numbers; an
        # invoice run issues nothing twice; new work and credit notes go on in each lane's series and cell.
        billed = requests.get(f"{base_url}/v1/invoices", headers=provider_key, timeout=10).json()["items"]
        assert {invoice["contract_id"]: invoice["number"] for invoice in billed} == {
            contracts["smb"]["id"]: "INV-000001", contracts["enterprise"]["id"]: "INV-500000001"}
        assert len(billed) == 2
        for lane, (_tenant, key) in clients.items():
            theirs = requests.get(f"{base_url}/v1/invoices", headers=key, timeout=10).json()["items"]
            assert [invoice["contract_id"] for invoice in theirs] == [contracts[lane]["id"]]
        again = requests.post(f"{base_url}/v1/invoice-runs", headers=OPERATOR, json={}, timeout=30)
        assert again.status_code == 200 and again.json()["invoices_issued"] == 0, again.text
        for lane, wire in contracts.items():
            submitted = requests.post(f"{base_url}/v1/billing-accounts/{wire['id']}/items", headers=provider_key,
                                      timeout=10, json={"kind": "time", "key": f"after-{lane}",
                                                        "date": wire["start_date"], "hours": "1",
                                                        "description": "Inbox triage"})
            assert submitted.status_code == 200, submitted.text
            assert cells[lane]["items"].count_documents({"key": f"after-{lane}"}) == 1
            assert cells[OTHER[lane]]["items"].count_documents({"key": f"after-{lane}"}) == 0
            [invoice] = cells[lane].invoices.find({"contract_id": wire["id"]})
            note = requests.post(f"{base_url}/v1/invoices/{invoice['_id']}/credit-notes", headers=provider_key,
                                 timeout=10,
                                 json={"amount": {"amount": "1.00", "currency": "EUR"}, "reason": "Rounding."})
            assert note.status_code == 201, note.text
            assert note.json()["number"] == {"smb": "CN-000001", "enterprise": "CN-500000001"}[lane]
    finally:
        for database in (whole, *(cells.configs[lane]["MONGO_DATABASE"] for lane in LANES)):
            mongo_client.drop_database(database)
