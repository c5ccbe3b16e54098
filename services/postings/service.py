"""The postings service: client organisations (tenants) and their task postings.

Entrypoints only. Each state change and the event it causes commit in one transaction (``store.transact``);
the outbox relay publishes the events afterwards. Rules live in ``domain``, validation in ``schemas``,
storage in ``repository``, event payloads in ``events``.
"""

from __future__ import annotations

import logging
from typing import Any

import eventlet
from nameko.dependency_providers import Config
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import RpcProxy

from shared import apikeys, idempotency
from shared.apikeys import KeyRing
from shared.errors import Conflict, DomainError, NotFound, ValidationFailed
from shared.messaging import subscribe
from shared.outbox import pending_count
from shared.persistence import Database, UnitOfWork, is_duplicate
from shared.rpc import rpc
from shared.tracing import Tracing
from shared.vocabulary import lane_of

from . import domain, events, repository, schemas
from .repository import NegotiationRepository, Repository


def _tenant(repo: Repository, tenant_id: Any) -> dict:
    tenant = repo.tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"Tenant {tenant_id} not found.")
    return tenant


def _posting(repo: Repository, tenant_id: Any, posting_id: Any) -> dict:
    posting = repo.posting(tenant_id, posting_id)
    if posting is None:
        raise NotFound(f"Posting {posting_id} not found.")
    return posting


log = logging.getLogger(__name__)

MATCHING_ANSWER_SECONDS = 2.0  # well inside the gateway's wait for postings (30 s; 5 s in tests)


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


def _close_negotiations(repo: NegotiationRepository, posting_id: str, *, keep: str | None, reason: str,
                        now) -> None:
    """Ends every open negotiation and unanswered invitation of a posting that is no longer open."""
    for proposal in repo.proposals_of_posting(posting_id):
        if proposal["id"] != keep and proposal["status"] in domain.OPEN_PROPOSAL_STATUSES:
            _store_proposal(repo, proposal, domain.close_proposal(proposal, reason=reason, now=now))
    for invitation in repo.invitations_of_posting(posting_id):
        if invitation["status"] == domain.InvitationStatus.PENDING:
            _store_invitation(repo, invitation, domain.close_invitation(invitation, now))


def _store_new_version(repo: Repository, before: dict, after: dict) -> None:
    # The transaction already conflicts with a concurrent writer; the version filter keeps that guarantee
    # explicit, and holds even on a server that would let both commit.
    if not repo.replace_posting(after, expected_version=before["version"]):
        raise Conflict("The posting was changed by someone else meanwhile; reload it and try again.")


