"""The routes of contracts (contracting): terms, signatures, amendments, SLAs, governance, ratings."""

from __future__ import annotations

from services.gateway import schemas
from services.gateway.routes.common import _AUTH, _BODY, _UPSTREAM, CLIENT, PROVIDER_ITSELF, Route

CONTRACTS: tuple[Route, ...] = (
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
)
