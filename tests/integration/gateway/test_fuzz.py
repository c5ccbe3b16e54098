"""Fuzzing the HTTP API from its own OpenAPI document (schemathesis + hypothesis) against the gateway in front of
every real service: valid and invalid bodies, queries and path values, sent with every kind of key, a dead key and
none. Not one answer may be a server error, every audited change must carry its outcome, and afterwards the
platform still serves."""

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from services.gateway import openapi
from services.gateway.routes import CLIENT, FINANCE, OWNER, PROVIDER_ITSELF, ROUTES
from services.gateway.routes import OPERATOR as OPERATOR_CALLER
from shared.tools.runner import runnable_services, service_class
from shared.vocabulary import apikeys
from tests.integration.gateway.test_gateway_with_real_services import INBOX_HELP, MARIA
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

OPERATOR = {"Authorization": "Bearer test-operator-key"}
EXAMPLES = 400
# Well inside the suite's budget even on a busy machine: hypothesis stops generating when it is spent.
TIME_BUDGET_SECONDS = 40


@pytest.fixture
def platform(container_factory, runner_factory, gateway_config):
    for name in runnable_services():
        if name != "gateway":
            own_database = dict(gateway_config, MONGO_DATABASE=f"{gateway_config['MONGO_DATABASE']}_{name}")
            container_factory(service_class(name), own_database).start()
    runner = runner_factory(dict(gateway_config, RATE_LIMIT="off"), service_class("gateway"))
    runner.start()
    return runner


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def callers(platform, base_url):
    """Every kind of caller, and the real ids a fuzzed path may be pointed at."""
    tenant = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, json={
        "name": "Fuzz Ltd", "country": "US", "time_zone": "America/Chicago", "segment": "smb"}).json()
    owner = bearer(tenant["api_key"])
    tenant_id = tenant["tenant"]["id"]
    roles = {role: bearer(requests.post(f"{base_url}/v1/tenants/{tenant_id}/keys", headers=owner,
                                        json={"role": role}).json()["api_key"]) for role in ("manager", "finance")}
    provider = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=MARIA).json()
    posting = requests.post(f"{base_url}/v1/postings", headers=owner, json=INBOX_HELP).json()
    provider_key = bearer(provider["api_key"])
    by_caller = {OPERATOR_CALLER: [OPERATOR], CLIENT: [owner, roles["manager"]], OWNER: [owner],
                 FINANCE: [roles["finance"]], PROVIDER_ITSELF: [provider_key]}
    anyone = [OPERATOR, owner, roles["manager"], roles["finance"], provider_key, {},
              bearer(apikeys.generate(apikeys.CLIENT)), {"Authorization": "Basic Zm9vOmJhcg=="}]
    # Per route: the keys it admits (so most requests get past the role check), then anyone at all.
    headers = {(route.method, route.path): ([h for who in route.who for h in by_caller[who]], anyone)
               for route in ROUTES}
    ids = {"tenant_id": tenant_id, "provider_id": provider["provider"]["id"], "posting_id": posting["id"]}
    return headers, ids, owner


def test_fuzzed_requests_from_the_openapi_document_never_get_a_server_error_and_the_platform_keeps_serving(
    platform, base_url, callers, gateway_config, mongo_client
):
    headers, ids, owner = callers
    schema = schemathesis.openapi.from_dict(openapi.document())
    cases = st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))
    server_errors: list[tuple] = []
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    sent = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=cases, pick=st.integers(min_value=0), admitted=st.integers(0, 3), real_ids=st.booleans())
    def send(case, pick, admitted, real_ids):
        if time.monotonic() > deadline:
            return
        admits, anyone = headers[(case.method.upper(), case.operation.path)]
        # Three times in four a key the route admits (when it admits any), else any caller at all.
        choices = admits if admitted and admits else anyone
        caller = choices[pick % len(choices)]
        if real_ids and isinstance(case.path_parameters, dict):
            # Half the time a path names a real resource, so the fuzzed body reaches a real service.
            case.path_parameters.update({k: v for k, v in ids.items() if k in case.path_parameters})
        response = case.call(base_url=base_url, headers=caller, timeout=15)
        sent.append(response.status_code)
        if response.status_code >= 500:
            server_errors.append((case.method, case.formatted_path, case.path_parameters, case.query, case.body,
                                  response.status_code, response.text[:300]))

    send()

    assert len(sent) >= 50, f"only {len(sent)} requests were sent in the time budget"
    assert server_errors == []
    assert {status // 100 for status in sent} >= {2, 4}
    # Every audited change has its outcome: nothing was left half-recorded.
    audit = mongo_client[gateway_config["MONGO_DATABASE"]]["audit"]
    assert audit.count_documents({"outcome": "unknown"}) == 0
    assert audit.count_documents({"status": {"$gte": 500}}) == 0
    # And the platform still serves, with every service and database answering.
    assert wait_for(lambda: requests.get(f"{base_url}/health", timeout=10).status_code == 200, timeout=15)
    created = requests.post(f"{base_url}/v1/postings", headers=owner, json=INBOX_HELP, timeout=10)
    assert created.status_code == 201, created.text
