"""Contracting's use cases: one plain function each, taking a unit of work (a change, committed with its events in
one transaction) or a repository (a query), and the input the entrypoint decoded.

They ask ``domain`` for the rules and ``repository`` for the data, and record the events of ``events``. A contract
is visible to its two parties only: to anyone else it does not exist (404).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo.database import Database as MongoDatabase

from shared.runtime.persistence import UnitOfWork
from shared.vocabulary.errors import Conflict, NotFound
from shared.vocabulary.fields import jsonable
from shared.vocabulary.idempotency import claim_batch
from shared.vocabulary.terms import lane_of

from . import domain, events, repository, schemas
from .dependencies import ContractingSettings
from .domain import Party
from .repository import Repository

log = logging.getLogger(__name__)

MEASUREMENT_CONTENT = ("sla_id", "value", "measured_at", "units")  # what makes a resubmitted key the same one

Acting = tuple[Party, str]  # (client / provider, its id)
Transact = Callable[[Callable[[UnitOfWork], Any]], Any]


def _contract_for(repo: Repository, party: Acting, contract_id: Any) -> dict:
    return domain.visible(repo.contract(contract_id), *party, contract_id)


def _store(repo: Repository, before: dict, after: dict) -> None:
    if not repo.replace_contract(after, expected_revision=before["revision"]):
        raise Conflict("The contract was changed by someone else meanwhile; reload it and try again.")


def _emit(uow: UnitOfWork, routing_key: str, contract: dict, data: dict) -> None:
    uow.emit(routing_key, subject=contract["id"], data=data, lane=contract["lane"], tenant=contract["tenant_id"])


def _new_sla_id() -> str:
    return repository.new_id("sla")


def _one_by_one(transact: Transact, ids: list[str], step: Callable[[UnitOfWork, str], Any], what: str) -> None:
    """``step`` for each id in a transaction of its own, again while it answers True (more to do); a failure defers
    that id to the next tick (another replica got there first, or it changed meanwhile, or a passing failure)."""
    for record_id in ids:
        try:
            while transact(lambda uow, rid=record_id: step(uow, rid)):
                pass
        except Exception as exc:
            log.warning("%s of %s deferred: %s", what, record_id, exc)


# -- from the award ------------------------------------------------------------------------------------------------


def contract_from_award(uow: UnitOfWork, award: dict) -> None:
    repo = Repository.of(uow)
    if repo.contract_of_posting(award["posting"]["id"]) is not None:
        return  # the same award published twice (a new event id): one contract
    repo.insert_contract(domain.draft_from_award(
        award, contract_id=repository.new_id("ctr"), sla_ids=[_new_sla_id() for _ in award["sla_requirements"]],
        lane=lane_of(segment=award["client"]["segment"]), now=repository.current_time()))


# -- reading -------------------------------------------------------------------------------------------------------


def get_contract(repo: Repository, party: Acting, contract_id: str) -> dict:
    return schemas.contract_to_wire(_contract_for(repo, party, contract_id))


def list_contracts(repo: Repository, party: Acting, status: str | None, limit: int, after: str | None) -> dict:
    kind, party_id = party
    field = "tenant_id" if kind is Party.CLIENT else "provider_id"
    rows = repo.contracts_of(field, party_id, status=status, after=after, limit=limit + 1)
    page = rows[:limit]
    return {"items": [schemas.contract_to_wire(row) for row in page],
            "next_cursor": page[-1]["id"] if len(rows) > limit else None}


def _change(uow: UnitOfWork, party: Acting, contract_id: str, change: Callable[[dict, Party, datetime], dict],
            announce: Callable[[UnitOfWork, dict], None] | None = None) -> dict:
    """One change of one contract by one of its parties: ``change(before, party, now)`` gives the contract after it
    (the same object when nothing changed); it is stored and ``announce`` emits its events."""
    repo = Repository.of(uow)
    before = _contract_for(repo, party, contract_id)
    after = change(before, party[0], repository.current_time())
    if after is not before:
        _store(repo, before, after)
        if announce is not None:
            announce(uow, after)
    return schemas.contract_to_wire(after)


# -- drafting and signing ------------------------------------------------------------------------------------------


def update_contract(uow: UnitOfWork, party: Acting, contract_id: str, loaded: dict,
                    settings: ContractingSettings) -> dict:
    def change(before: dict, kind: Party, now: datetime) -> dict:
        domain.only(kind, Party.CLIENT, "edit the draft contract")
        return domain.edit(before, loaded, new_sla_id=_new_sla_id, now=now,
                           max_backdate_days=settings.max_backdate_days)[0]

    return _change(uow, party, contract_id, change)


def sign_contract(uow: UnitOfWork, party: Acting, contract_id: str, signed_hash: str,
                  settings: ContractingSettings) -> dict:
    def change(before: dict, kind: Party, now: datetime) -> dict:
        return domain.sign(before, kind, signed_hash, now=now, grace=settings.sla_grace)[0]

    def announce(uow: UnitOfWork, after: dict) -> None:
        _emit(uow, events.CONTRACT_SIGNED, after,
              jsonable(events.contract_signed(after, after["signatures"][-1], None)))
        if after["status"] == domain.Status.ACTIVE:
            _emit(uow, events.CONTRACT_ACTIVATED, after, events.contract_activated(schemas.contract_to_event(after)))

    return _change(uow, party, contract_id, change, announce)


# -- amendments ----------------------------------------------------------------------------------------------------


def propose_amendment(uow: UnitOfWork, party: Acting, contract_id: str, loaded: dict) -> dict:
    def change(before: dict, kind: Party, now: datetime) -> dict:
        return domain.propose_amendment(before, kind, loaded["changes"], reason=loaded["reason"],
                                        amendment_id=repository.new_id("amd"), new_sla_id=_new_sla_id, now=now,
                                        effective_date=loaded.get("effective_date"))

    return _change(uow, party, contract_id, change)


def sign_amendment(uow: UnitOfWork, party: Acting, contract_id: str, amendment_id: str, signed_hash: str,
                   settings: ContractingSettings) -> dict:
    applied: list[dict] = []

    def change(before: dict, kind: Party, now: datetime) -> dict:
        after, done = domain.sign_amendment(before, kind, amendment_id, signed_hash, now=now, grace=settings.sla_grace)
        applied[:] = [done] if done else []
        return after

    def announce(uow: UnitOfWork, after: dict) -> None:
        signatures = applied[0]["signatures"] if applied else after["pending_amendment"]["signatures"]
        _emit(uow, events.CONTRACT_SIGNED, after,
              jsonable(events.contract_signed(after, signatures[-1], amendment_id)))
        if applied:
            _emit(uow, events.CONTRACT_AMENDED, after,
                  events.contract_amended(schemas.contract_to_event(after), jsonable(applied[0])))

    return _change(uow, party, contract_id, change, announce)


def withdraw_amendment(uow: UnitOfWork, party: Acting, contract_id: str, amendment_id: str) -> dict:
    """Either party ends a pending amendment: the proposer withdraws it, the other side declines it; it stays in
    the contract's history."""
    return _change(uow, party, contract_id, lambda before, kind, now: domain.withdraw_amendment(
        before, amendment_id, now=now, party=kind))


