"""Negotiation: the shortlists matching announces, the invitations a client sends from them, the proposals and
counter-proposals of client and provider, and the award that ends it.

Matching owns shortlists and providers' load: it is asked (outside any transaction, with a short deadline) for the
current shortlist when postings' copy has not caught up, and for a provider's free capacity before terms are taken.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import eventlet
from nameko.exceptions import RemoteError, UnknownService

from shared.runtime.persistence import Store, UnitOfWork, is_duplicate
from shared.vocabulary import paging
from shared.vocabulary.errors import Conflict, DomainError, NotFound
from shared.vocabulary.terms import lane_of

from .. import domain, events, repository, schemas
from ..repository import NegotiationRepository
from .common import posting_of, store_posting, tenant_of

log = logging.getLogger(__name__)

MATCHING_ANSWER_SECONDS = 2.0  # well inside the gateway's wait for postings (30 s; 5 s in tests)


# -- matching ------------------------------------------------------------------------------------------------


def ask_matching(matching: Any, method: str, *args: Any) -> Any:
    """Matching's answer, or None when it cannot give one in time (not running, or it does not know)."""
    try:
        with eventlet.Timeout(MATCHING_ANSWER_SECONDS):
            return getattr(matching, method)(*args)
    except (UnknownService, RemoteError, DomainError, eventlet.Timeout) as exc:
        log.warning("matching.%s%s unanswered (%s)", method, args, type(exc).__name__)
        return None


def free_hours(matching: Any, provider_id: str, centre_id: str | None) -> float | None:
    """The provider's free hours a week as matching counts them; None (terms taken unchecked) when matching cannot
    tell."""
    answer = ask_matching(matching, "free_capacity", provider_id, centre_id)
    return None if answer is None else float(answer["free_hours_per_week"])


def keep_latest_shortlist(uow: UnitOfWork, data: dict) -> None:
    """Postings' copy of a shortlist (``matches.proposed`` / ``shortlist.updated``), an older version ignored."""
    repo = NegotiationRepository.of(uow)
    incoming = data["shortlist"]
    if not domain.shortlist_is_newer(repo.shortlist(data["posting_id"]), incoming["version"]):
        return  # an older version arriving late (a retry overtaken by a newer ranking)
    repo.save_shortlist({
        "posting_id": data["posting_id"],
        "tenant_id": data["tenant_id"],
        "version": incoming["version"],
        "computed_at": incoming["computed_at"],
        "candidates": [
            {"provider_id": c["provider_id"], "centre_id": c.get("centre_id"), "rank": c["rank"],
             "score": c["score"]}
            for c in incoming["candidates"]
        ],
    })


# -- lookups and versioned writes ------------------------------------------------------------------------------


def _invitation_for(repo: NegotiationRepository, provider_id: Any, invitation_id: Any) -> dict:
    invitation = repo.invitation(invitation_id)
    # Another provider's invitation is as absent as an unknown one: no existence leak.
    if invitation is None or invitation["provider_id"] != provider_id:
        raise NotFound(f"Invitation {invitation_id} not found.")
    return invitation


def _proposal_for(repo: NegotiationRepository, party: domain.Party, party_id: str, proposal_id: Any) -> dict:
    proposal = repo.proposal(proposal_id)
    owner = None if proposal is None else (
        proposal["tenant_id"] if party is domain.Party.CLIENT else proposal["provider_id"]
    )
    if owner != party_id:
        raise NotFound(f"Proposal {proposal_id} not found.")
    return proposal


def _store_invitation(repo: NegotiationRepository, before: dict, after: dict) -> None:
    if not repo.replace_invitation(after, expected_version=before["version"]):
        raise Conflict("The invitation was changed by someone else meanwhile; reload it and try again.")


def _store_proposal(repo: NegotiationRepository, before: dict, after: dict) -> None:
    if not repo.replace_proposal(after, expected_version=before["version"]):
        raise Conflict("The proposal was changed by someone else meanwhile; reload it and try again.")


