"""The HTTP routes of client organisations (tenants) and of the API keys of tenants and providers."""

from __future__ import annotations

from services.gateway.entrypoints import ApiRequest, route

# How long a rotated key keeps working when the request does not say (KEY_ROTATION_GRACE_SECONDS).
DEFAULT_GRACE_SECONDS = 24 * 3600


class TenantRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    @route("create_tenant")
    def create_tenant(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.create_tenant, request.body)

    @route("get_own_tenant")
    def get_own_tenant(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.get_tenant, request.caller.tenant_id)


    @route("list_tenant_keys")
    def list_tenant_keys(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.list_keys, request.path["tenant_id"])

    @route("create_tenant_key")
    def create_tenant_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.create_key, request.path["tenant_id"], request.body["role"],
                        label=request.body.get("label"))

    @route("rotate_tenant_key")
    def rotate_tenant_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.rotate_key, request.path["tenant_id"], request.path["key_id"],
                        self._grace(request))

    @route("revoke_tenant_key")
    def revoke_tenant_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.revoke_key, request.path["tenant_id"], request.path["key_id"])

    @route("list_provider_keys")
    def list_provider_keys(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.list_keys, request.path["provider_id"])

    @route("create_provider_key")
    def create_provider_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.create_key, request.path["provider_id"], label=request.body.get("label"))

    @route("rotate_provider_key")
    def rotate_provider_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.rotate_key, request.path["provider_id"], request.path["key_id"],
                        self._grace(request))

    @route("revoke_provider_key")
    def revoke_provider_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.revoke_key, request.path["provider_id"], request.path["key_id"])

    def _grace(self, request: ApiRequest) -> int:
        default = int(self.config.get("KEY_ROTATION_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))
        return request.body.get("grace_seconds", default)