# -- SLA measurements and evaluation -------------------------------------------------------------------------------


def submit_measurements(uow: UnitOfWork, party: Acting, contract_id: str, items: list[dict]) -> dict:
    """One measurement or a batch, each with its idempotency key. A key seen before with the same content is a
    duplicate (not recorded again); with other content the whole batch is refused. A measurement for a window
    already evaluated is recorded and flagged ``late`` (it does not change that window's outcome)."""
    kind = party[0]
    repo = Repository.of(uow)
    contract = _contract_for(repo, party, contract_id)
    now = repository.current_time()
    domain.require(contract, "measure", now.date())
    slas = {sla["id"]: sla for sla in contract["slas"]}
    claims = claim_batch(items, lambda key: repo.measurement_by_key(contract["id"], kind.value, key),
                         MEASUREMENT_CONTENT, "measurement",
                         lambda item: domain.check_measurement(contract, set(slas), item, now),
                         "Some measurements cannot be recorded; none were.")
    out = []
    evaluated: dict[str, bool] = {}  # per window: this transaction does not evaluate one, read it once
    for item, earlier in claims:
        status = "duplicate"
        if earlier is None:
            sla = slas[item["sla_id"]]
            start, end = domain.evaluation_window(contract, sla, item["measured_at"])
            window_id = repository.window_id(sla["id"], start)
            if window_id not in evaluated:
                window = repo.window(window_id)
                evaluated[window_id] = window is not None and window.get("evaluated_at") is not None
            late = evaluated[window_id] or domain.measured_late(contract, sla["id"], start, item["measured_at"])
            earlier = {**item, "id": repository.new_id("msr"), "contract_id": contract["id"],
                       "window_id": window_id, "window_start": start, "window_end": end, "late": late,
                       "submitted_by": kind.value, "recorded_at": now}
            repo.record_measurement(earlier, {"id": window_id, "contract_id": contract["id"],
                                              "sla_id": sla["id"], "start": start, "end": end})
            status = "late" if late else "recorded"
        out.append({"key": item["key"], "sla_id": earlier["sla_id"], "value": earlier["value"],
                    "measured_at": earlier["measured_at"], "status": status,
                    "window": {"start": earlier["window_start"], "end": earlier["window_end"]}})
    counts = {s: sum(1 for m in out if m["status"] == s) for s in ("recorded", "late", "duplicate")}
    return jsonable({"contract_id": contract["id"], **counts, "measurements": out})


