"""The HTTP routes of providers: registration, profile, availability, verification, search."""

from __future__ import annotations

from services.gateway.endpoints.common import PAGING, page
from services.gateway.entrypoints import ApiRequest, route


class ProviderRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    @route("register_provider")
    def register_provider(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.register, request.body)

    @route("search_providers")
    def search_providers(self, request: ApiRequest) -> dict:
        filters = {k: v for k, v in request.query.items() if k not in PAGING}
        return self.rpc(self.providers.search, filters, **page(request))

    @route("get_provider")
    def get_provider(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.get, request.path["provider_id"])

    @route("update_provider")
    def update_provider(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.update, request.path["provider_id"], request.body)

    @route("set_provider_availability")
    def set_provider_availability(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.set_availability, request.path["provider_id"], request.body)

    @route("verify_provider")
    def verify_provider(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.providers.verify, request.path["provider_id"], request.caller.actor, note=request.body.get("note")
        )
