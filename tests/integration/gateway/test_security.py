"""HTTP security through the gateway in front of the real postings and providers services: roles on every route,
keys rotated and revoked through the API, each key's request budget (429), and the audit trail."""

import pytest
import requests

from services.gateway.service import GatewayService
from services.postings.service import PostingsService
from services.providers.service import ProvidersService
from tests.integration.gateway.test_gateway_with_real_services import INBOX_HELP, MARIA

pytestmark = pytest.mark.integration

OPERATOR = {"Authorization": "Bearer test-operator-key"}
BUDGET = 25
KEY_CAP = 5


@pytest.fixture
def platform(container_factory, runner_factory, gateway_config):
    for service in (ProvidersService, PostingsService):
        own_database = dict(gateway_config, MONGO_DATABASE=f"{gateway_config['MONGO_DATABASE']}_{service.name}",
                            MAX_API_KEYS=KEY_CAP)
        container_factory(service, own_database).start()
    # Each test starts its own gateway, and with it fresh per-process budgets.
    runner = runner_factory(dict(gateway_config, RATE_LIMIT=f"{BUDGET}/minute"), GatewayService)
    runner.start()
    return runner


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def new_tenant(base_url, name="Acme"):
    answer = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, json={
        "name": name, "country": "US", "time_zone": "America/Chicago", "segment": "smb"})
    assert answer.status_code == 201, answer.text
    return answer.json()["tenant"]["id"], bearer(answer.json()["api_key"])


def new_key(base_url, tenant_id, owner, role):
    answer = requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=owner, json={"role": role})
    assert answer.status_code == 201, answer.text
    return answer.json()["key"], bearer(answer.json()["api_key"])


def test_owner_manager_and_finance_keys_each_reach_only_their_routes(platform, base_url):
    tenant_id, owner = new_tenant(base_url)
    _, manager = new_key(base_url, tenant_id, owner, "manager")
    _, finance = new_key(base_url, tenant_id, owner, "finance")

    created = requests.post(f"{base_url}/v1/postings", headers=manager, json=INBOX_HELP)
    assert created.status_code == 201, created.text
    assert requests.get(f"{base_url}/v1/postings", headers=owner).json()["items"][0]["id"] == created.json()["id"]
    # Managers do the work, not the keys or the audit trail.
    assert requests.get(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=manager).status_code == 403
    assert requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=manager,
                         json={"role": "owner"}).status_code == 403
    assert requests.get(f"{base_url}/v1/tenants/{tenant_id}/audit", headers=manager).status_code == 403
    # Finance: invoices and reports only, so none of today's client routes.
    for method, path in (("GET", "/v1/postings"), ("POST", "/v1/postings"), ("GET", "/v1/tenants/me"),
                         ("GET", f"/v1/postings/{created.json()['id']}"), ("GET", f"/v1/tenants/{tenant_id}/keys")):
        answer = requests.request(method, f"{base_url}{path}", headers=finance, json=INBOX_HELP)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"] == "forbidden"
    # No client key reaches operator routes.
    assert requests.get(f"{base_url}/v1/audit", headers=owner).status_code == 403


def test_an_owner_rotates_and_revokes_keys_and_a_revoked_or_expired_key_is_refused_at_once(platform, base_url):
    tenant_id, owner = new_tenant(base_url)
    listed = requests.get(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=owner).json()["items"]
    [first] = listed
    assert set(first) >= {"id", "role", "status", "created_at"} and "digest" not in first

    rotated = requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys/{first['id']}/rotate", headers=owner, json={})
    assert rotated.status_code == 201, rotated.text
    new_owner = bearer(rotated.json()["api_key"])
    assert rotated.json()["key"]["role"] == "owner"
    # The default grace period: the old key still works, and says until when.
    assert requests.get(f"{base_url}/v1/tenants/me", headers=owner).status_code == 200
    old = {k["id"]: k for k in requests.get(f"{base_url}/v1/tenants/{tenant_id}/keys",
                                           headers=new_owner).json()["items"]}[first["id"]]
    assert old["status"] == "expiring" and old["expires_at"]

    # Rotating the new key with no grace refuses it at once.
    newest = requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys/{rotated.json()['key']['id']}/rotate",
                           headers=new_owner, json={"grace_seconds": 0})
    assert newest.status_code == 201
    assert requests.get(f"{base_url}/v1/tenants/me", headers=new_owner).status_code == 401
    owner = bearer(newest.json()["api_key"])

    manager_key, manager = new_key(base_url, tenant_id, owner, "manager")
    assert requests.get(f"{base_url}/v1/postings", headers=manager).status_code == 200
    revoked = requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys/{manager_key['id']}/revoke", headers=owner)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert requests.get(f"{base_url}/v1/postings", headers=manager).status_code == 401
    # The last owner key stays.
    [live_owner] = [k for k in requests.get(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=owner).json()["items"]
                    if k["role"] == "owner" and k["status"] == "active"]
    assert requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys/{live_owner['id']}/revoke",
                         headers=owner).status_code == 409
    assert requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=owner,
                         json={"role": "admin"}).status_code == 422


