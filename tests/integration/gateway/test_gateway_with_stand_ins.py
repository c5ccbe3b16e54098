"""The gateway over a real broker, against small stand-in services that answer the documented RPCs.

The stand-ins let these tests reach the edges the real services make hard to provoke: a service that hangs
(504), one that crashes (500), one that is not running (503, /health degraded).
"""

import uuid

import eventlet
import pytest
import requests
from kombu import Connection

from services.gateway.dependencies import CALLED_SERVICES
from services.gateway.routes import ROUTES
from services.gateway.service import GatewayService
from shared.runtime.messaging import dead_letter_queue
from shared.runtime.rpc import rpc  # as the services serve theirs: in every lane
from shared.vocabulary import apikeys
from shared.vocabulary.errors import Conflict, NotFound
from shared.vocabulary.terms import LANES
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

OPERATOR = {"Authorization": "Bearer test-operator-key"}
CALLS: list[tuple] = []
STATE: dict = {}


@pytest.fixture(autouse=True)
def fresh_state():
    CALLS.clear()
    STATE.clear()
    STATE.update(tenants={}, client_keys={}, postings={}, providers={}, provider_keys={}, idempotency={})
    yield


def _now():
    return "2026-11-29T09:00:00.000Z"


def healthy_stand_in(service: str) -> type:
    """A service that answers only its health check."""
    return type(f"StandIn{service.title()}", (), {"name": service, "health": rpc(lambda self: {"database": "ok"})})


# Matching has three events committed that the broker has not confirmed yet.
StandInMatching = type("StandInMatching", (), {"name": "matching", "health": rpc(
    lambda self: {"database": "ok", "outbox_backlog": 3})})
# The other services the gateway's health probe asks, healthy and otherwise absent.
OTHER_STAND_INS = tuple(healthy_stand_in(name) for name in CALLED_SERVICES
                        if name not in ("matching", "postings", "providers"))


class StandInPostings:
    name = "postings"

    @rpc
    def create_tenant(self, tenant):
        tenant_id = f"ten_{uuid.uuid4().hex}"
        wire = dict(tenant, id=tenant_id, segment=tenant.get("segment", "smb"),
                    core_competencies=tenant.get("core_competencies", []), created_at=_now())
        STATE["tenants"][tenant_id] = wire
        key = apikeys.generate(apikeys.CLIENT)
        STATE["client_keys"][key] = tenant_id
        return {"tenant": wire, "api_key": key}

    @rpc
    def get_tenant(self, tenant_id):
        return STATE["tenants"][tenant_id]

    @rpc
    def authenticate(self, api_key):
        tenant_id = STATE["client_keys"].get(api_key)
        return {"tenant_id": tenant_id, "role": "owner"} if tenant_id else None

    @rpc
    def create_posting(self, tenant_id, posting, idempotency_key=None):
        CALLS.append(("create_posting", tenant_id, posting, idempotency_key))
        if posting["title"] == "hang":
            eventlet.sleep(10)
        if posting["title"] == "crash":
            raise RuntimeError("stand-in crashed with a secret in the message")
        known = STATE["idempotency"].get((tenant_id, idempotency_key))
        if known:
            return STATE["postings"][known]
        posting_id = f"pst_{uuid.uuid4().hex}"
        wire = dict(posting, id=posting_id, tenant_id=tenant_id, status="draft", created_at=_now(),
                    updated_at=_now(), version=1, internal_note="must not leak")
        STATE["postings"][posting_id] = wire
        STATE["idempotency"][(tenant_id, idempotency_key)] = posting_id
        return wire

    def _own(self, tenant_id, posting_id):
        posting = STATE["postings"].get(posting_id)
        if posting is None or posting["tenant_id"] != tenant_id:
            raise NotFound(f"Posting {posting_id} not found.")
        return posting

    @rpc
    def get_posting(self, tenant_id, posting_id):
        return self._own(tenant_id, posting_id)

    @rpc
    def update_posting(self, tenant_id, posting_id, changes):
        posting = self._own(tenant_id, posting_id)
        posting.update(changes)
        return posting

    @rpc
    def publish_posting(self, tenant_id, posting_id, confirm_core=False):
        CALLS.append(("publish_posting", tenant_id, posting_id, confirm_core))
        posting = self._own(tenant_id, posting_id)
        if posting["status"] != "draft":
            raise Conflict(f"A {posting['status']} posting cannot be published.")
        posting["status"] = "open"
        return posting

    @rpc
    def cancel_posting(self, tenant_id, posting_id, reason):
        posting = self._own(tenant_id, posting_id)
        posting.update(status="cancelled", cancellation_reason=reason)
        return posting

    @rpc
    def list_postings(self, tenant_id, status=None, limit=20, cursor=None):
        CALLS.append(("list_postings", tenant_id, status, limit, cursor))
        items = [p for p in STATE["postings"].values() if p["tenant_id"] == tenant_id]
        return {"items": items, "next_cursor": None}

    @rpc
    def health(self):
        return {"database": "ok"}