def close_negotiations(repo: NegotiationRepository, posting_id: str, *, keep: str | None, reason: str,
                       now: datetime) -> None:
    """Ends every open negotiation and unanswered invitation of a posting that is no longer open."""
    for proposal in repo.proposals_of_posting(posting_id):
        if proposal["id"] != keep and proposal["status"] in domain.OPEN_PROPOSAL_STATUSES:
            _store_proposal(repo, proposal, domain.close_proposal(proposal, reason=reason, now=now))
    for invitation in repo.invitations_of_posting(posting_id):
        if invitation["status"] == domain.InvitationStatus.PENDING:
            _store_invitation(repo, invitation, domain.close_invitation(invitation, now))


# -- invitations -----------------------------------------------------------------------------------------------


def invite_provider(store: Store, matching: Any, tenant_id: str, posting_id: str, provider_id: str) -> dict:
    # Postings' copy of the shortlist follows matching's events, a moment behind what matching answers: when the
    # copy does not have the provider yet, matching is asked for the shortlist it shows now.
    kept = NegotiationRepository(store.db).shortlist(posting_id) if isinstance(posting_id, str) else None
    current = None
    if domain.shortlist_candidate(kept, provider_id) is None:
        current = ask_matching(matching, "get_shortlist", tenant_id, posting_id)

    def work(uow: UnitOfWork) -> dict:
        repo = NegotiationRepository.of(uow)
        posting = posting_of(repo, tenant_id, posting_id)
        existing = repo.invitation_of(posting["id"], provider_id)
        if existing is not None:
            return schemas.invitation_to_wire(existing)  # inviting twice is one invitation
        if current is not None and current["tenant_id"] == posting["tenant_id"]:
            keep_latest_shortlist(uow, current)
        shortlist = repo.shortlist(posting["id"])
        if shortlist is not None and shortlist["tenant_id"] != posting["tenant_id"]:
            shortlist = None
        invitation = domain.invite(posting, shortlist, provider_id, invitation_id=repository.new_id("inv"),
                                   now=repository.current_time())
        repo.insert_invitation(invitation)
        return schemas.invitation_to_wire(invitation)

    try:
        return store.transact(work)
    except Exception as exc:
        if not is_duplicate(exc):
            raise
        # The same invitation was sent twice at once and the other request committed first.
        return schemas.invitation_to_wire(NegotiationRepository(store.db).invitation_of(posting_id, provider_id))


def list_invitations(repo: NegotiationRepository, provider_id: str, status: str | None, limit: int,
                     after: str | None) -> dict:
    rows = repo.invitations_page(provider_id, status=status, after=after, limit=limit + 1)
    page, next_cursor = paging.split_page(rows, limit)
    return {"items": [schemas.invitation_to_wire(row) for row in page], "next_cursor": next_cursor}


def get_invitation(repo: NegotiationRepository, provider_id: str, invitation_id: str) -> dict:
    return schemas.invitation_to_wire(_invitation_for(repo, provider_id, invitation_id))


def answer_invitation(uow: UnitOfWork, provider_id: str, invitation_id: str, *, accept: bool,
                      reason: str | None) -> dict:
    repo = NegotiationRepository.of(uow)
    before = _invitation_for(repo, provider_id, invitation_id)
    posting = posting_of(repo, before["tenant_id"], before["posting_id"])
    after, changed = domain.answer_invitation(before, posting, accept=accept, reason=reason,
                                              now=repository.current_time())
    if changed:
        _store_invitation(repo, before, after)
    return schemas.invitation_to_wire(after)


# -- proposals and negotiation -----------------------------------------------------------------------------------


def submit_proposal(store: Store, matching: Any, provider_id: str, invitation_id: str, offered: dict,
                    note: str | None) -> dict:
    invited = _invitation_for(NegotiationRepository(store.db), provider_id, invitation_id)
    free = free_hours(matching, provider_id, invited["centre_id"])

    def work(uow: UnitOfWork) -> dict:
        repo = NegotiationRepository.of(uow)
        invitation = _invitation_for(repo, provider_id, invitation_id)
        tenant = tenant_of(repo, invitation["tenant_id"])
        posting = posting_of(repo, tenant["id"], invitation["posting_id"])
        domain.ensure_within_capacity(offered, free, posting.get("seats", 1))
        now = repository.current_time()
        proposal = domain.open_proposal(invitation, posting, terms=offered, note=note,
                                        proposal_id=repository.new_id("prp"), now=now)
        repo.insert_proposal(proposal)
        _store_invitation(repo, invitation, {**invitation, "proposal_id": proposal["id"],
                                             "version": invitation["version"] + 1})
        wire = schemas.proposal_to_wire(proposal)
        _emit_submitted(uow, tenant, wire)
        return wire

    return store.transact(work)


