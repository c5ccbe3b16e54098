"""Entrypoints of negotiation: matching's shortlists, invitations, proposals and the award."""

from __future__ import annotations

from shared.runtime.messaging import subscribe
from shared.runtime.persistence import UnitOfWork
from shared.runtime.rpc import rpc
from shared.vocabulary import paging

from .. import events, schemas
from ..handlers import negotiation
from ..repository import NegotiationRepository


class NegotiationEntrypoints:
    # -- shortlists (from matching) -------------------------------------------------------------------------------

    @subscribe(events.MATCHING, events.MATCHES_PROPOSED)
    def on_matches_proposed(self, uow: UnitOfWork, envelope: dict) -> None:
        negotiation.keep_latest_shortlist(uow, envelope["data"])

    @subscribe(events.MATCHING, events.SHORTLIST_UPDATED)
    def on_shortlist_updated(self, uow: UnitOfWork, envelope: dict) -> None:
        negotiation.keep_latest_shortlist(uow, envelope["data"])

    # -- invitations ------------------------------------------------------------------------------------------------

    @rpc
    def invite_provider(self, tenant_id: str, posting_id: str, provider_id: str) -> dict:
        provider_id = schemas.load_identifier(provider_id, "provider_id", "prv_")
        return negotiation.invite_provider(self.store, self.matching, tenant_id, posting_id, provider_id)

    @rpc
    def list_invitations(self, provider_id: str, status: str | None = None, limit: int = paging.DEFAULT_LIMIT,
                         cursor: str | None = None) -> dict:
        status, limit, after = schemas.load_invitation_page(status, limit, cursor)
        return negotiation.list_invitations(NegotiationRepository(self.store.db), provider_id, status, limit, after)

    @rpc
    def get_invitation(self, provider_id: str, invitation_id: str) -> dict:
        return negotiation.get_invitation(NegotiationRepository(self.store.db), provider_id, invitation_id)

    @rpc
    def accept_invitation(self, provider_id: str, invitation_id: str) -> dict:
        return self.store.transact(lambda uow: negotiation.answer_invitation(uow, provider_id, invitation_id,
                                                                             accept=True, reason=None))

    @rpc
    def decline_invitation(self, provider_id: str, invitation_id: str, reason: str | None = None) -> dict:
        why = schemas.load_decline_reason(reason)
        return self.store.transact(lambda uow: negotiation.answer_invitation(uow, provider_id, invitation_id,
                                                                             accept=False, reason=why))

    # -- proposals and the award ------------------------------------------------------------------------------------

    @rpc
    def submit_proposal(self, provider_id: str, invitation_id: str, terms: dict, note: str | None = None) -> dict:
        offered, note = schemas.load_offer(terms, note)
        return negotiation.submit_proposal(self.store, self.matching, provider_id, invitation_id, offered, note)

    @rpc
    def get_proposal(self, party: dict, proposal_id: str) -> dict:
        kind, party_id = schemas.load_party(party)
        return negotiation.get_proposal(NegotiationRepository(self.store.db), kind, party_id, proposal_id)

    @rpc
    def list_proposals(self, tenant_id: str, posting_id: str) -> dict:
        return negotiation.list_proposals(NegotiationRepository(self.store.db), tenant_id, posting_id)

    @rpc
    def counter_proposal(self, party: dict, proposal_id: str, terms: dict, note: str | None = None) -> dict:
        kind, party_id = schemas.load_party(party)
        offered, note = schemas.load_offer(terms, note)
        return negotiation.counter_proposal(self.store, self.matching, kind, party_id, proposal_id, offered, note)

    @rpc
    def accept_proposal(self, party: dict, proposal_id: str) -> dict:
        kind, party_id = schemas.load_party(party)
        return self.store.transact(lambda uow: negotiation.accept_proposal(uow, kind, party_id, proposal_id))

    @rpc
    def award_posting(self, tenant_id: str, posting_id: str, proposal_id: str) -> dict:
        proposal_id = schemas.load_identifier(proposal_id, "proposal_id", "prp_")
        backdate = int(self.config.get("CONTRACTING_MAX_BACKDATE_DAYS", 31))
        return self.store.transact(lambda uow: negotiation.award_posting(uow, tenant_id, posting_id, proposal_id,
                                                                         backdate))
