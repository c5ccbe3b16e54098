"""The HTTP routes of matching: a posting's shortlist and the explanation of a match."""

from __future__ import annotations

from services.gateway.entrypoints import ApiRequest, route


class MatchingRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    @route("get_shortlist")
    def get_shortlist(self, request: ApiRequest) -> dict:
        return self.rpc(self.matching.get_shortlist, request.caller.tenant_id, request.path["posting_id"])

    @route("explain_match")
    def explain_match(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.matching.explain, request.caller.tenant_id, request.path["posting_id"], request.path["provider_id"]
        )