def _publish(uow: UnitOfWork, repo: Repository, tenant: dict, draft: dict, confirm_core: bool) -> dict:
    """The draft published (it must be publishable), stored and announced with ``posting.published.v1``."""
    after = domain.publish(draft, tenant, confirm_core=confirm_core, now=repository.current_time())
    _store_new_version(repo, draft, after)
    wire = schemas.posting_to_wire(after)
    uow.emit(events.POSTING_PUBLISHED, subject=after["id"], data=events.posting_published(wire),
             lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
    return wire


class PostingsService:
    name = "postings"

    store = Database(ensure_indexes=repository.ensure_indexes)
    correlation_id = Tracing()
    config = Config()
    # Matching owns shortlists and providers' load: asked for the current shortlist when postings' copy has not
    # caught up, and for a provider's free capacity before terms are taken.
    matching = RpcProxy("matching")

    def _ask_matching(self, method: str, *args: Any) -> Any:
        """Matching's answer, or None when it cannot give one in time (not running, or it does not know)."""
        try:
            with eventlet.Timeout(MATCHING_ANSWER_SECONDS):
                return getattr(self.matching, method)(*args)
        except (UnknownService, RemoteError, DomainError, eventlet.Timeout) as exc:
            log.warning("matching.%s%s unanswered (%s)", method, args, type(exc).__name__)
            return None

    def _free_hours(self, provider_id: str, centre_id: str | None) -> float | None:
        """The provider's free hours a week as matching counts them; None (terms taken unchecked) when matching
        cannot tell."""
        answer = self._ask_matching("free_capacity", provider_id, centre_id)
        return None if answer is None else float(answer["free_hours_per_week"])

    # -- tenants ---------------------------------------------------------------------------------------------

    @rpc
    def create_tenant(self, tenant: dict) -> dict:
        fields = schemas.load_new_tenant(tenant)

        def work(uow: UnitOfWork) -> tuple[dict, str]:
            now = repository.current_time()
            created = domain.new_tenant(tenant_id=repository.new_id("ten"), fields=fields, now=now)
            api_key, _ = KeyRing(uow.db, apikeys.CLIENT, uow.session).first_key(created["id"], apikeys.OWNER_ROLE,
                                                                              None, now)
            Repository.of(uow).insert_tenant(created, apikeys.digest(api_key))
            wire = schemas.tenant_to_wire(created)
            uow.emit(events.TENANT_REGISTERED, subject=created["id"], data=events.tenant_registered(wire),
                     lane=lane_of(segment=created["segment"]), tenant=created["id"])
            return wire, api_key

        wire, api_key = self.store.transact(work)
        return {"tenant": wire, "api_key": api_key}

    @rpc
    def get_tenant(self, tenant_id: str) -> dict:
        return schemas.tenant_to_wire(_tenant(Repository(self.store.db), tenant_id))

    @rpc
    def authenticate(self, api_key: str) -> dict | None:
        record = KeyRing(self.store.db, apikeys.CLIENT).live(api_key, repository.current_time())
        return {"tenant_id": record["owner_id"], "role": record["role"], "key_id": record["_id"]} if record else None

    # -- a tenant's API keys: issued, rotated and revoked by its owner (or an operator) -------------------------

    @rpc
    def list_keys(self, tenant_id: str) -> dict:
        ring = KeyRing(self.store.db, apikeys.CLIENT)
        _tenant(Repository(self.store.db), tenant_id)
        now = repository.current_time()
        return {"items": [apikeys.to_wire(record, now) for record in ring.of(tenant_id)]}

    @rpc
    def create_key(self, tenant_id: str, role: str, label: str | None = None) -> dict:
        if role not in apikeys.CLIENT_ROLES:
            raise ValidationFailed("Unknown role.", {"role": [f"Must be one of {', '.join(apikeys.CLIENT_ROLES)}."]})
        return self._keys(tenant_id, lambda ring, now: ring.issue(tenant_id, role, label, now))

    @rpc
    def rotate_key(self, tenant_id: str, key_id: str, grace_seconds: int) -> dict:
        return self._keys(tenant_id, lambda ring, now: ring.rotate(tenant_id, key_id, grace_seconds, now))

    @rpc
    def revoke_key(self, tenant_id: str, key_id: str) -> dict:
        return self._keys(tenant_id, lambda ring, now: (None, ring.revoke(tenant_id, key_id, now)))["key"]

    def _keys(self, tenant_id: str, change) -> dict:
        def work(uow: UnitOfWork) -> dict:
            _tenant(Repository.of(uow), tenant_id)
            return apikeys.apply(uow, apikeys.CLIENT, change, apikeys.max_live_keys(self.config))

        return self.store.transact(work)

    # -- postings --------------------------------------------------------------------------------------------

    @rpc
    def create_posting(self, tenant_id: str, posting: dict, idempotency_key: str | None = None,
                       publish: bool = False, confirm_core: bool = False) -> dict:
        """A draft; with ``publish``, created and published in one transaction (a posting that cannot be published
        is not created either)."""
        fields = schemas.load_new_posting(posting)
        confirmed = schemas.load_confirm_core(confirm_core)
        key = idempotency.load_key(idempotency_key)
        fingerprint = domain.request_fingerprint(posting) if key else None

        def earlier(repo: Repository) -> dict | None:
            found = repo.posting_by_idempotency_key(tenant_id, key) if key else None
            if found is None:
                return None
            existing, earlier_fingerprint = found
            if earlier_fingerprint != fingerprint:
                raise Conflict("This idempotency key was already used for a different posting.",
                               details={"idempotency_key": ["Already used with a different request."]})
            return existing

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            tenant = _tenant(repo, tenant_id)
            created = earlier(repo)
            if created is None:
                created = domain.new_posting(posting_id=repository.new_id("pst"), tenant=tenant,
                                             fields=fields, now=repository.current_time())
                repo.insert_posting(created, idempotency_key=key, request_fingerprint=fingerprint)
            if publish and created["status"] == domain.Status.DRAFT:
                return _publish(uow, repo, tenant, created, confirmed)
            # A draft is private to its tenant: creating one tells nobody.
            return schemas.posting_to_wire(created)

        try:
            return self.store.transact(work)
        except Exception as exc:
            # The same key arrived twice at once and the other request committed first: answer with that.
            if not (key and is_duplicate(exc)):
                raise
            return schemas.posting_to_wire(earlier(Repository(self.store.db)))

    @rpc
    def update_posting(self, tenant_id: str, posting_id: str, changes: dict) -> dict:
        loaded = schemas.load_posting_changes(changes)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            tenant = _tenant(repo, tenant_id)
            before = _posting(repo, tenant_id, posting_id)
            after, changed = domain.edit(before, loaded, tenant, repository.current_time())
            if not changed:
                return schemas.posting_to_wire(before)
            meaning = domain.changes_what_terms_mean(before, after)
            negotiating = [p["id"] for p in NegotiationRepository.of(uow).proposals_of_posting(before["id"])
                           if p["status"] in domain.OPEN_PROPOSAL_STATUSES]
            if meaning and negotiating:
                raise Conflict("Proposals are being negotiated on this posting's engagement and currency; they "
                               "cannot change under them.", details={name: [f"Negotiating: {', '.join(negotiating)}."]
                                                                       for name in meaning})
            _store_new_version(repo, before, after)
            wire = schemas.posting_to_wire(after)
            if after["status"] == domain.Status.OPEN:
                uow.emit(events.POSTING_UPDATED, subject=after["id"],
                         data=events.posting_updated(wire, changed),
                         lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
            return wire

        return self.store.transact(work)

    @rpc
    def publish_posting(self, tenant_id: str, posting_id: str, confirm_core: bool = False) -> dict:
        confirmed = schemas.load_confirm_core(confirm_core)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            tenant = _tenant(repo, tenant_id)
            before = _posting(repo, tenant_id, posting_id)
            if before["status"] == domain.Status.OPEN:
                # Already done: an RPC redelivered after a crash, or a client retry. Same answer, no second event.
                return schemas.posting_to_wire(before)
            return _publish(uow, repo, tenant, before, confirmed)

        return self.store.transact(work)

    @rpc
    def cancel_posting(self, tenant_id: str, posting_id: str, reason: str) -> dict:
        why = schemas.load_cancellation_reason(reason)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            tenant = _tenant(repo, tenant_id)
            before = _posting(repo, tenant_id, posting_id)
            if before["status"] == domain.Status.CANCELLED:
                return schemas.posting_to_wire(before)  # already done (a retry): same answer, no second event
            now = repository.current_time()
            after = domain.cancel(before, reason=why, now=now)
            _store_new_version(repo, before, after)
            _close_negotiations(NegotiationRepository.of(uow), after["id"], keep=None,
                                reason="The client cancelled the posting.", now=now)
            wire = schemas.posting_to_wire(after)
            # Only providers who could see the posting need to hear that it is gone.
            if before["status"] == domain.Status.OPEN:
                uow.emit(events.POSTING_CANCELLED, subject=after["id"], data=events.posting_cancelled(wire),
                         lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
            return wire

        return self.store.transact(work)

    @rpc
    def get_posting(self, tenant_id: str, posting_id: str) -> dict:
        return schemas.posting_to_wire(_posting(Repository(self.store.db), tenant_id, posting_id))

    @rpc
    def list_postings(self, tenant_id: str, status: str | None = None, limit: int = schemas.DEFAULT_PAGE,
                      cursor: str | None = None) -> dict:
        status, limit, after = schemas.load_page(status, limit, cursor)
        repo = Repository(self.store.db)
        _tenant(repo, tenant_id)
        # One extra row tells whether another page exists without a second query.
        rows = repo.postings_page(tenant_id, status=status, after=after, limit=limit + 1)
        page = rows[:limit]
        next_cursor = page[-1]["id"] if len(rows) > limit else None
        return {"items": [schemas.posting_to_wire(row) for row in page], "next_cursor": next_cursor}

    # -- shortlists (from matching) ---------------------------------------------------------------------------

    @subscribe(events.MATCHING, events.MATCHES_PROPOSED)
    def on_matches_proposed(self, uow: UnitOfWork, envelope: dict) -> None:
        self._keep_latest_shortlist(uow, envelope["data"])

    @subscribe(events.MATCHING, events.SHORTLIST_UPDATED)
    def on_shortlist_updated(self, uow: UnitOfWork, envelope: dict) -> None:
        self._keep_latest_shortlist(uow, envelope["data"])

    @staticmethod
    def _keep_latest_shortlist(uow: UnitOfWork, data: dict) -> None:
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

    # -- invitations ---------------------------------------------------------------------------------------------

    @rpc
    def invite_provider(self, tenant_id: str, posting_id: str, provider_id: str) -> dict:
        provider_id = schemas.load_identifier(provider_id, "provider_id", "prv_")
        # Postings' copy of the shortlist follows matching's events, a moment behind what matching answers: when
        # the copy does not have the provider yet, matching is asked for the shortlist it shows now.
        kept = NegotiationRepository(self.store.db).shortlist(posting_id) if isinstance(posting_id, str) else None
        current = None
        if domain.shortlist_candidate(kept, provider_id) is None:
            current = self._ask_matching("get_shortlist", tenant_id, posting_id)

        def work(uow: UnitOfWork) -> dict:
            repo = NegotiationRepository.of(uow)
            posting = _posting(repo, tenant_id, posting_id)
            existing = repo.invitation_of(posting["id"], provider_id)
            if existing is not None:
                return schemas.invitation_to_wire(existing)  # inviting twice is one invitation
            if current is not None and current["tenant_id"] == posting["tenant_id"]:
                self._keep_latest_shortlist(uow, current)
            shortlist = repo.shortlist(posting["id"])
            if shortlist is not None and shortlist["tenant_id"] != posting["tenant_id"]:
                shortlist = None
            invitation = domain.invite(posting, shortlist, provider_id, invitation_id=repository.new_id("inv"),
                                       now=repository.current_time())
            repo.insert_invitation(invitation)
            return schemas.invitation_to_wire(invitation)

        try:
            return self.store.transact(work)
        except Exception as exc:
            if not is_duplicate(exc):
                raise
            # The same invitation was sent twice at once and the other request committed first.
            found = NegotiationRepository(self.store.db).invitation_of(posting_id, provider_id)
            return schemas.invitation_to_wire(found)

    @rpc
    def list_invitations(self, provider_id: str, status: str | None = None, limit: int = schemas.DEFAULT_PAGE,
                         cursor: str | None = None) -> dict:
        status, limit, after = schemas.load_invitation_page(status, limit, cursor)
        rows = NegotiationRepository(self.store.db).invitations_page(provider_id, status=status, after=after,
                                                                     limit=limit + 1)
        page = rows[:limit]
        next_cursor = page[-1]["id"] if len(rows) > limit else None
        return {"items": [schemas.invitation_to_wire(row) for row in page], "next_cursor": next_cursor}

    @rpc
    def get_invitation(self, provider_id: str, invitation_id: str) -> dict:
        return schemas.invitation_to_wire(_invitation_for(NegotiationRepository(self.store.db), provider_id,
                                                          invitation_id))

    @rpc
    def accept_invitation(self, provider_id: str, invitation_id: str) -> dict:
        return self._answer_invitation(provider_id, invitation_id, accept=True, reason=None)

    @rpc
    def decline_invitation(self, provider_id: str, invitation_id: str, reason: str | None = None) -> dict:
        return self._answer_invitation(provider_id, invitation_id, accept=False,
                                       reason=schemas.load_decline_reason(reason))

    def _answer_invitation(self, provider_id: str, invitation_id: str, *, accept: bool,
                           reason: str | None) -> dict:
        def work(uow: UnitOfWork) -> dict:
            repo = NegotiationRepository.of(uow)
            before = _invitation_for(repo, provider_id, invitation_id)
            posting = _posting(repo, before["tenant_id"], before["posting_id"])
            after, changed = domain.answer_invitation(before, posting, accept=accept, reason=reason,
                                                      now=repository.current_time())
            if changed:
                _store_invitation(repo, before, after)
            return schemas.invitation_to_wire(after)

        return self.store.transact(work)

    # -- proposals and negotiation ---------------------------------------------------------------------------

    @rpc
    def submit_proposal(self, provider_id: str, invitation_id: str, terms: dict, note: str | None = None) -> dict:
        offered, note = schemas.load_offer(terms, note)
        invited = _invitation_for(NegotiationRepository(self.store.db), provider_id, invitation_id)
        free = self._free_hours(provider_id, invited["centre_id"])

        def work(uow: UnitOfWork) -> dict:
            repo = NegotiationRepository.of(uow)
            invitation = _invitation_for(repo, provider_id, invitation_id)
            tenant = _tenant(repo, invitation["tenant_id"])
            posting = _posting(repo, tenant["id"], invitation["posting_id"])
            domain.ensure_within_capacity(offered, free, posting.get("seats", 1))
            now = repository.current_time()
            proposal = domain.open_proposal(invitation, posting, terms=offered, note=note,
                                            proposal_id=repository.new_id("prp"), now=now)
            repo.insert_proposal(proposal)
            _store_invitation(repo, invitation, {**invitation, "proposal_id": proposal["id"],
                                                 "version": invitation["version"] + 1})
            wire = schemas.proposal_to_wire(proposal)
            self._emit_submitted(uow, tenant, wire)
            return wire

        return self.store.transact(work)

    @rpc
    def get_proposal(self, party: dict, proposal_id: str) -> dict:
        kind, party_id = schemas.load_party(party)
        return schemas.proposal_to_wire(_proposal_for(NegotiationRepository(self.store.db), kind, party_id,
                                                      proposal_id))

    @rpc
    def list_proposals(self, tenant_id: str, posting_id: str) -> dict:
        repo = NegotiationRepository(self.store.db)
        posting = _posting(repo, tenant_id, posting_id)
        # A posting's proposals are bounded by the providers its client invited: one page.
        return {"items": [schemas.proposal_to_wire(p) for p in repo.proposals_of_posting(posting["id"])]}

    @rpc
    def counter_proposal(self, party: dict, proposal_id: str, terms: dict, note: str | None = None) -> dict:
        kind, party_id = schemas.load_party(party)
        offered, note = schemas.load_offer(terms, note)
        current = _proposal_for(NegotiationRepository(self.store.db), kind, party_id, proposal_id)
        free = self._free_hours(current["provider_id"], current["centre_id"])

        def work(uow: UnitOfWork) -> dict:
            repo = NegotiationRepository.of(uow)
            before = _proposal_for(repo, kind, party_id, proposal_id)
            tenant = _tenant(repo, before["tenant_id"])
            posting = _posting(repo, tenant["id"], before["posting_id"])
            domain.ensure_within_capacity(offered, free, posting.get("seats", 1))
            after = domain.counter(before, posting, kind, terms=offered, note=note,
                                   actor=f"{kind.value}:{party_id}", now=repository.current_time())
            _store_proposal(repo, before, after)
            wire = schemas.proposal_to_wire(after)
            if kind is domain.Party.PROVIDER:
                self._emit_submitted(uow, tenant, wire)
            return wire

        return self.store.transact(work)

    @rpc
    def accept_proposal(self, party: dict, proposal_id: str) -> dict:
        kind, party_id = schemas.load_party(party)

        def work(uow: UnitOfWork) -> dict:
            repo = NegotiationRepository.of(uow)
            before = _proposal_for(repo, kind, party_id, proposal_id)
            posting = _posting(repo, before["tenant_id"], before["posting_id"])
            after, changed = domain.accept(before, posting, kind, actor=f"{kind.value}:{party_id}",
                                           now=repository.current_time())
            if changed:
                _store_proposal(repo, before, after)
            return schemas.proposal_to_wire(after)

        return self.store.transact(work)

    @rpc
    def award_posting(self, tenant_id: str, posting_id: str, proposal_id: str) -> dict:
        proposal_id = schemas.load_identifier(proposal_id, "proposal_id", "prp_")

        def work(uow: UnitOfWork) -> dict:
            repo = NegotiationRepository.of(uow)
            tenant = _tenant(repo, tenant_id)
            before = _posting(repo, tenant_id, posting_id)
            proposal = _proposal_for(repo, domain.Party.CLIENT, tenant_id, proposal_id)
            if before["status"] == domain.Status.AWARDED and before["awarded_proposal_id"] == proposal["id"]:
                return schemas.posting_to_wire(before)  # a retry: same answer, no second event
            now = repository.current_time()
            after, awarded = domain.award(before, proposal, now=now,
                                          max_backdate_days=int(self.config.get("CONTRACTING_MAX_BACKDATE_DAYS", 31)))
            _store_new_version(repo, before, after)
            _store_proposal(repo, proposal, awarded)
            _close_negotiations(repo, after["id"], keep=awarded["id"],
                                reason="The client awarded the posting to another proposal.", now=now)
            wire = schemas.posting_to_wire(after)
            start = domain.agreed_start_date(after, awarded["terms"]).isoformat()
            uow.emit(events.POSTING_AWARDED, subject=after["id"],
                     data=events.posting_awarded(wire, tenant, schemas.proposal_to_wire(awarded), start),
                     lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])
            return wire

        return self.store.transact(work)

    @staticmethod
    def _emit_submitted(uow: UnitOfWork, tenant: dict, proposal: dict) -> None:
        uow.emit(events.PROPOSAL_SUBMITTED, subject=proposal["id"],
                 data=events.proposal_submitted(proposal, proposal["history"][-1]),
                 lane=lane_of(segment=tenant["segment"]), tenant=tenant["id"])

    @rpc
    def health(self) -> dict:
        self.store.db.command("ping")
        return {"database": "ok", "outbox_backlog": pending_count(self.store.db)}
