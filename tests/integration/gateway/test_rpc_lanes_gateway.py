"""The gateway calls a service in its caller's lane (issue 15): an enterprise client's request is served by the
enterprise lane's process of billing, a small business's by the small lane's, each from its lane's RPC queue."""

from __future__ import annotations

import pytest
import requests

from shared.runtime.rpc import rpc
from shared.vocabulary.errors import NotFound

pytestmark = pytest.mark.integration

OPERATOR = {"Authorization": "Bearer test-operator-key"}
SERVED: list[tuple[str, str]] = []  # (the lane of the billing process, the contract asked for)


class LaneBilling:
    """Billing of one lane: answers a billing account with 404, having noted which lane's process served it."""

    name = "billing"
    lanes: list[str] = []

    @rpc
    def get_account(self, party: dict, contract_id: str) -> dict:
        SERVED.append((",".join(self.lanes), contract_id))
        raise NotFound(f"No billing account {contract_id}.")

    @rpc
    def health(self) -> dict:
        return {"database": "ok"}


@pytest.fixture
def platform(container_factory, gateway_config):
    from services.gateway.service import GatewayService
    from services.postings.service import PostingsService

    SERVED.clear()
    database = gateway_config["MONGO_DATABASE"]
    for service in (PostingsService, GatewayService):
        container_factory(service, dict(gateway_config, MONGO_DATABASE=f"{database}_{service.name}")).start()
    for lane in ("enterprise", "smb"):
        cls = type("LaneBilling", (LaneBilling,), {"lanes": [lane]})
        container_factory(cls, dict(gateway_config, LANES=[lane])).start()


def client_of(base_url: str, segment: str) -> dict:
    answer = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, timeout=10,
                           json={"name": f"{segment} co", "country": "us", "time_zone": "America/Chicago",
                                 "segment": segment})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['api_key']}"}


def test_each_clients_request_is_served_by_its_own_lanes_process_first(platform, base_url):
    """Each lane's process answers 404 here; a billing account not found in the caller's lane is then asked of the
    other lane (billing runs in cells: the caller's lane need not hold the contract), and the 404 stands."""
    for segment in ("enterprise", "smb"):
        answer = requests.get(f"{base_url}/v1/billing-accounts/ctr_{segment}", headers=client_of(base_url, segment),
                              timeout=10)
        assert answer.status_code == 404, answer.text
    assert SERVED == [("enterprise", "ctr_enterprise"), ("smb", "ctr_enterprise"),
                      ("smb", "ctr_smb"), ("enterprise", "ctr_smb")]