def evaluate_due_slas(db: MongoDatabase, transact: Transact, now: datetime, settings: ContractingSettings,
                      batch: int) -> None:
    """Every window that fell due is evaluated once, a window a transaction, and its outcome announced."""
    _one_by_one(transact, Repository(db).contracts_due_for_evaluation(now, batch),
                lambda uow, contract_id: evaluate_next_window(uow, contract_id, now, settings), "SLA evaluation")


def evaluate_next_window(uow: UnitOfWork, contract_id: str, now: datetime, settings: ContractingSettings) -> bool:
    """Evaluates the contract's next due window (True) or moves its next evaluation time on (False: none due)."""
    repo = Repository.of(uow)
    contract = repo.contract(contract_id)
    if contract is None or contract["activated_at"] is None:
        return False
    grace = settings.sla_grace
    due = domain.due_windows(contract, now, grace)
    if not due:
        after = {**contract, "next_evaluation_at": domain.next_evaluation_at(contract, grace),
                 "revision": contract["revision"] + 1}
        if after["next_evaluation_at"] != contract["next_evaluation_at"]:
            _store(repo, contract, after)
        return False
    sla, start, end = due[0]
    window_id = repository.window_id(sla["id"], start)
    window = repo.window(window_id)
    if window is None or window.get("evaluated_at") is None:
        outcome = domain.evaluate(contract, sla, start, end,
                                  repo.counted_measurements(contract["id"], sla["id"], start, end), now)
        repo.close_window({"id": window_id, "contract_id": contract["id"], "sla_id": sla["id"], "start": start,
                           "end": end}, outcome)
        routing_key, data = events.sla_evaluated(jsonable(outcome))
        _emit(uow, routing_key, contract, data)
    _store(repo, contract, domain.advance_cursor(contract, sla["id"], end, grace))
    return True