def get_proposal(repo: NegotiationRepository, kind: domain.Party, party_id: str, proposal_id: str) -> dict:
    return schemas.proposal_to_wire(_proposal_for(repo, kind, party_id, proposal_id))


def list_proposals(repo: NegotiationRepository, tenant_id: str, posting_id: str) -> dict:
    posting = posting_of(repo, tenant_id, posting_id)
    # A posting's proposals are bounded by the providers its client invited: one page.
    return {"items": [schemas.proposal_to_wire(p) for p in repo.proposals_of_posting(posting["id"])]}


def counter_proposal(store: Store, matching: Any, kind: domain.Party, party_id: str, proposal_id: str,
                     offered: dict, note: str | None) -> dict:
    current = _proposal_for(NegotiationRepository(store.db), kind, party_id, proposal_id)
    free = free_hours(matching, current["provider_id"], current["centre_id"])

    def work(uow: UnitOfWork) -> dict:
        repo = NegotiationRepository.of(uow)
        before = _proposal_for(repo, kind, party_id, proposal_id)
        tenant = tenant_of(repo, before["tenant_id"])
        posting = posting_of(repo, tenant["id"], before["posting_id"])
        domain.ensure_within_capacity(offered, free, posting.get("seats", 1))
        after = domain.counter(before, posting, kind, terms=offered, note=note, actor=f"{kind.value}:{party_id}",
                               now=repository.current_time())
        _store_proposal(repo, before, after)
        wire = schemas.proposal_to_wire(after)
        if kind is domain.Party.PROVIDER:
            _emit_submitted(uow, tenant, wire)
        return wire

    return store.transact(work)


def accept_proposal(uow: UnitOfWork, kind: domain.Party, party_id: str, proposal_id: str) -> dict:
    repo = NegotiationRepository.of(uow)
    before = _proposal_for(repo, kind, party_id, proposal_id)
    posting = posting_of(repo, before["tenant_id"], before["posting_id"])
    after, changed = domain.accept(before, posting, kind, actor=f"{kind.value}:{party_id}",
                                   now=repository.current_time())
    if changed:
        _store_proposal(repo, before, after)
    return schemas.proposal_to_wire(after)


def award_posting(uow: UnitOfWork, tenant_id: str, posting_id: str, proposal_id: str,
                  max_backdate_days: int) -> dict:
    repo = NegotiationRepository.of(uow)
    tenant = tenant_of(repo, tenant_id)
    before = posting_of(repo, tenant_id, posting_id)
    proposal = _proposal_for(repo, domain.Party.CLIENT, tenant_id, proposal_id)
    if before["status"] == domain.Status.AWARDED and before["awarded_proposal_id"] == proposal["id"]:
        return schemas.posting_to_wire(before)  # a retry: same answer, no second event
    now = repository.current_time()
    after, awarded = domain.award(before, proposal, now=now, max_backdate_days=max_backdate_days)
    store_posting(repo, before, after)
    _store_proposal(repo, proposal, awarded)
    close_negotiations(repo, after["id"], keep=awarded["id"],
                       reason="The client awarded the posting to another proposal.", now=now)
    wire = schemas.posting_to_wire(after)
    start = domain.agreed_start_date(after, awarded["terms"]).isoformat()
    uow.emit(events.POSTING_AWARDED, subject=after["id"],
             data=events.posting_awarded(wire, tenant, schemas.proposal_to_wire(awarded), start),
             lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
    return wire


def _emit_submitted(uow: UnitOfWork, tenant: dict, proposal: dict) -> None:
    uow.emit(events.PROPOSAL_SUBMITTED, subject=proposal["id"],
             data=events.proposal_submitted(proposal, proposal["history"][-1]),
             lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