def _priced(profile: dict) -> dict:
    """Rates as the providers service answers them: each amount in the profile's currency."""
    rates = profile.get("rates") or {}
    priced = {name: None if rate is None else {**rate, "currency": profile["currency"]}
              for name, rate in rates.items() if name != "per_unit"}
    priced["per_unit"] = [{**item, "price": {**item["price"], "currency": profile["currency"]}}
                          for item in rates.get("per_unit") or []]
    return dict(profile, rates=priced)


class StandInProviders:
    name = "providers"

    @rpc
    def register(self, profile):
        provider_id = f"prv_{uuid.uuid4().hex}"
        wire = dict(_priced(profile), id=provider_id, verified=False, verified_at=None, created_at=_now(),
                    updated_at=_now(), version=1)
        STATE["providers"][provider_id] = wire
        key = apikeys.generate(apikeys.PROVIDER)
        STATE["provider_keys"][key] = provider_id
        return {"provider": wire, "api_key": key}

    @rpc
    def get(self, provider_id):
        if provider_id not in STATE["providers"]:
            raise NotFound(f"Provider {provider_id} not found.")
        return STATE["providers"][provider_id]

    @rpc
    def update(self, provider_id, changes):
        CALLS.append(("update", provider_id, changes))
        provider = self.get(provider_id)
        provider.update(changes)
        return provider

    @rpc
    def set_availability(self, provider_id, changes):
        provider = self.get(provider_id)
        provider.update(changes)
        return provider

    @rpc
    def verify(self, provider_id, verified_by, note=None):
        CALLS.append(("verify", provider_id, verified_by, note))
        provider = self.get(provider_id)
        provider.update(verified=True, verified_at=_now())
        return provider

    @rpc
    def search(self, filters, limit=20, cursor=None):
        CALLS.append(("search", filters, limit, cursor))
        return {"items": list(STATE["providers"].values()), "next_cursor": None}

    @rpc
    def authenticate(self, api_key):
        provider_id = STATE["provider_keys"].get(api_key)
        return {"provider_id": provider_id} if provider_id else None

    @rpc
    def health(self):
        return {"database": "ok"}


def individual(**overrides):
    profile = {
        "kind": "individual",
        "display_name": "Maria Santos",
        "models": ["virtual_assistant"],
        "categories": ["administrative_support"],
        "skills": [{"name": "calendar management", "level": 5}],
        "languages": ["en"],
        "country": "PH",
        "time_zone": "Asia/Manila",
        "working_hours": {"days": ["mon", "tue"], "start": "08:00", "end": "17:00"},
        "currency": "USD",
        "rates": {"hourly": {"amount": "12.00"}},
        "capacity_hours_per_week": 40,
    }
    profile.update(overrides)
    return profile


