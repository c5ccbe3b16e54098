"""The HTTP routes of reports: the audit trail (the gateway's own) and the cost reports."""

from __future__ import annotations

from services.gateway.endpoints.common import DEFAULT_PAGE
from services.gateway.entrypoints import ApiRequest, route


class ReportRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    @route("list_tenant_audit")
    def list_tenant_audit(self, request: ApiRequest) -> dict:
        return self.audit.page(dict(request.query, tenant_id=request.path["tenant_id"]),
                               request.query.get("limit", DEFAULT_PAGE))

    @route("list_audit")
    def list_audit(self, request: ApiRequest) -> dict:
        return self.audit.page(request.query, request.query.get("limit", DEFAULT_PAGE))

    @route("get_cost_report")
    def get_cost_report(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.cost_report, request.caller.tenant_id, request.query["start"],
                        request.query["months"])

    @route("get_cost_report_csv")
    def get_cost_report_csv(self, request: ApiRequest) -> str:
        return self.rpc(self.billing.cost_report_csv, request.caller.tenant_id, request.query["start"],
                        request.query["months"])

    @route("get_in_house_costs")
    def get_in_house_costs(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.get_in_house_costs, request.caller.tenant_id)

    @route("set_in_house_costs")
    def set_in_house_costs(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.set_in_house_costs, request.caller.tenant_id, request.body)
