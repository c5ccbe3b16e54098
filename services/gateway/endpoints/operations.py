"""The HTTP routes of operations: this API's OpenAPI document, health, the backlog."""

from __future__ import annotations

from services.gateway import openapi
from services.gateway.entrypoints import ApiRequest, Reply, route


class OperationRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    @route("openapi_document")
    def openapi_document(self, request: ApiRequest) -> dict:
        return openapi.document()

    @route("health")
    def health(self, request: ApiRequest) -> Reply:
        report = self.probe(self.audit.health)
        return Reply(report, status=200 if report["status"] == "ok" else 503)

    @route("operations_backlog")
    def operations_backlog(self, request: ApiRequest) -> dict:
        report = self.probe(self.audit.health)
        components = {**report["services"], "gateway": report["gateway"]}
        parked = self.dead_letters()
        return {"services": {
            name: {"status": components.get(name, {}).get("status", "unavailable"),
                   "outbox_backlog": components.get(name, {}).get("outbox_backlog"),
                   "dead_letters": parked.get(name)}
            for name in sorted(set(components) | set(parked))}}