@pytest.fixture
def gateway(runner_factory, gateway_config):
    runner = runner_factory(gateway_config, GatewayService, StandInPostings, StandInProviders, StandInMatching,
                            *OTHER_STAND_INS)
    runner.start()
    return runner


def new_client(base_url):
    answer = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR,
                           json={"name": "Acme", "country": "us", "time_zone": "America/Chicago", "segment": "smb"})
    assert answer.status_code == 201, answer.text
    return answer.json()["tenant"]["id"], {"Authorization": f"Bearer {answer.json()['api_key']}"}


def assert_edge_headers(answer):
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Correlation-ID"]


def test_a_request_without_a_key_is_refused_with_401_and_a_bearer_challenge(gateway, base_url):
    answer = requests.get(f"{base_url}/v1/postings")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["error"] == "unauthorized"
    assert_edge_headers(answer)


def test_a_key_nobody_issued_is_refused_with_401(gateway, base_url):
    fake = apikeys.generate(apikeys.CLIENT)
    answer = requests.get(f"{base_url}/v1/postings", headers={"Authorization": f"Bearer {fake}"})
    assert answer.status_code == 401


def test_the_inbound_correlation_id_is_echoed_and_a_bad_one_is_replaced(gateway, base_url):
    answer = requests.get(f"{base_url}/health", headers={"X-Correlation-ID": "req-123.abc"})
    assert answer.headers["X-Correlation-ID"] == "req-123.abc"
    answer = requests.get(f"{base_url}/health", headers={"X-Correlation-ID": "<script>"})
    assert answer.headers["X-Correlation-ID"] != "<script>"
    uuid.UUID(answer.headers["X-Correlation-ID"])


def test_operator_creates_a_tenant_and_the_client_reads_it_back(gateway, base_url):
    tenant_id, client = new_client(base_url)
    answer = requests.get(f"{base_url}/v1/tenants/me", headers=client)
    assert answer.status_code == 200
    assert answer.json()["id"] == tenant_id
    assert answer.json()["country"] == "US"  # the gateway normalised it before the service saw it
    assert_edge_headers(answer)


def test_a_client_calling_an_operator_route_gets_403(gateway, base_url):
    _, client = new_client(base_url)
    answer = requests.post(f"{base_url}/v1/tenants", headers=client,
                           json={"name": "Evil", "country": "US", "time_zone": "America/Chicago", "segment": "smb"})
    assert answer.status_code == 403
    assert answer.json()["error"] == "forbidden"


