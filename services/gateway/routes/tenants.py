"""The routes of client organisations (tenants) and of the API keys of tenants and providers."""

from __future__ import annotations

from services.gateway import schemas
from services.gateway.routes.common import _AUTH, _BODY, _UPSTREAM, CLIENT, OPERATOR, OWNER, PROVIDER_ITSELF, Route

TENANTS: tuple[Route, ...] = (
    Route(
        "create_tenant", "POST", "/v1/tenants", "Register a client organisation and issue its API key",
        who=(OPERATOR,), tag="tenants", status=201,
        request=schemas.TenantCreateSchema, response=schemas.TenantCreatedSchema,
        errors=(*_BODY, *_AUTH, *_UPSTREAM),
    ),
    Route(
        "get_own_tenant", "GET", "/v1/tenants/me", "The calling client organisation",
        who=(CLIENT,), tag="tenants", response=schemas.TenantSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
    ),
)

KEYS: tuple[Route, ...] = (
    Route(
        "list_tenant_keys", "GET", "/v1/tenants/{tenant_id}/keys", "A client organisation's API keys",
        who=(OWNER, OPERATOR), tag="keys", response=schemas.KeyListSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
        description="Ids, roles and states only: a key is shown once, when it is issued.",
    ),
    Route(
        "create_tenant_key", "POST", "/v1/tenants/{tenant_id}/keys", "Issue another key with a role",
        who=(OWNER, OPERATOR), tag="keys", status=201,
        request=schemas.TenantKeyCreateSchema, response=schemas.KeyIssuedSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="At most `TASKLINKR_MAX_API_KEYS` live keys (a rotated key counts until its grace period "
        "ends): beyond, 409 until one is revoked. All keys share one request budget.",
    ),
    Route(
        "rotate_tenant_key", "POST", "/v1/tenants/{tenant_id}/keys/{key_id}/rotate",
        "Issue a replacement key; the old one works until its grace period ends",
        who=(OWNER, OPERATOR), tag="keys", status=201,
        request=schemas.KeyRotateSchema, response=schemas.KeyIssuedSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="The new key has the old one's role. A revoked, expired or already rotated key is 409.",
    ),
    Route(
        "revoke_tenant_key", "POST", "/v1/tenants/{tenant_id}/keys/{key_id}/revoke", "Refuse a key from now on",
        who=(OWNER, OPERATOR), tag="keys", response=schemas.KeySchema,
        errors=(*_AUTH, 404, 409, *_UPSTREAM),
        description="Takes effect at once. The last live owner key cannot be revoked (409): rotate it with "
        '`{"grace_seconds": 0}` instead.',
    ),
    Route(
        "list_provider_keys", "GET", "/v1/providers/{provider_id}/keys", "A provider's API keys",
        who=(PROVIDER_ITSELF, OPERATOR), tag="keys", response=schemas.KeyListSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "create_provider_key", "POST", "/v1/providers/{provider_id}/keys", "Issue another provider key",
        who=(PROVIDER_ITSELF, OPERATOR), tag="keys", status=201,
        request=schemas.ProviderKeyCreateSchema, response=schemas.KeyIssuedSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="At most `TASKLINKR_MAX_API_KEYS` live keys (a rotated key counts until its grace period "
        "ends): beyond, 409 until one is revoked. All keys share one request budget.",
    ),
    Route(
        "rotate_provider_key", "POST", "/v1/providers/{provider_id}/keys/{key_id}/rotate",
        "Issue a replacement key; the old one works until its grace period ends",
        who=(PROVIDER_ITSELF, OPERATOR), tag="keys", status=201,
        request=schemas.KeyRotateSchema, response=schemas.KeyIssuedSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "revoke_provider_key", "POST", "/v1/providers/{provider_id}/keys/{key_id}/revoke", "Refuse a key from now on",
        who=(PROVIDER_ITSELF, OPERATOR), tag="keys", response=schemas.KeySchema,
        errors=(*_AUTH, 404, 409, *_UPSTREAM),
        description="Takes effect at once. The provider's last live key cannot be revoked (409): rotate it with "
        '`{"grace_seconds": 0}` instead.',
    ),
)
