"""The gateway in front of the real providers and postings services, each with a database of its own."""

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from services.gateway.service import GatewayService
from shared.tools.runner import runnable_services, service_class
from shared.vocabulary.terms import LANES
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

OPERATOR = {"Authorization": "Bearer test-operator-key"}

MARIA = {
    "kind": "individual",
    "display_name": "Maria Santos",
    "headline": "Executive virtual assistant, 8 years",
    "models": ["virtual_assistant"],
    "categories": ["administrative_support", "scheduling"],
    "skills": [{"name": "calendar management", "level": 5}],
    "languages": ["en", "tl"],
    "country": "PH",
    "time_zone": "Asia/Manila",
    "working_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"},
    "delivery_centres": [],
    "currency": "USD",
    "rates": {"hourly": {"amount": "12.00"}, "monthly_retainer": None,
              "per_unit": [{"unit": "ticket", "price": {"amount": "1.50"}}]},
    "capacity_hours_per_week": 40,
    "certifications": ["Google Workspace Administrator"],
    "nda_willing": True,
}

INBOX_HELP = {
    "title": "Inbox and calendar management",
    "description": "Keep the partners' inboxes and calendars in order.",
    "category": "administrative_support",
    "model": "virtual_assistant",
    "required_skills": [{"name": "calendar management", "min_level": 3}],
    "languages": ["en"],
    "engagement": {"type": "hourly", "unit": None},
    "budget": {"amount": "15.00", "currency": "USD"},
    "hours_per_week": 20,
    "start_date": "2027-01-04",
    "duration_weeks": 26,
    "sla_requirements": [
        {"metric": "first_response_minutes", "target": "60", "direction": "at_most", "window": "weekly"}
    ],
    "confidentiality": {"confidential": True, "nda_required": True},
}


@pytest.fixture
def platform(container_factory, runner_factory, gateway_config):
    for service in (service_class(name) for name in runnable_services() if name != "gateway"):
        own_database = dict(gateway_config, MONGO_DATABASE=f"{gateway_config['MONGO_DATABASE']}_{service.name}")
        container_factory(service, own_database).start()
    runner = runner_factory(gateway_config, GatewayService)
    runner.start()
    return runner


@pytest.fixture
def rpc(gateway_config):
    config = {"AMQP_URI": gateway_config["AMQP_URI"], "serializer": "json"}
    with (
        ServiceRpcProxy("postings", config, timeout=10) as postings,
        ServiceRpcProxy("providers", config, timeout=10) as providers,
    ):
        yield {"postings": postings, "providers": providers}


def new_tenant(base_url, name="Acme Dental Group"):
    answer = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, json={
        "name": name, "country": "US", "time_zone": "America/Chicago", "segment": "smb",
        "core_competencies": ["dental care"],
    })
    assert answer.status_code == 201, answer.text
    return answer.json()["tenant"], {"Authorization": f"Bearer {answer.json()['api_key']}"}


def new_provider(base_url, **overrides):
    answer = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json={**MARIA, **overrides})
    assert answer.status_code == 201, answer.text
    return answer.json()["provider"], {"Authorization": f"Bearer {answer.json()['api_key']}"}