def test_creating_a_posting_twice_with_one_idempotency_key_answers_the_same_posting(gateway, base_url):
    _, client = new_client(base_url)
    body = {"title": "Inbox", "category": "administrative_support", "model": "virtual_assistant",
            "budget": {"amount": "15.00", "currency": "usd"}}
    headers = dict(client, **{"Idempotency-Key": "k-1"})
    first = requests.post(f"{base_url}/v1/postings", headers=headers, json=body)
    second = requests.post(f"{base_url}/v1/postings", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["budget"] == {"amount": "15.00", "currency": "USD"}
    assert "internal_note" not in first.json()  # only declared fields leave the gateway
    assert CALLS[0][3] == "k-1"


def test_a_posting_without_an_idempotency_key_gets_a_generated_one(gateway, base_url):
    _, client = new_client(base_url)
    body = {"title": "Inbox", "category": "administrative_support", "model": "virtual_assistant"}
    assert requests.post(f"{base_url}/v1/postings", headers=client, json=body).status_code == 201
    assert CALLS[0][3]


def test_another_tenants_posting_is_404(gateway, base_url):
    _, first = new_client(base_url)
    _, second = new_client(base_url)
    body = {"title": "Inbox", "category": "administrative_support", "model": "virtual_assistant"}
    posting_id = requests.post(f"{base_url}/v1/postings", headers=first, json=body).json()["id"]
    assert requests.get(f"{base_url}/v1/postings/{posting_id}", headers=first).status_code == 200
    answer = requests.get(f"{base_url}/v1/postings/{posting_id}", headers=second)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


def test_publish_passes_confirm_core_and_a_second_publish_is_409(gateway, base_url):
    _, client = new_client(base_url)
    body = {"title": "Inbox", "category": "administrative_support", "model": "virtual_assistant"}
    posting_id = requests.post(f"{base_url}/v1/postings", headers=client, json=body).json()["id"]
    answer = requests.post(f"{base_url}/v1/postings/{posting_id}/publish", headers=client,
                           json={"confirm_core": True})
    assert answer.status_code == 200 and answer.json()["status"] == "open"
    assert CALLS[-1] == ("publish_posting", CALLS[-1][1], posting_id, True)
    again = requests.post(f"{base_url}/v1/postings/{posting_id}/publish", headers=client)
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"


def test_list_postings_validates_and_passes_its_query(gateway, base_url):
    _, client = new_client(base_url)
    answer = requests.get(f"{base_url}/v1/postings?status=open&limit=5", headers=client)
    assert answer.status_code == 200
    assert answer.json() == {"items": [], "next_cursor": None}
    assert CALLS[-1][2:] == ("open", 5, None)
    bad = requests.get(f"{base_url}/v1/postings?status=sold&limit=500&colour=red", headers=client)
    assert bad.status_code == 422
    assert set(bad.json()["details"]) == {"status", "limit", "colour"}


def test_malformed_json_is_400(gateway, base_url):
    _, client = new_client(base_url)
    answer = requests.post(f"{base_url}/v1/postings", headers=dict(client, **{"Content-Type": "application/json"}),
                           data=b'{"title": ')
    assert answer.status_code == 400
    assert answer.json()["error"] == "malformed_json"
    assert_edge_headers(answer)


def test_a_body_above_the_limit_is_413(gateway, base_url, gateway_config):
    _, client = new_client(base_url)
    big = {"title": "x", "description": "y" * gateway_config["MAX_REQUEST_BYTES"]}
    answer = requests.post(f"{base_url}/v1/postings", headers=client, json=big)
    assert answer.status_code == 413
    assert answer.json()["error"] == "payload_too_large"
    assert_edge_headers(answer)


def test_invalid_fields_are_422_with_messages_per_field(gateway, base_url):
    _, client = new_client(base_url)
    body = {"title": "", "category": "astrology", "model": "virtual_assistant",
            "budget": {"amount": 15.5, "currency": "USD"}, "languages": ["xx"], "surprise": 1}
    answer = requests.post(f"{base_url}/v1/postings", headers=client, json=body)
    assert answer.status_code == 422
    details = answer.json()["details"]
    assert answer.json()["error"] == "validation_failed"
    assert set(details) == {"title", "category", "budget", "languages", "surprise"}
    assert "float" in details["budget"]["amount"][0]
    assert not [c for c in CALLS if c[0] == "create_posting"]  # the service never saw it


def test_an_unknown_route_is_a_json_404_and_a_wrong_method_a_json_405(gateway, base_url):
    answer = requests.get(f"{base_url}/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
    assert_edge_headers(answer)
    root = requests.get(f"{base_url}/")
    assert root.status_code == 404 and root.json()["error"] == "not_found"
    wrong = requests.delete(f"{base_url}/v1/tenants", headers=OPERATOR)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"


def test_the_console_is_served_from_the_package_with_its_types_and_a_strict_content_security_policy(
    gateway, base_url
):
    page = requests.get(f"{base_url}/console")
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/console/js/app.js">' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    assert (page.headers["X-Content-Type-Options"], page.headers["X-Frame-Options"]) == ("nosniff", "DENY")
    assert requests.get(f"{base_url}/console/").text == page.text
    script = requests.get(f"{base_url}/console/js/app.js")
    assert script.status_code == 200 and script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "/v1/tenants/me" in script.text
    style = requests.get(f"{base_url}/console/console.css")
    assert style.headers["Content-Type"] == "text/css; charset=utf-8"
    for missing in ("/console/nothing.js", "/console/../services/gateway/console.py", "/console/js/%2e%2e/app.py"):
        answer = requests.get(f"{base_url}{missing}")
        assert answer.status_code == 404 and answer.json()["error"] == "not_found", missing
    assert requests.post(f"{base_url}/console").status_code == 405


def test_a_provider_changes_its_own_profile_but_gets_404_for_another(gateway, base_url):
    registered = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=individual())
    assert registered.status_code == 201, registered.text
    own_id = registered.json()["provider"]["id"]
    provider = {"Authorization": f"Bearer {registered.json()['api_key']}"}
    other_id = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=individual()).json()["provider"]["id"]

    answer = requests.patch(f"{base_url}/v1/providers/{own_id}", headers=provider, json={"headline": "Hi"})
    assert answer.status_code == 200 and answer.json()["headline"] == "Hi"
    assert requests.patch(f"{base_url}/v1/providers/{other_id}", headers=provider,
                          json={"headline": "Hi"}).status_code == 404
    assert requests.get(f"{base_url}/v1/providers/{other_id}", headers=provider).status_code == 404
    assert requests.put(f"{base_url}/v1/providers/{other_id}/availability", headers=provider,
                        json={"capacity_hours_per_week": 10}).status_code == 404
    assert [c for c in CALLS if c[0] == "update"] == [("update", own_id, {"headline": "Hi"})]


