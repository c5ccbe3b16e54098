"""The routes of matching: a posting's shortlist and the explanation of a match."""

from __future__ import annotations

from services.gateway import schemas
from services.gateway.routes.common import _AUTH, _UPSTREAM, CLIENT, Route

MATCHING: tuple[Route, ...] = (
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
)
