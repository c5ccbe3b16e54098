"""The routes of postings and of their negotiation (invitations, proposals, award)."""

from __future__ import annotations

from services.gateway import schemas
from services.gateway.routes.common import _AUTH, _BODY, _UPSTREAM, CLIENT, PROVIDER_ITSELF, Route

POSTINGS: tuple[Route, ...] = (
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
)

NEGOTIATION: tuple[Route, ...] = (
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
)