def test_a_provider_may_not_reach_client_or_operator_routes(gateway, base_url):
    registered = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=individual()).json()
    provider = {"Authorization": f"Bearer {registered['api_key']}"}
    provider_id = registered["provider"]["id"]
    assert requests.get(f"{base_url}/v1/postings", headers=provider).status_code == 403
    assert requests.post(f"{base_url}/v1/providers/{provider_id}/verify", headers=provider).status_code == 403


def test_operator_verifies_a_provider_and_is_recorded_as_the_verifier(gateway, base_url):
    provider_id = requests.post(f"{base_url}/v1/providers", headers=OPERATOR,
                                json=individual()).json()["provider"]["id"]
    answer = requests.post(f"{base_url}/v1/providers/{provider_id}/verify", headers=OPERATOR,
                           json={"note": "checked ID"})
    assert answer.status_code == 200 and answer.json()["verified"] is True
    assert CALLS[-1] == ("verify", provider_id, "operator", "checked ID")


def test_provider_search_turns_the_rate_filter_into_money_and_refuses_bad_values(gateway, base_url):
    _, client = new_client(base_url)
    answer = requests.get(
        f"{base_url}/v1/providers?country=ph&verified=true&max_hourly_rate=15.00&currency=usd&limit=3",
        headers=client,
    )
    assert answer.status_code == 200, answer.text
    assert CALLS[-1] == ("search", {"country": "PH", "verified": True,
                                    "max_hourly_rate": {"amount": "15.00", "currency": "USD"}}, 3, None)
    bad = requests.get(f"{base_url}/v1/providers?max_hourly_rate=cheap&min_skill_level=9", headers=client)
    assert bad.status_code == 422
    assert {"max_hourly_rate", "min_skill_level"} <= set(bad.json()["details"])


def test_a_service_that_does_not_answer_in_time_is_504_with_retry_advice(
    runner_factory, gateway_config, base_url
):
    config = dict(gateway_config, RPC_TIMEOUT_SECONDS=1)
    runner_factory(config, GatewayService, StandInPostings, StandInProviders).start()
    _, client = new_client(base_url)
    answer = requests.post(f"{base_url}/v1/postings", headers=dict(client, **{"Idempotency-Key": "k-9"}),
                           json={"title": "hang", "category": "data_entry", "model": "freelance"})
    assert answer.status_code == 504
    assert answer.json()["error"] == "timeout"
    assert "Idempotency-Key" in answer.json()["message"]
    assert_edge_headers(answer)


