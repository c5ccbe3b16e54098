"""Billing in cells (docs/operations.md, Cells): a billing process per lane, each with a database of its own, behind
the real gateway. A contract's records live in the cell of its client's lane; an individual provider (smb lane) on
an enterprise client's contract calls in its own lane, and the gateway finds the contract in the lane that holds it.
The operator's invoice run runs in every cell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from services.billing.service import BillingService
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


@pytest.fixture
def cells(container_factory, runner_factory, gateway_config, mongo_client):
    """Providers, postings and the gateway, each on its own database, and a billing process per lane on a database
    of its own (its cell)."""
    from services.gateway.service import GatewayService
    from services.postings.service import PostingsService
    from services.providers.service import ProvidersService

    database = gateway_config["MONGO_DATABASE"]
    for service in (ProvidersService, PostingsService):
        container_factory(service, dict(gateway_config, MONGO_DATABASE=f"{database}_{service.name}")).start()
    found = Cells(container_factory)
    for lane in LANES:
        found.configs[lane] = dict(gateway_config, LANES=[lane], MONGO_DATABASE=f"{database}_billing_{lane}",
                                   BILLING_INVOICE_RUN_INTERVAL_SECONDS=3600)
        found.start(lane)
        found[lane] = mongo_client[found.configs[lane]["MONGO_DATABASE"]]
    runner_factory(dict(gateway_config, MONGO_DATABASE=f"{database}_gateway"), GatewayService).start()
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
    assert all(cells[lane].tenants.count_documents({"_id": clients[OTHER[lane]][0]["id"]}) == 0 for lane in LANES)
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
