"""The HTTP routes of contracts (contracting)."""

from __future__ import annotations

from services.gateway.endpoints.common import page, party
from services.gateway.entrypoints import ApiRequest, route


class ContractRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    def _contract_call(self, request: ApiRequest, method: str, *args, **kwargs):
        """One contracting call as the calling party, on the contract in the path."""
        return self.rpc(getattr(self.contracting, method), party(request), request.path["contract_id"],
                        *args, **kwargs)

    @route("list_contracts")
    def list_contracts(self, request: ApiRequest) -> dict:
        return self.rpc(self.contracting.list_contracts, party(request), status=request.query.get("status"),
                        **page(request))

    @route("get_contract")
    def get_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "get_contract")

    @route("update_contract")
    def update_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "update_contract", request.body)

    @route("sign_contract")
    def sign_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "sign_contract", request.body)

    @route("propose_amendment")
    def propose_amendment(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "propose_amendment", request.body)

    @route("sign_amendment")
    def sign_amendment(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "sign_amendment", request.path["amendment_id"], request.body)

    @route("close_sla_window")
    def close_sla_window(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "close_sla_window", request.path["sla_id"], request.body)

    @route("withdraw_amendment")
    def withdraw_amendment(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "withdraw_amendment", request.path["amendment_id"])

    @route("submit_measurements")
    def submit_measurements(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "submit_measurements", request.body,
                                   idempotency_key=request.headers.get("Idempotency-Key"))

    @route("governance_summary")
    def governance_summary(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "governance_summary")

    @route("record_review")
    def record_review(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "record_review", request.body)

    @route("raise_issue")
    def raise_issue(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "raise_issue", request.body)

    @route("resolve_issue")
    def resolve_issue(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "resolve_issue", request.path["issue_id"], request.body)

    @route("complete_contract")
    def complete_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "complete_contract", request.body)

    @route("terminate_contract")
    def terminate_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "terminate_contract", request.body)

    @route("rate_client")
    def rate_client(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "rate_client", request.body)

    @route("answer_rating")
    def answer_rating(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "answer_rating", request.body)