def test_an_unexpected_failure_is_a_generic_500_without_internals(gateway, base_url):
    _, client = new_client(base_url)
    answer = requests.post(f"{base_url}/v1/postings", headers=dict(client, **{"X-Correlation-ID": "c-500"}),
                           json={"title": "crash", "category": "data_entry", "model": "freelance"})
    assert answer.status_code == 500
    assert answer.json()["error"] == "internal_error"
    assert answer.json()["details"] == {"correlation_id": "c-500"}
    assert "secret" not in answer.text and "Traceback" not in answer.text


def test_health_is_200_when_everything_answers(gateway, base_url):
    assert wait_for(lambda: requests.get(f"{base_url}/health").status_code == 200, timeout=15)
    answer = requests.get(f"{base_url}/health")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "broker": {"status": "ok"},
        "gateway": {"status": "ok", "database": "ok"},
        # Each lane's processes answer (matching: its outbox backlog too, which the service says).
        "services": {name: {**ok, "lanes": {str(lane): ok for lane in LANES}}
                     for name in CALLED_SERVICES
                     for ok in [{"status": "ok", "database": "ok",
                                 **({"outbox_backlog": 3} if name == "matching" else {})}]},
    }


def test_the_operator_reads_each_services_outbox_backlog_and_dead_letter_count(gateway, base_url, gateway_config):
    with Connection(gateway_config["AMQP_URI"]) as connection:
        channel = connection.channel()
        parked = dead_letter_queue("billing")(channel)
        parked.declare()
        parked.purge()
        for number in range(2):
            connection.Producer(channel).publish({"n": number}, routing_key=parked.name, exchange="")
        # Another test of this session's broker may have declared matching's: this one needs it absent.
        dead_letter_queue("matching")(connection.channel()).delete()
    answer = requests.get(f"{base_url}/v1/operations/backlog", headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    services = answer.json()["services"]
    # Matching's dead-letter queue is not declared on this broker: no count rather than a made-up zero.
    assert services["matching"] == {"status": "ok", "outbox_backlog": 3, "dead_letters": None}
    assert services["billing"]["dead_letters"] == 2 and services["billing"]["outbox_backlog"] is None
    assert set(services) == {*CALLED_SERVICES, "gateway"}
    _, client = new_client(base_url)
    refused = requests.get(f"{base_url}/v1/operations/backlog", headers=client)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"


def test_a_missing_service_makes_health_503_and_its_routes_fail_fast(runner_factory, gateway_config, base_url):
    runner_factory(dict(gateway_config, RPC_TIMEOUT_SECONDS=1), GatewayService, StandInProviders).start()
    answer = requests.get(f"{base_url}/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == "degraded"
    assert answer.json()["services"]["postings"]["status"] == "unavailable"
    assert answer.json()["services"]["providers"]["status"] == "ok"
    created = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR,
                            json={"name": "Acme", "country": "US", "time_zone": "America/Chicago", "segment": "smb"})
    # 503 when the broker knows no such queue; 504 when an earlier test in this vhost left the queue behind.
    assert (created.status_code, created.json()["error"]) in {(503, "service_unavailable"), (504, "timeout")}
    assert created.headers["Retry-After"] == "1"


def test_a_service_whose_large_lane_has_no_process_makes_health_503_and_says_which_lane(
        runner_factory, gateway_config, base_url):
    """Lanes run as processes of their own (compose, Kubernetes; billing and matching with a database per lane):
    one lane's processes can be down while the other's answer."""
    runner_factory(gateway_config, GatewayService, StandInPostings, StandInProviders, StandInMatching,
                   *(stand_in for stand_in in OTHER_STAND_INS if stand_in.name != "billing")).start()
    runner_factory(dict(gateway_config, LANES=["smb"]), healthy_stand_in("billing")).start()
    answer = requests.get(f"{base_url}/health")
    assert answer.status_code == 503, answer.text
    billing = answer.json()["services"]["billing"]
    assert billing["status"] == "unavailable"
    assert billing["lanes"]["smb"] == {"status": "ok", "database": "ok"}
    assert billing["lanes"]["enterprise"]["status"] == "unavailable"
    assert answer.json()["services"]["matching"]["status"] == "ok"


def test_the_served_openapi_document_lists_exactly_the_routes_the_server_answers(gateway, base_url):
    answer = requests.get(f"{base_url}/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"] == "3.0.3"
    served = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert served == {(r.path, r.method) for r in ROUTES}

    container = next(iter(gateway.containers))
    rules = {
        (rule.rule, method)
        for entrypoint in container.entrypoints
        if getattr(entrypoint, "route", None) is not None  # HTTP routes, not the broker's command handlers
        for rule in [entrypoint.get_url_rule()]
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert rules == {(r.werkzeug_rule, r.method) for r in ROUTES}


def test_the_gateway_refuses_to_start_without_an_operator_key(container_factory, gateway_config):
    container = container_factory(GatewayService, dict(gateway_config, OPERATOR_KEY=""))
    with pytest.raises(Exception, match="OPERATOR_KEY"):
        container.start()


def test_a_request_its_service_did_not_take_in_time_is_answered_504_and_never_run_later(
    runner_factory, gateway_config, base_url
):
    config = dict(gateway_config, RPC_TIMEOUT_SECONDS=3)
    postings = runner_factory(config, StandInPostings)
    postings.start()
    postings.stop()  # down, its request queue still there: the request waits in it
    runner_factory(config, GatewayService, StandInProviders).start()
    tenant = {"name": "Acme", "country": "US", "time_zone": "America/Chicago", "segment": "smb"}
    answer = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, json=tenant)
    assert answer.status_code == 504 and answer.json()["error"] == "timeout"

    eventlet.sleep(0.5)
    runner_factory(config, StandInPostings).start()  # back after the client was told to retry (and 3 s to answer)
    retried = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, json=tenant)
    assert retried.status_code == 201, retried.text
    # The queue is served in order: the first request went before the retry, dropped unread as expired.
    assert list(STATE["tenants"]) == [retried.json()["tenant"]["id"]]


