"""Invitations, proposals and award over HTTP: the gateway in front of the real providers and postings services."""

import pytest
import requests

from services.gateway.service import GatewayService
from services.postings.service import PostingsService
from services.providers.service import ProvidersService
from tests.integration.postings import shortlists

from .test_gateway_with_real_services import INBOX_HELP, new_provider, new_tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def platform(container_factory, runner_factory, gateway_config):
    for service in (ProvidersService, PostingsService):
        own_database = dict(gateway_config, MONGO_DATABASE=f"{gateway_config['MONGO_DATABASE']}_{service.name}")
        container_factory(service, own_database).start()
    runner = runner_factory(gateway_config, GatewayService)
    runner.start()
    return runner


def terms(amount):
    return {"price": {"amount": amount, "currency": "USD"}, "hours_per_week": 20, "available_from": "2027-01-04"}


def shortlisted_posting(base_url, amqp_uri, client, providers, mongo_client, gateway_config):
    created = requests.post(f"{base_url}/v1/postings", headers=client, json=INBOX_HELP).json()
    posting = requests.post(f"{base_url}/v1/postings/{created['id']}/publish", headers=client).json()
    event = shortlists.shortlist_event(
        posting, 1, [shortlists.candidate(p["id"], rank, "0.9") for rank, p in enumerate(providers, start=1)])
    shortlists.publish(amqp_uri, event)
    database = mongo_client[f"{gateway_config['MONGO_DATABASE']}_postings"]
    assert shortlists_arrived(database, posting["id"])
    return posting


def shortlists_arrived(database, posting_id):
    from tests.support.waiting import wait_for

    return wait_for(lambda: database.shortlists.find_one({"_id": posting_id}) is not None)


def test_a_client_and_a_provider_negotiate_and_the_client_awards_over_http(
    platform, base_url, amqp_uri, mongo_client, gateway_config
):
    _, client = new_tenant(base_url)
    maria, maria_key = new_provider(base_url)
    jose, jose_key = new_provider(base_url, display_name="Jose Reyes")
    posting = shortlisted_posting(base_url, amqp_uri, client, [maria, jose], mongo_client, gateway_config)

    invited = requests.post(f"{base_url}/v1/postings/{posting['id']}/invitations", headers=client,
                            json={"provider_id": maria["id"]})
    assert invited.status_code == 201, invited.text
    invitation = invited.json()
    assert invitation["status"] == "pending" and invitation["posting"]["title"] == INBOX_HELP["title"]
    inbox = requests.get(f"{base_url}/v1/invitations", headers=maria_key)
    assert [i["id"] for i in inbox.json()["items"]] == [invitation["id"]]
    assert requests.get(f"{base_url}/v1/invitations", headers=jose_key).json()["items"] == []

    accepted = requests.post(f"{base_url}/v1/invitations/{invitation['id']}/accept", headers=maria_key)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    submitted = requests.post(f"{base_url}/v1/invitations/{invitation['id']}/proposals", headers=maria_key,
                              json={"terms": terms("14.00"), "note": "Ready in January"})
    assert submitted.status_code == 201, submitted.text
    proposal_id = submitted.json()["id"]

    out_of_turn = requests.post(f"{base_url}/v1/proposals/{proposal_id}/accept", headers=maria_key)
    assert out_of_turn.status_code == 409 and "client's turn" in out_of_turn.json()["message"]
    countered = requests.post(f"{base_url}/v1/proposals/{proposal_id}/counter", headers=client,
                              json={"terms": terms("12.50"), "note": "Year-one budget"})
    assert countered.status_code == 200 and countered.json()["status"] == "awaiting_provider"
    agreed = requests.post(f"{base_url}/v1/proposals/{proposal_id}/accept", headers=maria_key)
    assert agreed.status_code == 200 and agreed.json()["status"] == "agreed"
    assert [s["by"] for s in agreed.json()["history"]] == ["provider", "client", "provider"]

    listed = requests.get(f"{base_url}/v1/postings/{posting['id']}/proposals", headers=client)
    assert [p["id"] for p in listed.json()["items"]] == [proposal_id]
    awarded = requests.post(f"{base_url}/v1/postings/{posting['id']}/award", headers=client,
                            json={"proposal_id": proposal_id})
    assert awarded.status_code == 200, awarded.text
    assert (awarded.json()["status"], awarded.json()["awarded_proposal_id"]) == ("awarded", proposal_id)
    assert requests.get(f"{base_url}/v1/postings?status=awarded", headers=client).json()["items"][0]["id"] == \
        posting["id"]


def test_strangers_get_404_and_wrong_roles_403_and_bad_bodies_422(
    platform, base_url, amqp_uri, mongo_client, gateway_config
):
    _, client = new_tenant(base_url)
    _, other_client = new_tenant(base_url, "Other Corp")
    maria, maria_key = new_provider(base_url)
    _, jose_key = new_provider(base_url, display_name="Jose Reyes")
    posting = shortlisted_posting(base_url, amqp_uri, client, [maria], mongo_client, gateway_config)
    invitation = requests.post(f"{base_url}/v1/postings/{posting['id']}/invitations", headers=client,
                               json={"provider_id": maria["id"]}).json()
    requests.post(f"{base_url}/v1/invitations/{invitation['id']}/accept", headers=maria_key)
    proposal = requests.post(f"{base_url}/v1/invitations/{invitation['id']}/proposals", headers=maria_key,
                             json={"terms": terms("14.00")}).json()

    for headers, method, path, body in [
        (other_client, "POST", f"/v1/postings/{posting['id']}/invitations", {"provider_id": maria["id"]}),
        (other_client, "GET", f"/v1/postings/{posting['id']}/proposals", None),
        (other_client, "POST", f"/v1/postings/{posting['id']}/award", {"proposal_id": proposal["id"]}),
        (other_client, "GET", f"/v1/proposals/{proposal['id']}", None),
        (other_client, "POST", f"/v1/proposals/{proposal['id']}/counter", {"terms": terms("9.00")}),
        (jose_key, "POST", f"/v1/invitations/{invitation['id']}/decline", {}),
        (jose_key, "POST", f"/v1/invitations/{invitation['id']}/proposals", {"terms": terms("9.00")}),
        (jose_key, "POST", f"/v1/proposals/{proposal['id']}/accept", None),
    ]:
        response = requests.request(method, base_url + path, headers=headers, json=body)
        assert response.status_code == 404, (path, response.text)

    assert requests.post(f"{base_url}/v1/postings/{posting['id']}/award", headers=maria_key,
                         json={"proposal_id": proposal["id"]}).status_code == 403
    assert requests.get(f"{base_url}/v1/invitations", headers=client).status_code == 403
    float_price = requests.post(f"{base_url}/v1/proposals/{proposal['id']}/counter", headers=client,
                                json={"terms": {**terms("1"), "price": {"amount": 12.5, "currency": "USD"}}})
    assert float_price.status_code == 422
    not_shortlisted = requests.post(f"{base_url}/v1/postings/{posting['id']}/invitations", headers=client,
                                    json={"provider_id": "prv_" + "0" * 32})
    assert not_shortlisted.status_code == 422 and "provider_id" in not_shortlisted.json()["details"]
    assert requests.get(f"{base_url}/v1/proposals/{proposal['id']}", headers=maria_key).json()["version"] == 1
