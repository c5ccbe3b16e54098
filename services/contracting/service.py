"""The contracting service: contracts from awards, signatures and amendments, SLAs measured and evaluated,
governance (reviews, issues and their escalation), completion and termination.

Entrypoints only: each decodes its input (``schemas``), calls one use case of ``handlers`` (a change in one
transaction with its events, ``store.transact``; the outbox relay publishes them afterwards) and answers. Rules live
in ``domain``, storage in ``repository``, event keys and payloads in ``events``. A contract is visible to its two
parties only: to anyone else it does not exist (404).
"""

from __future__ import annotations

from typing import Any

from shared.runtime.messaging import subscribe
from shared.runtime.persistence import Database, UnitOfWork
from shared.runtime.rpc import rpc
from shared.runtime.tracing import Tracing

from . import events, handlers, repository, schemas
from .dependencies import Settings, configured_timer
from .repository import Repository

TIMER_BATCH = 100


class ContractingService:
    name = "contracting"

    store = Database(ensure_indexes=repository.ensure_indexes)
    settings = Settings()
    correlation_id = Tracing()

    # -- from the award ----------------------------------------------------------------------------------------

    @subscribe(events.POSTINGS, events.POSTING_AWARDED)
    def on_posting_awarded(self, uow: UnitOfWork, envelope: dict) -> None:
        handlers.contract_from_award(uow, envelope["data"])

    # -- reading -----------------------------------------------------------------------------------------------

    @rpc
    def get_contract(self, party: dict, contract_id: str) -> dict:
        return handlers.get_contract(Repository(self.store.db), schemas.load_party(party), contract_id)

    @rpc
    def list_contracts(self, party: dict, status: str | None = None, limit: int = schemas.DEFAULT_PAGE,
                       cursor: str | None = None) -> dict:
        who = schemas.load_party(party)
        status, limit, after = schemas.load_page(status, limit, cursor)
        return handlers.list_contracts(Repository(self.store.db), who, status, limit, after)

    # -- drafting and signing ----------------------------------------------------------------------------------

    @rpc
    def update_contract(self, party: dict, contract_id: str, changes: dict) -> dict:
        loaded, who = schemas.load_changes(changes), schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.update_contract(uow, who, contract_id, loaded,
                                                                        self.settings))

    @rpc
    def sign_contract(self, party: dict, contract_id: str, signature: dict) -> dict:
        signed_hash, who = schemas.load_signature(signature), schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.sign_contract(uow, who, contract_id, signed_hash,
                                                                      self.settings))

    # -- amendments --------------------------------------------------------------------------------------------

    @rpc
    def propose_amendment(self, party: dict, contract_id: str, amendment: dict) -> dict:
        loaded, who = schemas.load_amendment(amendment), schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.propose_amendment(uow, who, contract_id, loaded))

    @rpc
    def sign_amendment(self, party: dict, contract_id: str, amendment_id: str, signature: dict) -> dict:
        signed_hash, who = schemas.load_signature(signature), schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.sign_amendment(uow, who, contract_id, amendment_id,
                                                                       signed_hash, self.settings))

    @rpc
    def withdraw_amendment(self, party: dict, contract_id: str, amendment_id: str) -> dict:
        who = schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.withdraw_amendment(uow, who, contract_id, amendment_id))

    # -- SLA measurements and evaluation -----------------------------------------------------------------------

    @rpc
    def submit_measurements(self, party: dict, contract_id: str, payload: Any,
                            idempotency_key: str | None = None) -> dict:
        who, items = schemas.load_party(party), schemas.load_measurements(payload, idempotency_key)
        return self.store.transact_keyed(lambda uow: handlers.submit_measurements(uow, who, contract_id, items))

    @configured_timer("CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS", 60.0)
    def evaluate_slas(self) -> None:
        """Evaluates every window that fell due, once, and announces whether its SLA was met or breached."""
        handlers.evaluate_due_slas(self.store.db, self.store.transact, repository.current_time(), self.settings,
                                   TIMER_BATCH)

    @rpc
    def close_sla_window(self, party: dict, contract_id: str, sla_id: str, window: dict) -> dict:
        who, start = schemas.load_party(party), schemas.load_window(window)
        return self.store.transact(lambda uow: handlers.close_sla_window(uow, who, contract_id, sla_id, start,
                                                                         self.settings))

    # -- governance --------------------------------------------------------------------------------------------

    @rpc
    def record_review(self, party: dict, contract_id: str, review: dict) -> dict:
        who, fields = schemas.load_party(party), schemas.load_review(review)
        return self.store.transact(lambda uow: handlers.record_review(uow, who, contract_id, fields))

    @rpc
    def raise_issue(self, party: dict, contract_id: str, issue: dict) -> dict:
        who, fields = schemas.load_party(party), schemas.load_issue(issue)
        return self.store.transact(lambda uow: handlers.raise_issue(uow, who, contract_id, fields))

    @rpc
    def resolve_issue(self, party: dict, contract_id: str, issue_id: str, resolution: dict) -> dict:
        who, text = schemas.load_party(party), schemas.load_resolution(resolution)
        return self.store.transact(lambda uow: handlers.resolve_issue(uow, who, contract_id, issue_id, text))

    @configured_timer("CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS", 60.0)
    def await_fixed_price_completion(self) -> None:
        """Fixed-price contracts past their end date move on to completion_pending (the client completes them)."""
        handlers.await_fixed_price_completion(self.store.db, self.store.transact, repository.current_time(),
                                              TIMER_BATCH)

    @configured_timer("CONTRACTING_ESCALATION_INTERVAL_SECONDS", 60.0)
    def escalate_issues(self) -> None:
        """Open issues past their due time climb one escalation level of the contract's governance plan."""
        handlers.escalate_due_issues(self.store.db, self.store.transact, repository.current_time(), TIMER_BATCH)

    @rpc
    def governance_summary(self, party: dict, contract_id: str) -> dict:
        """SLA compliance window by window, credits owed, reviews (last, next due, overdue) and issues."""
        return handlers.governance_summary(Repository(self.store.db), schemas.load_party(party), contract_id)

    # -- ending ------------------------------------------------------------------------------------------------

    @rpc
    def complete_contract(self, party: dict, contract_id: str, rating: dict) -> dict:
        loaded, who = schemas.load_rating(rating), schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.complete_contract(uow, who, contract_id, loaded))

    @rpc
    def terminate_contract(self, party: dict, contract_id: str, termination: dict) -> dict:
        loaded, who = schemas.load_termination(termination), schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.terminate_contract(uow, who, contract_id, loaded,
                                                                           self.settings))

    @rpc
    def rate_client(self, party: dict, contract_id: str, rating: dict) -> dict:
        loaded, who = schemas.load_rating(rating), schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.rate_client(uow, who, contract_id, loaded))

    @rpc
    def answer_rating(self, party: dict, contract_id: str, answer: dict) -> dict:
        text, who = schemas.load_answer(answer), schemas.load_party(party)
        return self.store.transact(lambda uow: handlers.answer_rating(uow, who, contract_id, text))

    @rpc
    def health(self) -> dict:
        return handlers.health(Repository(self.store.db))