def close_sla_window(uow: UnitOfWork, party: Acting, contract_id: str, sla_id: str, start: datetime,
                     settings: ContractingSettings) -> dict:
    """A party confirms that an ended window's measurements are complete. Once both have, the grace period serves
    nothing: the window is evaluated now (in order: after any earlier window still open). For a window already
    evaluated the answer is its evaluation."""
    repo = Repository.of(uow)
    before = _contract_for(repo, party, contract_id)
    window_id = repository.window_id(sla_id, start)
    evaluated = repo.window(window_id)
    if evaluated is None or evaluated["contract_id"] != before["id"] or evaluated.get("evaluated_at") is None:
        now = repository.current_time()
        after = domain.confirm_window_closed(before, party[0], sla_id, start, now=now, grace=settings.sla_grace)
        if after is not before:
            _store(repo, before, after)
            if domain.window_closed_at(after, sla_id, start) is not None:
                while evaluate_next_window(uow, after["id"], now, settings):
                    pass
        evaluated = repo.window(window_id)
    contract = repo.contract(before["id"])
    closure = domain.window_closure(contract, sla_id, start)
    end = evaluated["end"] if evaluated else domain.evaluation_window(
        contract, next(s for s in contract["slas"] if s["id"] == sla_id), start)[1]
    return jsonable({
        "contract_id": contract["id"], "sla_id": sla_id, "window": {"start": start, "end": end},
        "confirmed_by": closure["confirmed"] if closure else {},
        "closed_at": closure["closed_at"] if closure else None,
        "evaluation": evaluated.get("outcome") if evaluated else None})


# -- governance ----------------------------------------------------------------------------------------------------


def record_review(uow: UnitOfWork, party: Acting, contract_id: str, fields: dict) -> dict:
    repo = Repository.of(uow)
    contract = _contract_for(repo, party, contract_id)
    domain.only(party[0], Party.CLIENT, "record a performance review")
    recorded = domain.new_review(contract, fields, review_id=repository.new_id("rev"),
                                 reviews_recorded=len(repo.reviews_of(contract["id"])),
                                 now=repository.current_time())
    repo.insert_review(recorded)
    return schemas.review_to_wire(recorded)


def raise_issue(uow: UnitOfWork, party: Acting, contract_id: str, fields: dict) -> dict:
    repo = Repository.of(uow)
    contract = _contract_for(repo, party, contract_id)
    raised = domain.new_issue(contract, party[0], fields, issue_id=repository.new_id("iss"),
                              now=repository.current_time())
    repo.insert_issue(raised)
    return schemas.issue_to_wire(raised)


def resolve_issue(uow: UnitOfWork, party: Acting, contract_id: str, issue_id: str, text: str) -> dict:
    repo = Repository.of(uow)
    contract = _contract_for(repo, party, contract_id)
    before = repo.issue(issue_id)
    if before is None or before["contract_id"] != contract["id"]:
        raise NotFound(f"Issue {issue_id} not found.")
    after, changed = domain.resolve_issue(before, party[0], text, now=repository.current_time())
    if changed and not repo.replace_issue(before, after):
        raise Conflict("The issue changed meanwhile (it escalated); reload it and try again.")
    return schemas.issue_to_wire(after)


def await_fixed_price_completion(db: MongoDatabase, transact: Transact, now: datetime, batch: int) -> None:
    """Fixed-price contracts past their end date move on to completion_pending (the client completes them)."""
    _one_by_one(transact, Repository(db).fixed_price_past_end(now.date().isoformat(), batch),
                lambda uow, contract_id: await_completion(uow, contract_id, now), "moving to completion_pending")


def await_completion(uow: UnitOfWork, contract_id: str, now: datetime) -> None:
    repo = Repository.of(uow)
    before = repo.contract(contract_id)
    after = domain.await_completion(before, now=now) if before else before
    if after is not before:
        _store(repo, before, after)


def escalate_due_issues(db: MongoDatabase, transact: Transact, now: datetime, batch: int) -> None:
    """Open issues past their due time climb one escalation level of the contract's governance plan."""
    _one_by_one(transact, Repository(db).issues_to_escalate(now, batch),
                lambda uow, issue_id: escalate(uow, issue_id, now), "escalation")


