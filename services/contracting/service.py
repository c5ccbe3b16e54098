"""The contracting service: contracts from awards, signatures and amendments, SLAs measured and evaluated,
governance (reviews, issues and their escalation), completion and termination.

Entrypoints only. Each state change and the events it causes commit in one transaction (``store.transact``);
the outbox relay publishes them afterwards. Rules live in ``domain``, validation in ``schemas``, storage in
``repository``, event payloads in ``events``. A contract is visible to its two parties only: to anyone else it
does not exist (404).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from shared.runtime.messaging import subscribe
from shared.runtime.outbox import pending_count
from shared.runtime.persistence import Database, UnitOfWork
from shared.runtime.rpc import rpc
from shared.runtime.tracing import Tracing
from shared.vocabulary.errors import Conflict, NotFound, ValidationFailed

from . import domain, events, repository, schemas
from .dependencies import Settings, configured_timer
from .domain import Party
from .repository import Repository

log = logging.getLogger(__name__)

TIMER_BATCH = 100


def _contract_for(repo: Repository, party: Party, party_id: str, contract_id: Any) -> dict:
    contract = repo.contract(contract_id)
    # Someone else's contract is as absent as an unknown one: no existence leak.
    if contract is None or domain.party_id(contract, party) != party_id:
        raise NotFound(f"Contract {contract_id} not found.")
    return contract


def _store(repo: Repository, before: dict, after: dict) -> None:
    if not repo.replace_contract(after, expected_revision=before["revision"]):
        raise Conflict("The contract was changed by someone else meanwhile; reload it and try again.")


def _emit(uow: UnitOfWork, routing_key: str, contract: dict, data: dict) -> None:
    uow.emit(routing_key, subject=contract["id"], data=data, lane=contract["lane"], tenant=contract["tenant_id"])


def _new_sla_id() -> str:
    return repository.new_id("sla")


class ContractingService:
    name = "contracting"

    store = Database(ensure_indexes=repository.ensure_indexes)
    settings = Settings()
    correlation_id = Tracing()

    # -- from the award ----------------------------------------------------------------------------------------

    @subscribe(events.POSTINGS, events.POSTING_AWARDED)
    def on_posting_awarded(self, uow: UnitOfWork, envelope: dict) -> None:
        data = envelope["data"]
        repo = Repository.of(uow)
        if repo.contract_of_posting(data["posting"]["id"]) is not None:
            return  # the same award published twice (a new event id): one contract
        draft = domain.draft_from_award(
            data, contract_id=repository.new_id("ctr"),
            sla_ids=[_new_sla_id() for _ in data["sla_requirements"]],
            lane=data["client"]["segment"], now=repository.current_time())
        repo.insert_contract(draft)

    # -- reading -----------------------------------------------------------------------------------------------

    @rpc
    def get_contract(self, party: dict, contract_id: str) -> dict:
        kind, party_id = schemas.load_party(party)
        return schemas.contract_to_wire(_contract_for(Repository(self.store.db), kind, party_id, contract_id))

    @rpc
    def list_contracts(self, party: dict, status: str | None = None, limit: int = schemas.DEFAULT_PAGE,
                       cursor: str | None = None) -> dict:
        kind, party_id = schemas.load_party(party)
        status, limit, after = schemas.load_page(status, limit, cursor)
        field = "tenant_id" if kind is Party.CLIENT else "provider_id"
        rows = Repository(self.store.db).contracts_of(field, party_id, status=status, after=after, limit=limit + 1)
        page = rows[:limit]
        next_cursor = page[-1]["id"] if len(rows) > limit else None
        return {"items": [schemas.contract_to_wire(row) for row in page], "next_cursor": next_cursor}

    def _change(self, party: dict, contract_id: str, change: Callable[[dict, Party, Any], dict],
                announce: Callable[[UnitOfWork, dict], None] | None = None) -> dict:
        """One change of one contract by one of its parties: ``change(before, party, now)`` gives the contract
        after it (the same object when nothing changed); it is stored and ``announce`` emits its events, in one
        transaction."""
        kind, party_id = schemas.load_party(party)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            before = _contract_for(repo, kind, party_id, contract_id)
            after = change(before, kind, repository.current_time())
            if after is not before:
                _store(repo, before, after)
                if announce is not None:
                    announce(uow, after)
            return schemas.contract_to_wire(after)

        return self.store.transact(work)

    # -- drafting and signing ----------------------------------------------------------------------------------

    @rpc
    def update_contract(self, party: dict, contract_id: str, changes: dict) -> dict:
        loaded = schemas.load_changes(changes)

        def change(before: dict, kind: Party, now) -> dict:
            domain.only(kind, Party.CLIENT, "edit the draft contract")
            return domain.edit(before, loaded, new_sla_id=_new_sla_id, now=now,
                               max_backdate_days=self.settings.max_backdate_days)[0]

        return self._change(party, contract_id, change)

    @rpc
    def sign_contract(self, party: dict, contract_id: str, signature: dict) -> dict:
        signed_hash = schemas.load_signature(signature)

        def change(before: dict, kind: Party, now) -> dict:
            return domain.sign(before, kind, signed_hash, now=now, grace=self.settings.sla_grace)[0]

        def announce(uow: UnitOfWork, after: dict) -> None:
            _emit(uow, events.CONTRACT_SIGNED, after,
                  schemas.jsonable(events.contract_signed(after, after["signatures"][-1], None)))
            if after["status"] == domain.Status.ACTIVE:
                _emit(uow, events.CONTRACT_ACTIVATED, after,
                      events.contract_activated(schemas.contract_to_event(after)))

        return self._change(party, contract_id, change, announce)

    # -- amendments --------------------------------------------------------------------------------------------

    @rpc
    def propose_amendment(self, party: dict, contract_id: str, amendment: dict) -> dict:
        loaded = schemas.load_amendment(amendment)

        def change(before: dict, kind: Party, now) -> dict:
            return domain.propose_amendment(before, kind, loaded["changes"], reason=loaded["reason"],
                                            amendment_id=repository.new_id("amd"), new_sla_id=_new_sla_id, now=now,
                                            effective_date=loaded.get("effective_date"))

        return self._change(party, contract_id, change)

    @rpc
    def sign_amendment(self, party: dict, contract_id: str, amendment_id: str, signature: dict) -> dict:
        signed_hash = schemas.load_signature(signature)
        applied: list[dict] = []

        def change(before: dict, kind: Party, now) -> dict:
            after, done = domain.sign_amendment(before, kind, amendment_id, signed_hash, now=now,
                                                grace=self.settings.sla_grace)
            applied[:] = [done] if done else []
            return after

        def announce(uow: UnitOfWork, after: dict) -> None:
            signatures = applied[0]["signatures"] if applied else after["pending_amendment"]["signatures"]
            _emit(uow, events.CONTRACT_SIGNED, after,
                  schemas.jsonable(events.contract_signed(after, signatures[-1], amendment_id)))
            if applied:
                _emit(uow, events.CONTRACT_AMENDED, after,
                      events.contract_amended(schemas.contract_to_event(after), schemas.jsonable(applied[0])))

        return self._change(party, contract_id, change, announce)

    @rpc
    def withdraw_amendment(self, party: dict, contract_id: str, amendment_id: str) -> dict:
        """Either party ends a pending amendment: the proposer withdraws it, the other side declines it; it stays
        in the contract's history."""
        return self._change(party, contract_id, lambda before, kind, now: domain.withdraw_amendment(
            before, amendment_id, now=now, party=kind))

    # -- SLA measurements and evaluation -----------------------------------------------------------------------

    @rpc
    def submit_measurements(self, party: dict, contract_id: str, payload: Any,
                            idempotency_key: str | None = None) -> dict:
        """One measurement or a batch, each with its idempotency key. A key seen before with the same content is
        a duplicate (not recorded again); with other content the whole batch is refused. A measurement for a
        window already evaluated is recorded and flagged ``late`` (it does not change that window's outcome)."""
        kind, party_id = schemas.load_party(party)
        items = schemas.load_measurements(payload, idempotency_key)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            contract = _contract_for(repo, kind, party_id, contract_id)
            now = repository.current_time()
            domain.require(contract, "measure", now.date())
            slas = {sla["id"]: sla for sla in contract["slas"]}
            problems: dict[str, list[str]] = {}
            answers = []
            for item in items:
                earlier = repo.measurement_by_key(contract["id"], kind.value, item["key"])
                if earlier is not None:
                    same = all(earlier[k] == item[k] for k in ("sla_id", "value", "measured_at", "units"))
                    if not same:
                        problems[item["key"]] = ["This key was already used for a different measurement."]
                    answers.append((item, earlier, "duplicate"))
                    continue
                why = domain.check_measurement(contract, set(slas), item, now)
                if why:
                    problems[item["key"]] = [why]
                answers.append((item, None, None))
            if problems:
                raise ValidationFailed("Some measurements cannot be recorded; none were.", details=problems)
            out = []
            evaluated: dict[str, bool] = {}  # per window: this transaction does not evaluate one, read it once
            for item, earlier, status in answers:
                if earlier is None:
                    sla = slas[item["sla_id"]]
                    start, end = domain.evaluation_window(contract, sla, item["measured_at"])
                    window_id = repository.window_id(sla["id"], start)
                    if window_id not in evaluated:
                        window = repo.window(window_id)
                        evaluated[window_id] = window is not None and window.get("evaluated_at") is not None
                    # Before the cursor every window was evaluated, whatever boundaries it had then.
                    cursor = contract["sla_cursor"].get(sla["id"])
                    late = evaluated[window_id] or (cursor is not None and item["measured_at"] < cursor) \
                        or domain.window_closed_at(contract, sla["id"], start) is not None
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
            return schemas.jsonable({"contract_id": contract["id"], **counts, "measurements": out})

        return self.store.transact_keyed(work)

    @configured_timer("CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS", 60.0)
    def evaluate_slas(self) -> None:
        """Evaluates every window that fell due, once, and emits sla.met.v1 or sla.breached.v1 for it."""
        now = repository.current_time()
        for contract_id in Repository(self.store.db).contracts_due_for_evaluation(now, TIMER_BATCH):
            try:
                while self.store.transact(lambda uow, cid=contract_id: self._evaluate_next_window(uow, cid, now)):
                    pass
            except Exception as exc:  # another replica got there first, or a passing failure: next tick retries
                log.warning("SLA evaluation of %s deferred: %s", contract_id, exc)

    @rpc
    def close_sla_window(self, party: dict, contract_id: str, sla_id: str, window: dict) -> dict:
        """A party confirms that an ended window's measurements are complete. Once both have, the grace period
        serves nothing: the window is evaluated in this request (in order: after any earlier window still open).
        For a window already evaluated the answer is its evaluation."""
        kind, party_id = schemas.load_party(party)
        start = schemas.load_window(window)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            before = _contract_for(repo, kind, party_id, contract_id)
            window_id = repository.window_id(sla_id, start)
            evaluated = repo.window(window_id)
            if evaluated is None or evaluated["contract_id"] != before["id"] or evaluated.get("evaluated_at") is None:
                now = repository.current_time()
                after = domain.confirm_window_closed(before, kind, sla_id, start, now=now,
                                                     grace=self.settings.sla_grace)
                if after is not before:
                    _store(repo, before, after)
                    if domain.window_closed_at(after, sla_id, start) is not None:
                        while self._evaluate_next_window(uow, after["id"], now):
                            pass
                evaluated = repo.window(window_id)
            contract = repo.contract(before["id"])
            closure = domain.window_closure(contract, sla_id, start)
            end = evaluated["end"] if evaluated else domain.evaluation_window(
                contract, next(s for s in contract["slas"] if s["id"] == sla_id), start)[1]
            return schemas.jsonable({
                "contract_id": contract["id"], "sla_id": sla_id, "window": {"start": start, "end": end},
                "confirmed_by": closure["confirmed"] if closure else {},
                "closed_at": closure["closed_at"] if closure else None,
                "evaluation": evaluated.get("outcome") if evaluated else None})

        return self.store.transact(work)

    def _evaluate_next_window(self, uow: UnitOfWork, contract_id: str, now) -> bool:
        repo = Repository.of(uow)
        contract = repo.contract(contract_id)
        if contract is None or contract["activated_at"] is None:
            return False
        grace = self.settings.sla_grace
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
            routing_key, data = events.sla_evaluated(schemas.jsonable(outcome))
            _emit(uow, routing_key, contract, data)
        _store(repo, contract, domain.advance_cursor(contract, sla["id"], end, grace))
        return True

    # -- governance --------------------------------------------------------------------------------------------

    @rpc
    def record_review(self, party: dict, contract_id: str, review: dict) -> dict:
        kind, party_id = schemas.load_party(party)
        fields = schemas.load_review(review)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            contract = _contract_for(repo, kind, party_id, contract_id)
            domain.only(kind, Party.CLIENT, "record a performance review")
            recorded = domain.new_review(contract, fields, review_id=repository.new_id("rev"),
                                         reviews_recorded=len(repo.reviews_of(contract["id"])),
                                         now=repository.current_time())
            repo.insert_review(recorded)
            return schemas.review_to_wire(recorded)

        return self.store.transact(work)

    @rpc
    def raise_issue(self, party: dict, contract_id: str, issue: dict) -> dict:
        kind, party_id = schemas.load_party(party)
        fields = schemas.load_issue(issue)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            contract = _contract_for(repo, kind, party_id, contract_id)
            raised = domain.new_issue(contract, kind, fields, issue_id=repository.new_id("iss"),
                                      now=repository.current_time())
            repo.insert_issue(raised)
            return schemas.issue_to_wire(raised)

        return self.store.transact(work)

    @rpc
    def resolve_issue(self, party: dict, contract_id: str, issue_id: str, resolution: dict) -> dict:
        kind, party_id = schemas.load_party(party)
        text = schemas.load_resolution(resolution)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            contract = _contract_for(repo, kind, party_id, contract_id)
            before = repo.issue(issue_id)
            if before is None or before["contract_id"] != contract["id"]:
                raise NotFound(f"Issue {issue_id} not found.")
            after, changed = domain.resolve_issue(before, kind, text, now=repository.current_time())
            if changed and not repo.replace_issue(before, after):
                raise Conflict("The issue changed meanwhile (it escalated); reload it and try again.")
            return schemas.issue_to_wire(after)

        return self.store.transact(work)

    @configured_timer("CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS", 60.0)
    def await_fixed_price_completion(self) -> None:
        """Fixed-price contracts past their end date move on to completion_pending (the client completes them)."""
        now = repository.current_time()
        for contract_id in Repository(self.store.db).fixed_price_past_end(now.date().isoformat(), TIMER_BATCH):
            try:
                self.store.transact(lambda uow, cid=contract_id: self._await_completion(uow, cid, now))
            except Exception as exc:  # changed meanwhile (completed, amended): next tick looks again
                log.warning("moving %s to completion_pending deferred: %s", contract_id, exc)

    @staticmethod
    def _await_completion(uow: UnitOfWork, contract_id: str, now) -> None:
        repo = Repository.of(uow)
        before = repo.contract(contract_id)
        after = domain.await_completion(before, now=now) if before else before
        if after is not before:
            _store(repo, before, after)

    @configured_timer("CONTRACTING_ESCALATION_INTERVAL_SECONDS", 60.0)
    def escalate_issues(self) -> None:
        """Open issues past their due time climb one escalation level of the contract's governance plan."""
        now = repository.current_time()
        for issue_id in Repository(self.store.db).issues_to_escalate(now, TIMER_BATCH):
            try:
                self.store.transact(lambda uow, iid=issue_id: self._escalate(uow, iid, now))
            except Exception as exc:
                log.warning("escalation of %s deferred: %s", issue_id, exc)

    @staticmethod
    def _escalate(uow: UnitOfWork, issue_id: str, now) -> None:
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
            _emit(uow, events.ISSUE_ESCALATED, contract, schemas.jsonable(events.issue_escalated(after)))

    @rpc
    def governance_summary(self, party: dict, contract_id: str) -> dict:
        """SLA compliance window by window, credits owed, reviews (last, next due, overdue) and issues."""
        kind, party_id = schemas.load_party(party)
        repo = Repository(self.store.db)
        contract = _contract_for(repo, kind, party_id, contract_id)
        currency = contract["terms"]["price"]["currency"]
        windows = repo.evaluated_windows(contract["id"])
        compliance = []
        for sla in contract["slas"]:
            rows = [w for w in windows if w["sla_id"] == sla["id"]]
            met = sum(1 for w in rows if w["outcome"]["met"])
            credits = sum((Decimal(w["outcome"]["credit"]["amount"]) for w in rows if w["outcome"]["credit"]),
                          Decimal(0))
            compliance.append({
                "sla_id": sla["id"], "metric": sla["metric"], "target": sla["target"],
                "direction": sla["direction"], "window": sla["window"],
                "windows_evaluated": len(rows), "met": met, "breached": len(rows) - met,
                "compliance_percent": (format((Decimal(met) * 100 / len(rows)).quantize(Decimal("0.1")), "f")
                                       if rows else None),
                "credits": domain.money(credits, currency),
                "windows": [{"start": w["start"], "end": w["end"], "met": w["outcome"]["met"],
                             "value": w["outcome"]["result"]["value"],
                             "measurements": w["outcome"]["result"]["measurements"],
                             "late_measurements": w.get("late_measurements", 0),
                             "credit": w["outcome"]["credit"]} for w in rows],
            })
        reviews = repo.reviews_of(contract["id"])
        today = repository.current_time().date()
        scheduled = domain.review_schedule(contract, today)
        issues = repo.issues_of(contract["id"])
        open_issues = [i for i in issues if i["status"] == "open"]
        next_due = domain.next_review_due(contract, len(reviews))
        return schemas.jsonable({
            "contract_id": contract["id"], "status": contract["status"], "version": contract["version"],
            "sla_compliance": compliance,
            "late_measurements": repo.late_measurements(contract["id"]),
            "reviews": {"recorded": len(reviews), "last": schemas.review_to_wire(reviews[-1]) if reviews else None,
                        "next_due": next_due.isoformat() if next_due else None,
                        "overdue": max(len(scheduled) - len(reviews), 0)},
            "issues": {"open": len(open_issues), "resolved": len(issues) - len(open_issues),
                       "items": [schemas.issue_to_wire(i) for i in issues]},
        })

    # -- ending ------------------------------------------------------------------------------------------------

    @rpc
    def complete_contract(self, party: dict, contract_id: str, rating: dict) -> dict:
        loaded = schemas.load_rating(rating)

        def change(before: dict, kind: Party, now) -> dict:
            domain.only(kind, Party.CLIENT, "complete the contract (rating the provider)")
            return domain.complete(before, loaded, now=now)

        def announce(uow: UnitOfWork, after: dict) -> None:
            wire = schemas.contract_to_event(after)
            _emit(uow, events.CONTRACT_COMPLETED, after,
                  events.contract_completed(wire, after["ratings"]["provider"], wire["completed_at"]))

        return self._change(party, contract_id, change, announce)

    @rpc
    def terminate_contract(self, party: dict, contract_id: str, termination: dict) -> dict:
        loaded = schemas.load_termination(termination)

        def change(before: dict, kind: Party, now) -> dict:
            return domain.terminate(before, kind, loaded["reason"], loaded["notice_days"], now=now,
                                    grace=self.settings.sla_grace)

        def announce(uow: UnitOfWork, after: dict) -> None:
            wire = schemas.contract_to_event(after)
            _emit(uow, events.CONTRACT_TERMINATED, after,
                  events.contract_terminated(wire, after["termination"], wire["terminated_at"]))

        return self._change(party, contract_id, change, announce)

    @rpc
    def rate_client(self, party: dict, contract_id: str, rating: dict) -> dict:
        loaded = schemas.load_rating(rating)

        def change(before: dict, kind: Party, now) -> dict:
            domain.only(kind, Party.PROVIDER, "rate the client")
            return domain.rate_client(before, loaded, now=now)

        return self._change(party, contract_id, change)

    @rpc
    def answer_rating(self, party: dict, contract_id: str, answer: dict) -> dict:
        text = schemas.load_answer(answer)
        return self._change(party, contract_id,
                            lambda before, kind, now: domain.answer_rating(before, kind, text, now=now))

    @rpc
    def health(self) -> dict:
        self.store.db.command("ping")
        return {"database": "ok", "outbox_backlog": pending_count(self.store.db)}