def test_a_client_creates_publishes_and_reads_its_posting_and_another_tenant_sees_404(platform, base_url, rpc):
    tenant, client = new_tenant(base_url)
    me = requests.get(f"{base_url}/v1/tenants/me", headers=client)
    assert me.status_code == 200 and me.json() == tenant

    created = requests.post(f"{base_url}/v1/postings", headers=dict(client, **{"Idempotency-Key": "inbox-1"}),
                            json=INBOX_HELP)
    assert created.status_code == 201, created.text
    posting = created.json()
    assert posting["status"] == "draft" and posting["tenant_id"] == tenant["id"]
    again = requests.post(f"{base_url}/v1/postings", headers=dict(client, **{"Idempotency-Key": "inbox-1"}),
                          json=INBOX_HELP)
    assert again.status_code == 201 and again.json()["id"] == posting["id"]

    published = requests.post(f"{base_url}/v1/postings/{posting['id']}/publish", headers=client)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "open"
    assert published.json()["assessment"]["classification"] == "non_core"

    read = requests.get(f"{base_url}/v1/postings/{posting['id']}", headers=client)
    assert read.status_code == 200
    # The response schema lets every field the service sends through, unchanged.
    assert read.json() == rpc["postings"].get_posting(tenant["id"], posting["id"])
    listed = requests.get(f"{base_url}/v1/postings?status=open", headers=client)
    assert [p["id"] for p in listed.json()["items"]] == [posting["id"]]

    _, other = new_tenant(base_url, "Other Corp")
    assert requests.get(f"{base_url}/v1/postings/{posting['id']}", headers=other).status_code == 404
    assert requests.post(f"{base_url}/v1/postings/{posting['id']}/cancel", headers=other,
                         json={"reason": "mine now"}).status_code == 404
    assert requests.get(f"{base_url}/v1/postings", headers=other).json()["items"] == []

    cancelled = requests.post(f"{base_url}/v1/postings/{posting['id']}/cancel", headers=client,
                              json={"reason": "Hired in-house"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert requests.post(f"{base_url}/v1/postings/{posting['id']}/publish", headers=client).status_code == 409


def test_a_core_posting_needs_confirmation_to_publish(platform, base_url):
    _, client = new_tenant(base_url)
    body = {**INBOX_HELP, "title": "Dental care billing follow-up", "category": "bookkeeping"}
    posting_id = requests.post(f"{base_url}/v1/postings", headers=client, json=body).json()["id"]
    refused = requests.post(f"{base_url}/v1/postings/{posting_id}/publish", headers=client)
    assert refused.status_code == 409
    assert "confirm_core" in refused.json()["details"]
    confirmed = requests.post(f"{base_url}/v1/postings/{posting_id}/publish", headers=client,
                              json={"confirm_core": True})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["assessment"]["classification"] == "core"


def test_a_provider_patches_its_own_profile_and_gets_404_on_another(platform, base_url, rpc):
    maria, maria_key = new_provider(base_url)
    other, _ = new_provider(base_url, display_name="Jon Reyes")

    changed = requests.patch(f"{base_url}/v1/providers/{maria['id']}", headers=maria_key,
                             json={"headline": "Executive VA and bookkeeper"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["headline"] == "Executive VA and bookkeeper"
    assert changed.json() == rpc["providers"].get(maria["id"])

    assert requests.patch(f"{base_url}/v1/providers/{other['id']}", headers=maria_key,
                          json={"headline": "hijacked"}).status_code == 404
    availability = requests.put(f"{base_url}/v1/providers/{maria['id']}/availability", headers=maria_key,
                                json={"availability": {"status": "limited", "available_from": None}})
    assert availability.status_code == 200, availability.text
    assert availability.json()["availability"]["status"] == "limited"

    verified = requests.post(f"{base_url}/v1/providers/{maria['id']}/verify", headers=OPERATOR, json={})
    assert verified.status_code == 200 and verified.json()["verified"] is True

    _, client = new_tenant(base_url)
    found = requests.get(f"{base_url}/v1/providers?verified=true&max_hourly_rate=20&currency=USD", headers=client)
    assert found.status_code == 200, found.text
    assert [p["id"] for p in found.json()["items"]] == [maria["id"]]


def test_the_edges_answer_json_with_the_documented_statuses(platform, base_url, gateway_config):
    _, client = new_tenant(base_url)
    assert requests.get(f"{base_url}/v1/postings").status_code == 401
    assert requests.post(f"{base_url}/v1/providers", headers=client, json=MARIA).status_code == 403
    malformed = requests.post(f"{base_url}/v1/postings", headers=dict(client, **{"Content-Type": "application/json"}),
                              data=b"{not json")
    assert malformed.status_code == 400 and malformed.json()["error"] == "malformed_json"
    too_large = requests.post(f"{base_url}/v1/postings", headers=client,
                              json={**INBOX_HELP, "description": "x" * gateway_config["MAX_REQUEST_BYTES"]})
    assert too_large.status_code == 413
    invalid = requests.post(f"{base_url}/v1/postings", headers=client,
                            json={**INBOX_HELP, "budget": {"amount": 15.5, "currency": "USD"}, "languages": ["xx"]})
    assert invalid.status_code == 422
    assert set(invalid.json()["details"]) == {"budget", "languages"}
    # A rule only the service knows (an engagement unit) comes back as the same 422 shape.
    rule = requests.post(f"{base_url}/v1/postings", headers=client,
                         json={**INBOX_HELP, "engagement": {"type": "per_unit", "unit": None}})
    assert rule.status_code == 422 and rule.json()["error"] == "validation_failed"
    assert "engagement" in rule.json()["details"]
    unknown = requests.get(f"{base_url}/v1/unknown")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert unknown.headers["Content-Type"] == "application/json"


def test_health_is_200_with_every_service_and_database_answering(platform, base_url):
    # One probe has 2 s for every service: the first ones after start-up may be slower on a busy machine.
    assert wait_for(lambda: requests.get(f"{base_url}/health").status_code == 200, timeout=15)
    answer = requests.get(f"{base_url}/health")
    assert answer.status_code == 200, answer.text
    assert answer.json()["gateway"] == {"status": "ok", "database": "ok"}
    services = answer.json()["services"]
    assert set(services) == {name for name in runnable_services() if name != "gateway"}
    for name, health in services.items():  # each lane's processes answer, with their database
        assert (health["status"], health["database"]) == ("ok", "ok"), (name, health)
        assert {lane: (lane_health["status"], lane_health["database"])
                for lane, lane_health in health["lanes"].items()} == {lane: ("ok", "ok") for lane in LANES}, name