def test_another_tenants_keys_are_404_and_the_operator_manages_any_tenants_keys(platform, base_url):
    tenant_id, owner = new_tenant(base_url)
    other_id, other = new_tenant(base_url, "Globex")
    [key] = requests.get(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=owner).json()["items"]
    assert requests.get(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=other).status_code == 404
    assert requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys/{key['id']}/rotate", headers=other,
                         json={"grace_seconds": 0}).status_code == 404
    assert requests.post(f"{base_url}/v1/tenants/{other_id}/keys/{key['id']}/revoke", headers=other).status_code == 404

    # A lost or leaked owner key: the operator rotates it with no grace and hands over the new one.
    rescued = requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys/{key['id']}/rotate", headers=OPERATOR,
                            json={"grace_seconds": 0})
    assert rescued.status_code == 201
    assert requests.get(f"{base_url}/v1/tenants/me", headers=owner).status_code == 401
    assert requests.get(f"{base_url}/v1/tenants/me", headers=bearer(rescued.json()["api_key"])).status_code == 200


def test_a_provider_rotates_its_own_key_and_cannot_touch_another_providers_keys(platform, base_url):
    registered = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=MARIA).json()
    provider_id, provider = registered["provider"]["id"], bearer(registered["api_key"])
    other_id = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=MARIA).json()["provider"]["id"]
    [key] = requests.get(f"{base_url}/v1/providers/{provider_id}/keys", headers=provider).json()["items"]
    assert key["role"] == "provider"
    assert requests.get(f"{base_url}/v1/providers/{other_id}/keys", headers=provider).status_code == 404

    spare = requests.post(f"{base_url}/v1/providers/{provider_id}/keys", headers=provider, json={"label": "crm"})
    assert spare.status_code == 201
    rotated = requests.post(f"{base_url}/v1/providers/{provider_id}/keys/{key['id']}/rotate", headers=provider,
                            json={"grace_seconds": 0})
    assert rotated.status_code == 201
    assert requests.get(f"{base_url}/v1/invitations", headers=provider).status_code == 401
    revoked = requests.post(f"{base_url}/v1/providers/{provider_id}/keys/{spare.json()['key']['id']}/revoke",
                            headers=bearer(rotated.json()["api_key"]))
    assert revoked.status_code == 200
    assert requests.get(f"{base_url}/v1/invitations", headers=bearer(spare.json()["api_key"])).status_code == 401
    assert requests.get(f"{base_url}/v1/invitations", headers=bearer(rotated.json()["api_key"])).status_code == 200
    # Its last live key stays: a provider cannot lock itself out.
    last = requests.post(f"{base_url}/v1/providers/{provider_id}/keys/{rotated.json()['key']['id']}/revoke",
                         headers=bearer(rotated.json()["api_key"]))
    assert last.status_code == 409 and last.json()["error"] == "conflict"


def test_a_tenant_past_its_budget_gets_429_with_retry_after_on_every_key_and_other_tenants_are_not_slowed(
    platform, base_url
):
    tenant_id, owner = new_tenant(base_url)
    _, other_owner = new_tenant(base_url, "Globex")
    # The budget is the organisation's: spread over several keys it is still one budget.
    keys = [owner] + [new_key(base_url, tenant_id, owner, "manager")[1] for _ in range(3)]
    spent = BUDGET - 3  # creating the three keys spent three of its requests
    statuses = [requests.get(f"{base_url}/v1/postings", headers=keys[n % len(keys)]).status_code
                for n in range(spent + 1)]
    assert statuses[:spent] == [200] * spent
    assert statuses[-1] == 429
    for key in keys:
        refused = requests.get(f"{base_url}/v1/postings", headers=key)
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["X-Content-Type-Options"] == "nosniff"
    # A key minted now comes with no budget of its own either.
    assert requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=OPERATOR,
                         json={"role": "manager"}).status_code == 201
    assert requests.get(f"{base_url}/v1/postings", headers=owner).status_code == 429
    assert requests.get(f"{base_url}/v1/postings", headers=other_owner).status_code == 200