def escalate(uow: UnitOfWork, issue_id: str, now: datetime) -> None:
    repo = Repository.of(uow)
    issue = repo.issue(issue_id)
    if issue is None or issue["status"] != "open" or issue["escalation_due_at"] is None \
            or issue["escalation_due_at"] > now:
        return  # resolved or escalated meanwhile
    contract = repo.contract(issue["contract_id"])
    after = domain.escalate(issue, contract, now=now)
    if not repo.replace_issue(issue, after):
        raise Conflict("The issue changed meanwhile.")
    if after["level"] > issue["level"]:
        _emit(uow, events.ISSUE_ESCALATED, contract, jsonable(events.issue_escalated(after)))


def governance_summary(repo: Repository, party: Acting, contract_id: str) -> dict:
    """SLA compliance window by window, credits owed, reviews (last, next due, overdue) and issues."""
    contract = _contract_for(repo, party, contract_id)
    reviews = repo.reviews_of(contract["id"])
    scheduled = domain.review_schedule(contract, repository.current_time().date())
    issues = repo.issues_of(contract["id"])
    open_issues = [i for i in issues if i["status"] == "open"]
    next_due = domain.next_review_due(contract, len(reviews))
    return jsonable({
        "contract_id": contract["id"], "status": contract["status"], "version": contract["version"],
        "sla_compliance": domain.sla_compliance(contract, repo.evaluated_windows(contract["id"])),
        "late_measurements": repo.late_measurements(contract["id"]),
        "reviews": {"recorded": len(reviews), "last": schemas.review_to_wire(reviews[-1]) if reviews else None,
                    "next_due": next_due.isoformat() if next_due else None,
                    "overdue": max(len(scheduled) - len(reviews), 0)},
        "issues": {"open": len(open_issues), "resolved": len(issues) - len(open_issues),
                   "items": [schemas.issue_to_wire(i) for i in issues]},
    })


# -- ending --------------------------------------------------------------------------------------------------------


def complete_contract(uow: UnitOfWork, party: Acting, contract_id: str, rating: dict) -> dict:
    def change(before: dict, kind: Party, now: datetime) -> dict:
        domain.only(kind, Party.CLIENT, "complete the contract (rating the provider)")
        return domain.complete(before, rating, now=now)

    def announce(uow: UnitOfWork, after: dict) -> None:
        wire = schemas.contract_to_event(after)
        _emit(uow, events.CONTRACT_COMPLETED, after,
              events.contract_completed(wire, after["ratings"]["provider"], wire["completed_at"]))

    return _change(uow, party, contract_id, change, announce)


def terminate_contract(uow: UnitOfWork, party: Acting, contract_id: str, loaded: dict,
                       settings: ContractingSettings) -> dict:
    def change(before: dict, kind: Party, now: datetime) -> dict:
        return domain.terminate(before, kind, loaded["reason"], loaded["notice_days"], now=now,
                                grace=settings.sla_grace)

    def announce(uow: UnitOfWork, after: dict) -> None:
        wire = schemas.contract_to_event(after)
        _emit(uow, events.CONTRACT_TERMINATED, after,
              events.contract_terminated(wire, after["termination"], wire["terminated_at"]))

    return _change(uow, party, contract_id, change, announce)


def rate_client(uow: UnitOfWork, party: Acting, contract_id: str, rating: dict) -> dict:
    def change(before: dict, kind: Party, now: datetime) -> dict:
        domain.only(kind, Party.PROVIDER, "rate the client")
        return domain.rate_client(before, rating, now=now)

    return _change(uow, party, contract_id, change)


def answer_rating(uow: UnitOfWork, party: Acting, contract_id: str, text: str) -> dict:
    return _change(uow, party, contract_id, lambda before, kind, now: domain.answer_rating(before, kind, text, now=now))


def health(repo: Repository) -> dict:
    return repo.health()
