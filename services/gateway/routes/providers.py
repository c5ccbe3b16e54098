"""The routes of providers: registration, profile, availability, verification, search."""

from __future__ import annotations

from services.gateway import schemas
from services.gateway.routes.common import _AUTH, _BODY, _UPSTREAM, CLIENT, OPERATOR, PROVIDER_ITSELF, Route

PROVIDERS: tuple[Route, ...] = (
    Route(
        "register_provider", "POST", "/v1/providers", "Register a provider and issue its API key",
        who=(OPERATOR,), tag="providers", status=201,
        request=schemas.ProviderRegistrationSchema, response=schemas.ProviderRegisteredSchema,
        errors=(*_BODY, *_AUTH, *_UPSTREAM),
    ),
    Route(
        "search_providers", "GET", "/v1/providers", "Search providers",
        who=(OPERATOR, CLIENT), tag="providers",
        query=schemas.ProviderSearchQuerySchema, response=schemas.ProviderPageSchema,
        errors=(422, *_AUTH, *_UPSTREAM),
        description="`max_hourly_rate` compares only rates in the given `currency`.",
    ),
    Route(
        "get_provider", "GET", "/v1/providers/{provider_id}", "A provider's profile",
        who=(OPERATOR, CLIENT, PROVIDER_ITSELF), tag="providers", response=schemas.ProviderSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "update_provider", "PATCH", "/v1/providers/{provider_id}", "Change a provider's profile",
        who=(PROVIDER_ITSELF, OPERATOR), tag="providers",
        request=schemas.ProviderChangesSchema, response=schemas.ProviderSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="A change that does not fit the provider as it is, is 409: what its kind (which never "
        "changes) rules out (a firm's working hours, an individual's delivery centres, models of the other kind), "
        "rates in another currency than its own (send `currency` and `rates` together to change both).",
    ),
    Route(
        "set_provider_availability", "PUT", "/v1/providers/{provider_id}/availability",
        "Set a provider's availability and capacity",
        who=(PROVIDER_ITSELF, OPERATOR), tag="providers",
        request=schemas.AvailabilityChangeSchema, response=schemas.ProviderSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="What does not fit the provider as it is is 409: `capacity_hours_per_week` for a firm, "
        "`centre_seats` for an individual or naming a centre the firm does not have.",
    ),
    Route(
        "verify_provider", "POST", "/v1/providers/{provider_id}/verify", "Mark a provider verified (idempotent)",
        who=(OPERATOR,), tag="providers",
        request=schemas.VerifySchema, response=schemas.ProviderSchema,
        errors=(*_BODY, *_AUTH, 404, *_UPSTREAM),
    ),
)