def test_a_tenant_and_a_provider_hold_at_most_the_configured_number_of_live_keys(platform, base_url):
    tenant_id, owner = new_tenant(base_url)
    for _ in range(KEY_CAP - 1):
        new_key(base_url, tenant_id, owner, "manager")
    refused = requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=owner, json={"role": "manager"})
    assert refused.status_code == 409 and refused.json()["details"]["max_live_keys"] == str(KEY_CAP)
    keys = requests.get(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=owner).json()["items"]
    assert len(keys) == KEY_CAP
    # A rotation would add a live key too (the old one works through its grace period).
    manager_key = next(k for k in keys if k["role"] == "manager")
    assert requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys/{manager_key['id']}/rotate", headers=owner,
                         json={}).status_code == 409
    # A revoked key frees its place.
    assert requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys/{manager_key['id']}/revoke",
                         headers=owner).status_code == 200
    new_key(base_url, tenant_id, owner, "finance")

    provider = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=MARIA).json()
    provider_id, provider_key = provider["provider"]["id"], bearer(provider["api_key"])
    created = [requests.post(f"{base_url}/v1/providers/{provider_id}/keys", headers=provider_key, json={}).status_code
               for _ in range(KEY_CAP)]
    assert created == [201] * (KEY_CAP - 1) + [409]


def test_every_state_change_is_audited_with_who_when_what_and_correlation_id_and_each_owner_sees_its_own(
    platform, base_url, gateway_config, mongo_client
):
    tenant_id, owner = new_tenant(base_url)
    other_id, other = new_tenant(base_url, "Globex")
    manager_key, manager = new_key(base_url, tenant_id, owner, "manager")
    posting = requests.post(f"{base_url}/v1/postings", headers=dict(manager, **{"X-Correlation-ID": "req-audit-1"}),
                            json=INBOX_HELP).json()
    requests.post(f"{base_url}/v1/postings/{posting['id']}/publish", headers=manager, json={"confirm_core": True})
    assert requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=manager,
                         json={"role": "owner"}).status_code == 403
    requests.get(f"{base_url}/v1/postings", headers=manager)  # a read: not audited

    page = requests.get(f"{base_url}/v1/tenants/{tenant_id}/audit", headers=owner)
    assert page.status_code == 200, page.text
    records = page.json()["items"]
    assert [r["operation"] for r in records] == [
        "create_tenant_key", "publish_posting", "create_posting", "create_tenant_key", "create_tenant"]  # newest first
    publish, create = records[1], records[2]
    assert (publish["status"], publish["outcome"]) == (200, "succeeded")
    assert publish["resource_ids"]["posting_id"] == posting["id"]
    assert publish["key_id"] == manager_key["id"]
    assert publish["principal"] == {"kind": "client", "role": "manager", "tenant_id": tenant_id,
                                    "provider_id": None}
    assert publish["at"].endswith("Z") and publish["finished_at"]
    assert create["correlation_id"] == "req-audit-1" and create["resource_ids"]["result_id"] == posting["id"]
    assert records[4]["actor"] == "operator" and records[4]["resource_ids"]["tenant_id"] == tenant_id

    # Another tenant sees none of it, and cannot ask.
    assert requests.get(f"{base_url}/v1/tenants/{tenant_id}/audit", headers=other).status_code == 404
    assert [r["operation"] for r in requests.get(f"{base_url}/v1/tenants/{other_id}/audit",
                                                 headers=other).json()["items"]] == ["create_tenant"]

    # Operators see everything, with filters and paging.
    failed = requests.get(f"{base_url}/v1/audit", headers=OPERATOR, params={"tenant_id": tenant_id,
                                                                           "outcome": "failed"}).json()["items"]
    assert [(r["operation"], r["status"], r["error"]) for r in failed] == [
        ("create_tenant_key", 403, "forbidden")]
    by_posting = requests.get(f"{base_url}/v1/audit", headers=OPERATOR,
                              params={"resource_id": posting["id"]}).json()["items"]
    assert {r["operation"] for r in by_posting} == {"create_posting", "publish_posting"}
    first = requests.get(f"{base_url}/v1/audit", headers=OPERATOR, params={"limit": 2}).json()
    second = requests.get(f"{base_url}/v1/audit", headers=OPERATOR,
                          params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert not {r["id"] for r in first["items"]} & {r["id"] for r in second["items"]}
    assert requests.get(f"{base_url}/v1/audit", headers=OPERATOR, params={"cursor": "nope"}).status_code == 422

    # Never a key in the trail.
    stored = str(list(mongo_client[gateway_config["MONGO_DATABASE"]]["audit"].find()))
    for headers in (owner, other, manager):
        assert headers["Authorization"].split()[1] not in stored
