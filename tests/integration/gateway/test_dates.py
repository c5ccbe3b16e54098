"""Dates at the edge, through the gateway in front of the real postings and providers services: a date or time
outside the platform's range is 422 on the route and on the RPC an inbound command calls, and an award that
contracting could not turn into a contract (its start past contracting's backdate window) is refused."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from shared.vocabulary.errors import ValidationFailed
from tests.integration.gateway import test_negotiation_routes
from tests.integration.gateway.test_gateway_with_real_services import INBOX_HELP, new_provider, new_tenant
from tests.integration.postings import shortlists

pytestmark = pytest.mark.integration

platform = test_negotiation_routes.platform  # the gateway in front of the real postings and providers services
OPERATOR = {"Authorization": "Bearer test-operator-key"}
RANGE = ["Between 1970-01-01 and 2999-12-31."]


@pytest.mark.parametrize("start_date", ["9999-12-20", "1900-01-01", "3000-01-01"])
def test_a_posting_dated_outside_the_range_is_refused_on_the_route_and_on_the_rpc_a_command_calls(
    platform, base_url, gateway_config, start_date
):
    tenant, client = new_tenant(base_url)
    answer = requests.post(f"{base_url}/v1/postings", headers=client, json=dict(INBOX_HELP, start_date=start_date))
    assert answer.status_code == 422 and answer.json()["details"] == {"start_date": RANGE}
    # posting.create.v1 over the broker reaches postings with the command's body as it is.
    with ServiceRpcProxy("postings", {"AMQP_URI": gateway_config["AMQP_URI"], "serializer": "json"},
                         timeout=10) as postings, pytest.raises(ValidationFailed) as refused:
        postings.create_posting(tenant["id"], dict(INBOX_HELP, start_date=start_date), f"command:{start_date}", True,
                                False)
    assert "start_date" in refused.value.args[1]
    assert requests.get(f"{base_url}/v1/postings", headers=client).json()["items"] == []


def test_dates_and_times_outside_the_range_are_refused_on_provider_billing_and_audit_routes(platform, base_url):
    _, client = new_tenant(base_url)
    provider, provider_key = new_provider(base_url)
    run = requests.post(f"{base_url}/v1/invoice-runs", headers=OPERATOR, json={"as_of": "9999-12-31"})
    assert run.status_code == 422 and run.json()["details"] == {"as_of": RANGE}
    paid = requests.post(f"{base_url}/v1/invoices/inv_1/payments", headers=OPERATOR, json={
        "amount": {"amount": "10.00", "currency": "USD"}, "reference": "r-1", "received_at": "0001-01-01T00:00:00Z"})
    assert paid.status_code == 422 and paid.json()["details"] == {"received_at": RANGE}
    moved = requests.put(f"{base_url}/v1/providers/{provider['id']}/availability", headers=provider_key,
                         json={"availability": {"status": "limited", "available_from": "1900-01-01"}})
    assert moved.status_code == 422 and moved.json()["details"] == {"availability": {"available_from": RANGE}}
    audit = requests.get(f"{base_url}/v1/audit", headers=OPERATOR, params={"since": "9999-12-31T23:00:00-05:00"})
    assert audit.status_code == 422 and audit.json()["details"] == {"since": RANGE}


def test_an_award_whose_contract_would_start_past_the_backdate_window_is_refused_and_the_posting_stays_open(
    platform, base_url, amqp_uri, mongo_client, gateway_config
):
    long_ago = (datetime.now(UTC) - timedelta(days=90)).date().isoformat()
    _, client = new_tenant(base_url)
    maria, maria_key = new_provider(base_url)
    created = requests.post(f"{base_url}/v1/postings", headers=client, json=dict(INBOX_HELP, start_date=long_ago))
    assert created.status_code == 201, created.text
    posting = requests.post(f"{base_url}/v1/postings/{created.json()['id']}/publish", headers=client).json()
    shortlists.publish(amqp_uri, shortlists.shortlist_event(posting, 1, [shortlists.candidate(maria["id"], 1, "0.9")]))
    assert test_negotiation_routes.shortlists_arrived(
        mongo_client[f"{gateway_config['MONGO_DATABASE']}_postings"], posting["id"])
    invitation = requests.post(f"{base_url}/v1/postings/{posting['id']}/invitations", headers=client,
                               json={"provider_id": maria["id"]}).json()
    requests.post(f"{base_url}/v1/invitations/{invitation['id']}/accept", headers=maria_key)
    terms = {"price": {"amount": "14.00", "currency": "USD"}, "hours_per_week": 20, "available_from": long_ago}
    proposal = requests.post(f"{base_url}/v1/invitations/{invitation['id']}/proposals", headers=maria_key,
                             json={"terms": terms}).json()
    assert requests.post(f"{base_url}/v1/proposals/{proposal['id']}/accept", headers=client).status_code == 200

    refused = requests.post(f"{base_url}/v1/postings/{posting['id']}/award", headers=client,
                            json={"proposal_id": proposal["id"]})
    assert refused.status_code == 409, refused.text
    assert "start_date" in refused.json()["details"]
    assert requests.get(f"{base_url}/v1/postings/{posting['id']}", headers=client).json()["status"] == "open"