def _sample(name, **labels):
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_gateway_counts_and_times_every_answer_by_route_and_every_rpc_call_by_service_method(gateway, base_url):
    _, client = new_client(base_url)
    missing = {"route": "get_posting", "method": "GET", "status": "404"}
    refused = {"service": "postings", "method": "get_posting", "outcome": "error"}
    unserved = {"route": "unmatched", "method": "GET", "status": "404"}
    before = (_sample("tasklinkr_http_requests_total", **missing), _sample("tasklinkr_rpc_calls_total", **refused),
              _sample("tasklinkr_http_request_seconds_count", route="get_posting", method="GET"),
              _sample("tasklinkr_rpc_call_seconds_count", service="postings", method="get_posting"),
              _sample("tasklinkr_http_requests_total", **unserved))

    assert requests.get(f"{base_url}/v1/postings/pst_nothere", headers=client).status_code == 404
    assert requests.get(f"{base_url}/no/such/path", headers=client).status_code == 404

    after = (_sample("tasklinkr_http_requests_total", **missing), _sample("tasklinkr_rpc_calls_total", **refused),
             _sample("tasklinkr_http_request_seconds_count", route="get_posting", method="GET"),
             _sample("tasklinkr_rpc_call_seconds_count", service="postings", method="get_posting"),
             _sample("tasklinkr_http_requests_total", **unserved))
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1, 1, 1]
    # Raw paths never become labels: one series per route of the API table.
    assert not _sample("tasklinkr_http_requests_total", route="/no/such/path", method="GET", status="404")


def test_the_health_probe_finds_the_gateways_http_server_answering(gateway, base_url):
    from shared.tools.probe import http

    assert http(base_url.removeprefix("http://")) == "ok"
    assert http("127.0.0.1:1").startswith("failed")
