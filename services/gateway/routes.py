"""The route table: the one list the HTTP entrypoints are registered from and the OpenAPI document is built from.

A service method is bound to its row by name (``@route("create_posting")``), so a route cannot exist in the
server without being in the document, nor in the document without a handler (tests hold both directions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from marshmallow import Schema

from services.gateway import schemas

# Who may call a route: its ``who`` names callers, and a caller's key must match one of them (403 otherwise).
#
#   OPERATOR         the operator key (configuration).
#   CLIENT           a client organisation's key with role owner or manager: the safe default for client work.
#   OWNER            a client organisation's owner key only (its keys, its audit trail).
#   FINANCE          a client organisation's finance key. Finance reads invoices and reports and nothing else, so it
#                    is never implied: a route that finance may call names FINANCE explicitly (next to CLIENT).
#   PROVIDER_ITSELF  a provider's key: on /providers/{provider_id} only its own profile; on invitations and
#                    proposals, its own.
#
# On a path with {tenant_id} a client reaches only its own organisation, and a provider on {provider_id} only
# itself: anything else answers 404, like any other resource it does not own.
OPERATOR = "operator"
CLIENT = "client"
OWNER = "owner"
MANAGER = "manager"
FINANCE = "finance"
PROVIDER_ITSELF = "provider"
CALLERS = (OPERATOR, CLIENT, OWNER, FINANCE, PROVIDER_ITSELF)
# The roles of a client organisation's keys (shared.vocabulary.apikeys.CLIENT_ROLES), and the ``who`` entries that
# admit each.
_ADMITTED_BY = {OWNER: (CLIENT, OWNER), MANAGER: (CLIENT,), FINANCE: (FINANCE,)}


def admits(who: tuple[str, ...], kind: str, role: str | None = None) -> bool:
    """Whether a caller of ``kind`` (a client: with ``role``) may call a route whose callers are ``who``."""
    if kind == CLIENT:
        return any(entry in who for entry in _ADMITTED_BY.get(role or "", ()))
    return kind in who


def describe(who: tuple[str, ...]) -> str:
    """The callers of a route in words, for the OpenAPI document."""
    words = {CLIENT: "client (owner or manager key)", OWNER: "client owner key", FINANCE: "client finance key",
             PROVIDER_ITSELF: "provider", OPERATOR: "operator"}
    return ", ".join(words[entry] for entry in who) if who else "anyone (no key)"

_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    path: str
    summary: str
    # Empty: anyone, no key needed.
    who: tuple[str, ...]
    tag: str
    status: int = 200
    request: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # A batch whose items carry an idempotency ``key`` each, or take the ``Idempotency-Key`` header plus their
    # position: the description then requires the header (it cannot say "unless every item has a key").
    keyed_batch: bool = False
    # What a successful answer is: JSON (shaped by ``response``), or a document (HTML, CSV, PDF) sent as it is.
    media_type: str = "application/json"

    @property
    def public(self) -> bool:
        return not self.who

    @property
    def changes_state(self) -> bool:
        """Whether the route can change something: each such request is written to the audit trail."""
        return self.method != "GET"

    @property
    def path_parameters(self) -> list[str]:
        return _PARAMETER.findall(self.path)

    @property
    def werkzeug_rule(self) -> str:
        """``/v1/postings/{posting_id}`` as werkzeug spells it: ``/v1/postings/<posting_id>``."""
        return _PARAMETER.sub(r"<\1>", self.path)

    @property
    def statuses(self) -> tuple[int, ...]:
        return (self.status, *self.errors)


# Every route that needs a key may also answer 429: each key has a request budget (Retry-After says when).
_AUTH = (401, 403, 429)
_BODY = (400, 413, 415, 422)
_UPSTREAM = (503, 504)

# The web console's files (pages, not API routes): served by the gateway under /console.
CONSOLE_PATHS = ("/console", "/console/", "/console/<path:path>")

ROUTES: tuple[Route, ...] = (
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
    Route(
        "create_posting", "POST", "/v1/postings", "Create a draft posting",
        who=(CLIENT,), tag="postings", status=201,
        request=schemas.PostingDraftSchema, response=schemas.PostingSchema,
        errors=(*_BODY, *_AUTH, *_UPSTREAM),
        description="Send an `Idempotency-Key` header and retry with the same key after a 504: the same key "
        "answers the same posting.",
        headers={"Idempotency-Key": "Makes the creation safe to retry; reuse it when retrying."},
    ),
    Route(
        "list_postings", "GET", "/v1/postings", "The calling client's postings",
        who=(CLIENT,), tag="postings",
        query=schemas.PostingListQuerySchema, response=schemas.PostingPageSchema,
        errors=(422, *_AUTH, *_UPSTREAM),
    ),
    Route(
        "get_posting", "GET", "/v1/postings/{posting_id}", "One of the calling client's postings",
        who=(CLIENT,), tag="postings", response=schemas.PostingSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "update_posting", "PATCH", "/v1/postings/{posting_id}", "Change a draft or open posting",
        who=(CLIENT,), tag="postings",
        request=schemas.PostingChangesSchema, response=schemas.PostingSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "publish_posting", "POST", "/v1/postings/{posting_id}/publish", "Publish a draft posting",
        who=(CLIENT,), tag="postings",
        request=schemas.PublishSchema, response=schemas.PostingSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="A posting assessed as core to the client's business is published only with "
        '`{"confirm_core": true}`; without it the answer is 409 with the reason. A draft that lacks what '
        "publishing needs (engagement, budget, start date, hours a week for hourly and retainer work) is 409, "
        "naming each missing field: complete it with a PATCH first.",
    ),
    Route(
        "cancel_posting", "POST", "/v1/postings/{posting_id}/cancel", "Cancel a draft or open posting",
        who=(CLIENT,), tag="postings",
        request=schemas.CancelSchema, response=schemas.PostingSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "invite_provider", "POST", "/v1/postings/{posting_id}/invitations",
        "Invite a provider from the posting's current shortlist",
        who=(CLIENT,), tag="negotiation", status=201,
        request=schemas.InvitationCreateSchema, response=schemas.InvitationSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="The posting must be open and have a shortlist (409 otherwise); a provider not on the current "
        "shortlist is 422. Inviting the same provider again answers the same invitation.",
    ),
    Route(
        "list_posting_proposals", "GET", "/v1/postings/{posting_id}/proposals", "The proposals on a posting",
        who=(CLIENT,), tag="negotiation", response=schemas.ProposalListSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "award_posting", "POST", "/v1/postings/{posting_id}/award", "Award the posting to an agreed proposal",
        who=(CLIENT,), tag="negotiation",
        request=schemas.AwardSchema, response=schemas.PostingSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Both sides must have agreed to the proposal's latest terms (409 otherwise). The posting "
        "becomes `awarded`, other negotiations close, and `posting.awarded.v1` carries the deal to contracting. "
        "Repeating the same award answers the same posting.",
    ),
    Route(
        "list_invitations", "GET", "/v1/invitations", "The calling provider's invitations",
        who=(PROVIDER_ITSELF,), tag="negotiation",
        query=schemas.InvitationListQuerySchema, response=schemas.InvitationPageSchema,
        errors=(422, *_AUTH, *_UPSTREAM),
    ),
    Route(
        "accept_invitation", "POST", "/v1/invitations/{invitation_id}/accept", "Accept an invitation",
        who=(PROVIDER_ITSELF,), tag="negotiation", response=schemas.InvitationSchema,
        errors=(*_AUTH, 404, 409, *_UPSTREAM),
        description="Only the invited provider; another provider's invitation is 404.",
    ),
    Route(
        "decline_invitation", "POST", "/v1/invitations/{invitation_id}/decline", "Decline an invitation",
        who=(PROVIDER_ITSELF,), tag="negotiation",
        request=schemas.DeclineSchema, response=schemas.InvitationSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Only the invited provider; another provider's invitation is 404.",
    ),
    Route(
        "submit_proposal", "POST", "/v1/invitations/{invitation_id}/proposals",
        "Submit a proposal on an accepted invitation",
        who=(PROVIDER_ITSELF,), tag="negotiation", status=201,
        request=schemas.OfferSchema, response=schemas.ProposalSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="The price is in the posting's currency and means what its budget means; `hours_per_week` "
        "is required for hourly and retainer work, and at most the provider's free hours a week (its capacity less "
        "what its current contracts hold, as matching counts them; 422 with the reason). One proposal per "
        "invitation: afterwards, counter it.",
    ),
    Route(
        "get_proposal", "GET", "/v1/proposals/{proposal_id}", "A proposal with its negotiation history",
        who=(CLIENT, PROVIDER_ITSELF), tag="negotiation", response=schemas.ProposalSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
        description="The posting's client or the proposing provider; anyone else gets 404.",
    ),
    Route(
        "counter_proposal", "POST", "/v1/proposals/{proposal_id}/counter", "Counter the terms on the table",
        who=(CLIENT, PROVIDER_ITSELF), tag="negotiation",
        request=schemas.OfferSchema, response=schemas.ProposalSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Only the party whose turn it is (the one that did not make the latest offer); out of turn "
        "is 409. A counter changes at least one term.",
    ),
    Route(
        "accept_proposal", "POST", "/v1/proposals/{proposal_id}/accept", "Accept the other side's latest terms",
        who=(CLIENT, PROVIDER_ITSELF), tag="negotiation", response=schemas.ProposalSchema,
        errors=(*_AUTH, 404, 409, *_UPSTREAM),
        description="Only the party whose turn it is; the proposal becomes `agreed` and can be awarded.",
    ),
    Route(
        "get_shortlist", "GET", "/v1/postings/{posting_id}/shortlist", "The posting's ranked, explained shortlist",
        who=(CLIENT,), tag="matching", response=schemas.ShortlistSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
        description="Each candidate carries its score, the breakdown of its soft components and reasons. 404 until "
        "matching has ranked the posting (moments after publishing), and for another tenant's posting.",
    ),
    Route(
        "explain_match", "GET", "/v1/postings/{posting_id}/shortlist/{provider_id}/explain",
        "Why a provider is, or is not, on the posting's shortlist",
        who=(CLIENT,), tag="matching", response=schemas.ExplanationSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
        description="Per candidate row (the provider, or each of a firm's delivery centres): the hard constraints "
        "that exclude it, or its score, breakdown, place among all eligible candidates and how far below the cut.",
    ),
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
    Route(
        "list_tenant_audit", "GET", "/v1/tenants/{tenant_id}/audit",
        "The audit trail of a client organisation: every state-changing request by it or about it",
        who=(OWNER, OPERATOR), tag="audit",
        query=schemas.AuditQuerySchema, response=schemas.AuditPageSchema,
        errors=(422, *_AUTH, 404, *_UPSTREAM),
        description="Newest first. Who (principal and key id, never the key), when (UTC), what (operation, "
        "resource ids, HTTP status) and the correlation id.",
    ),
    Route(
        "list_audit", "GET", "/v1/audit", "The whole audit trail",
        who=(OPERATOR,), tag="audit",
        query=schemas.OperatorAuditQuerySchema, response=schemas.AuditPageSchema,
        errors=(422, *_AUTH, *_UPSTREAM),
        description="Newest first; filter by tenant, operation, key, actor, resource, outcome or time.",
    ),
    Route(
        "list_contracts", "GET", "/v1/contracts", "The calling party's contracts (as client or as provider)",
        who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        query=schemas.ContractListQuerySchema, response=schemas.ContractPageSchema,
        errors=(422, *_AUTH, *_UPSTREAM),
    ),
    Route(
        "get_contract", "GET", "/v1/contracts/{contract_id}", "A contract, with its history and ratings",
        who=(CLIENT, PROVIDER_ITSELF), tag="contracts", response=schemas.ContractSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
        description="Only the contract's two parties (the client organisation and the provider); anyone else "
        "gets 404. Contracting drafts a contract from each award (`posting.awarded.v1`).",
    ),
    Route(
        "update_contract", "PATCH", "/v1/contracts/{contract_id}", "Edit a draft contract",
        who=(CLIENT,), tag="contracts",
        request=schemas.ContractChangesSchema, response=schemas.ContractSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Draft or pending signatures only (409 otherwise). A real change voids every signature and "
        "returns the contract to `draft`; its `terms_hash` changes. The start date may lie up to "
        "`TASKLINKR_CONTRACTING_MAX_BACKDATE_DAYS` in the past (work already under way).",
    ),
    Route(
        "sign_contract", "POST", "/v1/contracts/{contract_id}/sign", "Sign the contract's current terms",
        who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        request=schemas.TermsHashSchema, response=schemas.ContractSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Send the `terms_hash` you read: other terms than the current ones are 409. The second "
        "party's signature activates the contract (`contract.activated.v1`). Signing twice is one signature.",
    ),
    Route(
        "propose_amendment", "POST", "/v1/contracts/{contract_id}/amendments",
        "Propose an amendment (scale hours or seats, change the rate, extend, change SLAs)",
        who=(CLIENT, PROVIDER_ITSELF), tag="contracts", status=201,
        request=schemas.AmendmentCreateSchema, response=schemas.ContractSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Active contracts, one pending amendment at a time. It applies once both parties signed its "
        "`pending_amendment.terms_hash`.",
    ),
    Route(
        "sign_amendment", "POST", "/v1/contracts/{contract_id}/amendments/{amendment_id}/sign",
        "Sign a pending amendment", who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        request=schemas.TermsHashSchema, response=schemas.ContractSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="The second signature raises the terms `version` by one and emits `contract.amended.v1`.",
    ),
    Route(
        "withdraw_amendment", "POST", "/v1/contracts/{contract_id}/amendments/{amendment_id}/withdraw",
        "Withdraw (or decline) a pending amendment", who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        response=schemas.ContractSchema, errors=(*_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "submit_measurements", "POST", "/v1/contracts/{contract_id}/measurements",
        "Record SLA measurements, one or a batch", who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        request=schemas.MeasurementsSchema, response=schemas.MeasurementsRecordedSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Each measurement has an idempotency `key` (or the `Idempotency-Key` header plus its position "
        "in the batch makes one): a key sent again with the same content is a duplicate, with other content the "
        "batch is refused (422). A measurement for a window already evaluated is recorded as `late` and does "
        "not change that window's outcome. Windows are evaluated once, after the grace period.",
        headers={"Idempotency-Key": "Keys the measurements that carry no key of their own."}, keyed_batch=True,
    ),
    Route(
        "close_sla_window", "POST", "/v1/contracts/{contract_id}/slas/{sla_id}/windows/close",
        "Confirm an ended SLA window's measurements complete", who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        request=schemas.SlaWindowCloseSchema, response=schemas.SlaWindowClosureSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Once both parties confirmed, the window skips the rest of its grace period and is evaluated "
        "in the request (after any earlier window of the SLA still open), emitting `sla.met.v1` or "
        "`sla.breached.v1` once; measurements sent afterwards are `late`. One confirmation alone is recorded and "
        "changes nothing. A window that has not ended is 409; one already evaluated answers its `evaluation`.",
    ),
    Route(
        "governance_summary", "GET", "/v1/contracts/{contract_id}/governance",
        "SLA compliance over time, credits, reviews and issues", who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        response=schemas.GovernanceSummarySchema, errors=(*_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "record_review", "POST", "/v1/contracts/{contract_id}/reviews", "Record a performance review",
        who=(CLIENT,), tag="contracts", status=201,
        request=schemas.ReviewCreateSchema, response=schemas.ReviewSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="The client, on an active contract; it fulfils the next review the governance plan schedules.",
    ),
    Route(
        "raise_issue", "POST", "/v1/contracts/{contract_id}/issues", "Raise an issue",
        who=(CLIENT, PROVIDER_ITSELF), tag="contracts", status=201,
        request=schemas.IssueCreateSchema, response=schemas.IssueSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Starts at escalation level 1; unresolved past `due_at` it climbs one level of the plan at a "
        "time, each level giving its `response_hours`.",
    ),
    Route(
        "resolve_issue", "POST", "/v1/contracts/{contract_id}/issues/{issue_id}/resolve", "Resolve an issue",
        who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        request=schemas.IssueResolveSchema, response=schemas.IssueSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "complete_contract", "POST", "/v1/contracts/{contract_id}/complete",
        "Complete an active contract, rating the provider", who=(CLIENT,), tag="contracts",
        request=schemas.RatingCreateSchema, response=schemas.ContractSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Emits `contract.completed.v1` with the rating; matching updates the provider's track record.",
    ),
    Route(
        "terminate_contract", "POST", "/v1/contracts/{contract_id}/terminate",
        "Terminate an active contract with a reason and notice", who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        request=schemas.TerminationCreateSchema, response=schemas.ContractSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "rate_client", "POST", "/v1/contracts/{contract_id}/rate-client",
        "Rate the client of a completed contract (once)", who=(PROVIDER_ITSELF,), tag="contracts",
        request=schemas.RatingCreateSchema, response=schemas.ContractSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "answer_rating", "POST", "/v1/contracts/{contract_id}/ratings/answer",
        "Answer the rating you received (once)", who=(CLIENT, PROVIDER_ITSELF), tag="contracts",
        request=schemas.RatingAnswerSchema, response=schemas.ContractSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "submit_billable_items", "POST", "/v1/billing-accounts/{contract_id}/items",
        "Submit time entries, usage or a delivered milestone, one or a batch", who=(PROVIDER_ITSELF,),
        tag="billing", request=schemas.BillableItemsSchema, response=schemas.BillableItemsRecordedSchema,
        errors=(*_BODY, *_AUTH, 404, *_UPSTREAM),
        description="The contract's provider. Each item has an idempotency `key` (or the `Idempotency-Key` header "
        "plus its position makes one): sent again with the same content it is a duplicate (acknowledged, not "
        "counted again), with other content the batch is refused. Items dated outside the contract, in the future, "
        "over the agreed weekly capacity (hours_per_week x seats), or of a kind the contract does not bill are "
        "refused (422) with the reason per key; then none of the batch is recorded.",
        headers={"Idempotency-Key": "Keys the items that carry no key of their own."}, keyed_batch=True,
    ),
    Route(
        "list_billable_items", "GET", "/v1/billing-accounts/{contract_id}/items",
        "A contract's billable items and their approval", who=(CLIENT, FINANCE, PROVIDER_ITSELF), tag="billing",
        query=schemas.BillableItemQuerySchema, response=schemas.BillableItemPageSchema,
        errors=(422, *_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "approve_billable_item", "POST", "/v1/billing-accounts/{contract_id}/items/{item_id}/approve",
        "Approve a billable item: it is billed on the next invoice", who=(CLIENT,), tag="billing",
        response=schemas.BillableItemSchema, errors=(*_AUTH, 404, 409, *_UPSTREAM),
        description="Billed in the period of its date, or in the first period not invoiced yet when that one is. "
        "Approving twice is one approval; an item rejected before is 409.",
    ),
    Route(
        "reject_billable_item", "POST", "/v1/billing-accounts/{contract_id}/items/{item_id}/reject",
        "Reject a billable item, with the reason", who=(CLIENT,), tag="billing",
        request=schemas.RejectionSchema, response=schemas.BillableItemSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "get_billing_account", "GET", "/v1/billing-accounts/{contract_id}",
        "A contract's billing account: terms, what is invoiced, paid and owed", who=(CLIENT, FINANCE, PROVIDER_ITSELF),
        tag="billing", response=schemas.BillingAccountSchema, errors=(*_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "record_refund", "POST", "/v1/billing-accounts/{contract_id}/refunds",
        "Record a refund of the account's credit balance", who=(PROVIDER_ITSELF, OPERATOR), tag="billing",
        status=201, request=schemas.RefundCreateSchema, response=schemas.RefundSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Money of the credit balance (overpayments) paid back to the client; at most the balance "
        "(409 above it). The `reference` is its idempotency key.",
    ),
    Route(
        "run_invoices", "POST", "/v1/invoice-runs", "Run the invoice run now", who=(OPERATOR,), tag="billing",
        request=schemas.InvoiceRunSchema, response=schemas.InvoiceRunSummarySchema,
        errors=(*_BODY, *_AUTH, 409, *_UPSTREAM),
        description="Issues one invoice per contract and billing period that ended before `as_of`, as the "
        "scheduled run does. Running it again (or twice at once) issues nothing twice; numbers stay gapless. "
        "An `as_of` after today (UTC) is 409: a run cannot look into the future.",
    ),
    Route(
        "list_invoices", "GET", "/v1/invoices", "Invoices: a client's own, the ones a provider billed",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing",
        query=schemas.InvoiceListQuerySchema, response=schemas.InvoicePageSchema,
        errors=(422, *_AUTH, *_UPSTREAM),
    ),
    Route(
        "get_invoice", "GET", "/v1/invoices/{invoice_id}", "An invoice with its lines, payments and balance",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing", response=schemas.InvoiceSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
        description="Only the client organisation billed and the provider billing (and the operator); anyone else "
        "gets 404. An issued invoice never changes: corrections are credit notes.",
    ),
    Route(
        "get_invoice_document", "GET", "/v1/invoices/{invoice_id}/document", "The invoice as an HTML document",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing", errors=(*_AUTH, 404, *_UPSTREAM),
        media_type="text/html",
        description="The invoice as issued, readable and printable, and never different afterwards: the parties as "
        "named then (legal names, addresses, tax ids), quantities with units, unit prices, a retainer's proration "
        "basis, totals, the tax treatment's wording (reverse charge), payment instructions. Status and balance "
        "are on its statement. Errors are JSON.",
    ),
    Route(
        "get_invoice_statement", "GET", "/v1/invoices/{invoice_id}/statement",
        "Where an invoice stands now: status, payments, credit notes, balance (HTML)",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing", errors=(*_AUTH, 404, *_UPSTREAM),
        media_type="text/html",
        description="Beside the invoice document, which shows the invoice as issued and never changes.",
    ),
    Route(
        "get_invoice_pdf", "GET", "/v1/invoices/{invoice_id}/pdf", "The invoice as a PDF document",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing", errors=(*_AUTH, 404, *_UPSTREAM),
        media_type="application/pdf",
        description="The same content as the HTML document, as an A4 PDF (fonts embedded); errors are JSON.",
    ),
    Route(
        "record_payment", "POST", "/v1/invoices/{invoice_id}/payments", "Record a payment (full, partial or over)",
        who=(FINANCE, OPERATOR), tag="billing", status=201,
        request=schemas.PaymentCreateSchema, response=schemas.InvoiceSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="The `reference` is the payment's idempotency key: the same reference and amount again is the "
        "same payment (`outcome: duplicate`), another amount 409. In the invoice's currency. A payment received "
        "in the future is 422; an invoice credited in full takes none (409). What it pays beyond the balance "
        "becomes the account's credit balance: the next invoice is paid from it, or it is refunded.",
    ),
    Route(
        "issue_credit_note", "POST", "/v1/invoices/{invoice_id}/credit-notes", "Correct an invoice by a credit note",
        who=(PROVIDER_ITSELF, OPERATOR), tag="billing", status=201,
        request=schemas.CreditNoteCreateSchema, response=schemas.CreditNoteSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="At most what is left of the invoice's total after earlier notes (409 above it); states the "
        "net and tax it corrects, pro rata of the invoice. Numbered gaplessly in the provider's series "
        "(CN-000001, ...). Send an `Idempotency-Key` and retry with it after a "
        "504: the same key is the same note; with another amount or reason it is 409.",
        headers={"Idempotency-Key": "Makes the note safe to retry; reuse it when retrying."},
    ),
    Route(
        "get_cost_report", "GET", "/v1/reports/costs", "Spend by category, model, shoring and provider; savings",
        who=(CLIENT, FINANCE), tag="billing", query=schemas.CostReportQuerySchema,
        response=schemas.CostReportSchema, errors=(422, *_AUTH, *_UPSTREAM),
        description="Over the invoices whose period starts between `from` and `to`: spend net of SLA credits "
        "and credit notes, before tax, fixed (retainer, milestones) vs variable (time, usage), and per category the "
        "saving against the in-house monthly cost estimate x the months its invoices cover.",
    ),
    Route(
        "get_cost_report_csv", "GET", "/v1/reports/costs.csv", "The cost report as CSV",
        who=(CLIENT, FINANCE), tag="billing", query=schemas.CostReportQuerySchema,
        errors=(422, *_AUTH, *_UPSTREAM), media_type="text/csv",
        description="Rows: section (total, category, model, shoring, provider, saving), key, currency, amount, "
        "in_house_cost, saving.",
    ),
    Route(
        "get_in_house_costs", "GET", "/v1/reports/in-house-costs", "The in-house monthly cost estimates",
        who=(CLIENT, FINANCE), tag="billing", response=schemas.InHouseCostsSchema,
        errors=(*_AUTH, *_UPSTREAM),
    ),
    Route(
        "set_in_house_costs", "PUT", "/v1/reports/in-house-costs",
        "Set what each category of work would cost in-house a month", who=(CLIENT,), tag="billing",
        request=schemas.InHouseCostsSchema, response=schemas.InHouseCostsSchema,
        errors=(*_BODY, *_AUTH, *_UPSTREAM),
    ),
    Route(
        "operations_backlog", "GET", "/v1/operations/backlog",
        "Each service's outbox backlog and dead-letter count", who=(OPERATOR,), tag="operations",
        response=schemas.BacklogSchema, errors=(*_AUTH, *_UPSTREAM),
        description="Read-only: each service counts its own pending outbox events (over RPC, as `/health` asks "
        "it), the broker the messages parked in each dead-letter queue. `tasklinkr dlq` lists and replays them.",
    ),
    Route(
        "openapi_document", "GET", "/v1/openapi.json", "This API's OpenAPI 3.0.3 document",
        who=(), tag="operations",
    ),
    Route(
        "health", "GET", "/health", "Health of the broker, the gateway's database, every service and its database",
        who=(), tag="operations", response=schemas.HealthSchema, errors=(503,),
        description="200 when everything answers, 503 (same body) otherwise.",
    ),
)

BY_OPERATION: dict[str, Route] = {r.operation: r for r in ROUTES}
