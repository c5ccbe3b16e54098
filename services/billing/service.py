"""The billing service: accounts from contracts, billable items and their approval, invoice runs with gapless
numbers per issuer (the provider), SLA credits, tax, payments and credit notes, overdue detection, cost reports.

Entrypoints only. Each state change and the events it causes commit in one transaction (``store.transact``); the
outbox relay publishes them afterwards. Rules live in ``domain`` (and ``tax``), the invoice run in ``runs``,
validation in ``schemas``, storage in ``repository``, event payloads in ``events``, the invoice document in
``documents``. An invoice or account is visible to its client organisation and its provider only (and the
operator): to anyone else it does not exist (404).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shared import idempotency
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.messaging import subscribe
from shared.money import Money, minor_unit
from shared.outbox import pending_count
from shared.persistence import Database, UnitOfWork
from shared.rpc import rpc
from shared.timers import configured_timer
from shared.tracing import Tracing

from . import documents, domain, events, repository, runs, schemas
from .dependencies import Settings
from .repository import Repository

log = logging.getLogger(__name__)

TIMER_BATCH = 500
LEGAL_FIELDS = ("legal_name", "address", "tax_id")  # optional in the parties' events: what an invoice names


def _visible(record: dict | None, kind: str, party_id: str | None, what: str, record_id: Any) -> dict:
    """The record when the party may see it: its client organisation, its provider, or the operator."""
    if record is None or (kind == "client" and record["tenant_id"] != party_id) or (
            kind == "provider" and record["provider_id"] != party_id):
        raise NotFound(f"{what} {record_id} not found.")
    return record


def _only(kind: str, *allowed: str, action: str) -> None:
    if kind not in allowed:
        raise Forbidden(f"Only the {' or '.join(allowed)} may {action}.")


def _require_positive_in(invoice: dict, amount: Money, verb: str) -> None:
    """A positive amount in the invoice's currency, in whole minor units (no 0.4 JPY, no 100.005 EUR: a payment
    or a credit is recorded exactly as sent, never rounded)."""
    currency = invoice["currency"]
    if amount.currency != currency or amount.amount <= 0:
        raise ValidationFailed(f"{verb} a positive amount in the invoice's currency.",
                               {"amount": [f"A positive amount in {currency}."]})
    unit = minor_unit(currency)
    if amount.amount % unit:
        raise ValidationFailed(f"{verb} an amount in whole units of {unit} {currency}.",
                               {"amount": [f"{currency} amounts are in steps of {unit}."]})


def _seen_reference(earlier: dict | None, loaded: dict) -> bool:
    """A payment or refund's ``reference`` is its idempotency key: seen before with the same amount it is the same
    one (True), with another amount a conflict."""
    if earlier is None:
        return False
    if domain.amount_of(earlier["amount"]) != loaded["amount"].amount:
        raise Conflict("This reference was already used for another amount.", {"reference": loaded["reference"]})
    return True


def _providers_today(repo: Repository, account: dict, now: datetime) -> date:
    """Today where the provider works (its time zone, from its events), so a provider east of UTC can bill its own
    today; where that is not known yet, today anywhere on Earth (UTC+14)."""
    provider = repo.providers([account["provider_id"]]).get(account["provider_id"]) or {}
    zone = provider.get("time_zone")
    if zone:
        return now.astimezone(ZoneInfo(zone)).date()
    return (now + timedelta(hours=14)).date()


def _activated_account(repo: Repository, contract_id: str) -> dict:
    """The contract's account; a contract event that overtook its activation fails, to be retried after it."""
    account = repo.account(contract_id)
    if account is None:
        raise Conflict(f"No billing account for {contract_id} yet; retried after its activation.")
    return account


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _credit_id(sla_id: str, window_start: str) -> str:
    return "crd_" + hashlib.sha256(f"{sla_id}:{window_start}".encode()).hexdigest()[:32]


class BillingService:
    name = "billing"

    store = Database(ensure_indexes=repository.ensure_indexes)
    settings = Settings()
    correlation_id = Tracing()

    # -- what billing learns from the others -----------------------------------------------------------------------

    @subscribe(events.POSTINGS, events.TENANT_REGISTERED)
    def on_tenant_registered(self, uow: UnitOfWork, envelope: dict) -> None:
        tenant = envelope["data"]["tenant"]
        Repository.of(uow).save_party(repository.TENANTS, {
            **{k: tenant[k] for k in ("id", "name", "country", "time_zone")},
            **{k: tenant.get(k) for k in LEGAL_FIELDS}})

    def _save_provider(self, uow: UnitOfWork, envelope: dict) -> None:
        provider = envelope["data"]["provider"]
        Repository.of(uow).save_party(repository.PROVIDERS, {
            "id": provider["id"], "name": provider["display_name"], "country": provider["country"],
            "time_zone": provider["time_zone"], **{k: provider.get(k) for k in (*LEGAL_FIELDS,
                                                                                "payment_instructions")}})

    @subscribe(events.PROVIDERS, events.PROVIDER_REGISTERED)
    def on_provider_registered(self, uow: UnitOfWork, envelope: dict) -> None:
        self._save_provider(uow, envelope)

    @subscribe(events.PROVIDERS, events.PROVIDER_UPDATED)
    def on_provider_updated(self, uow: UnitOfWork, envelope: dict) -> None:
        self._save_provider(uow, envelope)

    @subscribe(events.CONTRACTING, events.CONTRACT_ACTIVATED)
    def on_contract_activated(self, uow: UnitOfWork, envelope: dict) -> None:
        repo = Repository.of(uow)
        contract = envelope["data"]["contract"]
        if repo.account(contract["id"]) is None:
            repo.insert_account(domain.account_from_contract(contract, repository.current_time()))

    @subscribe(events.CONTRACTING, events.CONTRACT_AMENDED)
    def on_contract_amended(self, uow: UnitOfWork, envelope: dict) -> None:
        repo = Repository.of(uow)
        contract = envelope["data"]["contract"]
        account = _activated_account(repo, contract["id"])
        after = domain.amend_account(account, contract, envelope["data"]["amendment"]["effective_date"],
                                     repository.current_time())
        if after is not account:
            repo.replace_account(account, after)

    def _end(self, uow: UnitOfWork, contract: dict, last_day: str) -> None:
        repo = Repository.of(uow)
        account = _activated_account(repo, contract["id"])
        repo.replace_account(account, domain.end_account(account, contract["status"], last_day,
                                                         repository.current_time()))

    @subscribe(events.CONTRACTING, events.CONTRACT_COMPLETED)
    def on_contract_completed(self, uow: UnitOfWork, envelope: dict) -> None:
        data = envelope["data"]
        self._end(uow, data["contract"], data["completed_at"][:10])

    @subscribe(events.CONTRACTING, events.CONTRACT_TERMINATED)
    def on_contract_terminated(self, uow: UnitOfWork, envelope: dict) -> None:
        data = envelope["data"]
        self._end(uow, data["contract"], data["effective_date"])

    @subscribe(events.CONTRACTING, events.SLA_BREACHED)
    def on_sla_breached(self, uow: UnitOfWork, envelope: dict) -> None:
        """The credit owed for a breached window, billed on the invoice of the period the window ends in (or the
        next one not invoiced yet). When every period is invoiced already (the breach of a contract's last window
        is evaluated after its last invoice), a credit note on the invoice of the window's period settles it."""
        data = envelope["data"]
        repo = Repository.of(uow)
        account = _activated_account(repo, data["contract_id"])
        window = {"start": _parse_time(data["window"]["start"]), "end": _parse_time(data["window"]["end"])}
        last_day = (window["end"] - timedelta(milliseconds=1)).date()
        period = domain.open_period_for(account, last_day)
        credit = {"id": _credit_id(data["sla"]["id"], data["window"]["start"]), "contract_id": account["id"],
                  "tenant_id": account["tenant_id"], "provider_id": account["provider_id"],
                  "sla_id": data["sla"]["id"], "metric": data["sla"]["metric"], "window": window,
                  "owed": data["credit"], "remaining": data["credit"],
                  "bill_key": domain.bill_key(account["id"], period[0]), "recorded_at": repository.current_time()}
        if domain.next_period(account) is None:
            credit["bill_key"] = None  # no invoice will carry it
        if not repo.insert_credit(credit):
            return  # this window's credit is recorded already
        repo.touch_account(account)
        if credit["bill_key"] is None:
            self._settle_by_credit_note(uow, repo, credit, repo.invoice_of_period(account["id"], period[0]))

    def _settle_by_credit_note(self, uow: UnitOfWork, repo: Repository, credit: dict, invoice: dict | None) -> None:
        """Credit ``invoice`` with what it can still take of ``credit``; the rest stays owed (the account's
        ``sla_credits_owed``, for a refund)."""
        if invoice is None:
            return
        owed = domain.amount_of(credit["remaining"])
        net, tax = domain.sla_credit_split(invoice, owed)
        left = domain.amount_of(invoice["total"]) - domain.amount_of(invoice["credited"])
        if net + tax > left:  # earlier notes took part of the invoice: what is left of it, pro rata
            net, tax = domain.credit_note_split(invoice, left)
        if net + tax <= 0:
            return
        window = credit["window"]
        note = self._credit_note(uow, repo, invoice, net + tax, f"SLA credit: {credit['metric']}, window "
                                 f"{window['start'].date().isoformat()} to {window['end'].date().isoformat()}",
                                 split=(net, tax))
        repo.carry_credits([(credit["id"], {"remaining": domain.money(owed - net, invoice["currency"]),
                                            "credit_note_id": note["id"]})])

    # -- billable items ----------------------------------------------------------------------------------------------

    def _account_for(self, repo: Repository, kind: str, party_id: str | None, contract_id: Any) -> dict:
        return _visible(repo.account(contract_id), kind, party_id, "Billing account of contract", contract_id)

    @rpc
    def submit_items(self, party: dict, contract_id: str, payload: Any, idempotency_key: str | None = None) -> dict:
        """Time entries, usage or a delivered milestone, one or a batch, each with its idempotency key. A key seen
        before with the same content is a duplicate (acknowledged, not counted again); with other content, or an
        item refused by the rules, the whole batch is refused with the reason per key."""
        kind, party_id = schemas.load_party(party)
        items = schemas.load_items(payload, idempotency_key)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            account = self._account_for(repo, kind, party_id, contract_id)
            _only(kind, "provider", action="submit billable items")
            now = repository.current_time()
            problems: dict[str, list[str]] = {}
            new, answers = [], []
            day_hours: dict[str, dict[str, Decimal]] = {}  # per ISO week, per date
            today = _providers_today(repo, account, now)
            recorded_before = repo.items_by_key(account["id"], [item["key"] for item in items])
            milestones_taken = repo.milestones_taken(
                account["id"], sorted({item["milestone"] for item in items if item["kind"] == "milestone"}))
            for item in items:
                earlier = recorded_before.get(item["key"])
                if earlier is not None:
                    if any(earlier.get(k) != item.get(k) for k in ("kind", "date", "hours", "units", "milestone")):
                        problems[item["key"]] = ["This key was already used for a different item."]
                    answers.append((earlier, "duplicate"))
                    continue
                week = domain.period_containing(domain.day(item["date"]), "weekly")[0].isoformat()
                if week not in day_hours:
                    day_hours[week] = repo.hours_by_day(account["id"], week)
                days = day_hours[week]
                taken = item["kind"] == "milestone" and (
                    item["milestone"] in milestones_taken
                    or any(n["kind"] == "milestone" and n["milestone"] == item["milestone"] for n in new))
                why = domain.check_billable(account, {**item, "hours": Decimal(item.get("hours") or 0)}, today,
                                            sum(days.values(), Decimal(0)), taken,
                                            days.get(item["date"], Decimal(0)))
                if why:
                    problems[item["key"]] = [why]
                    continue
                if item["kind"] == "time":
                    days[item["date"]] = days.get(item["date"], Decimal(0)) + Decimal(item["hours"])
                if item["kind"] == "milestone" and not item.get("description"):
                    item["description"] = account["milestones"][item["milestone"]]["title"]
                recorded = {"id": repository.new_id("itm"), "contract_id": account["id"],
                            "tenant_id": account["tenant_id"], "provider_id": account["provider_id"],
                            "hours": None, "units": None, "milestone": None, **item, "week": week,
                            "status": "submitted", "reason": None, "submitted_at": now, "reviewed_at": None,
                            "bill_key": None, "billing_period": None}
                new.append(recorded)
                answers.append((recorded, "recorded"))
            if problems:
                raise ValidationFailed("Some items cannot be billed; none were recorded.", details=problems)
            repo.insert_items(new)
            out = [{**schemas.item_to_wire(item), "outcome": outcome} for item, outcome in answers]
            return {"contract_id": account["id"], "recorded": len(new), "duplicate": len(answers) - len(new),
                    "items": out}

        return self.store.transact_keyed(work)

    @rpc
    def list_items(self, party: dict, contract_id: str, status: str | None = None,
                   limit: int = schemas.DEFAULT_PAGE, cursor: str | None = None) -> dict:
        kind, party_id = schemas.load_party(party)
        status, limit, after = schemas.load_page(status, limit, cursor, ("submitted", "approved", "rejected"), "itm")
        repo = Repository(self.store.db)
        account = self._account_for(repo, kind, party_id, contract_id)
        rows = repo.items_of(account["id"], status, after, limit + 1)
        page = rows[:limit]
        return {"items": [schemas.item_to_wire(i) for i in page],
                "next_cursor": page[-1]["id"] if len(rows) > limit else None}

    @rpc
    def review_item(self, party: dict, contract_id: str, item_id: str, decision: str,
                    payload: dict | None = None) -> dict:
        """The client approves (it will be billed) or rejects (with the reason) a submitted item."""
        kind, party_id = schemas.load_party(party)
        decision, reason = schemas.load_review(decision, payload)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            account = self._account_for(repo, kind, party_id, contract_id)
            _only(kind, "client", action="approve or reject billable items")
            before = repo.item(item_id)
            if before is None or before["contract_id"] != account["id"]:
                raise NotFound(f"Item {item_id} not found.")
            after = domain.review_item(before, decision, reason, repository.current_time())
            if after is before:
                return schemas.item_to_wire(before)
            if after["status"] == "approved":
                if domain.next_period(account) is None:
                    raise Conflict("The contract has ended and its last period is invoiced: correct the last "
                                   "invoice with a credit note or bill it separately.")
                period = domain.open_period_for(account, domain.day(after["date"]))
                after = {**after, "bill_key": domain.bill_key(account["id"], period[0]),
                         "billing_period": {"start": period[0], "end": period[1]}}
                repo.touch_account(account)
            repo.replace_item(before, after)
            return schemas.item_to_wire(after)

        return self.store.transact(work)

    @rpc
    def get_account(self, party: dict, contract_id: str) -> dict:
        """The account's terms, what was invoiced through when, and its invoices' balances."""
        kind, party_id = schemas.load_party(party)
        repo = Repository(self.store.db)
        account = self._account_for(repo, kind, party_id, contract_id)
        now = repository.current_time()
        invoices = repo.invoices_of({"contract_id": account["id"]}, None, 0)
        summaries = [domain.balance_summary(i, now) for i in invoices]
        currency = account["currency"]

        def total(field: str) -> dict:
            return domain.money(sum((domain.amount_of(s[field]) for s in summaries), domain.ZERO), currency)

        return schemas.jsonable({
            "contract_id": account["id"], "tenant_id": account["tenant_id"], "provider_id": account["provider_id"],
            "title": account["title"], "status": account["status"], "currency": currency,
            "terms": account["terms"], "start_date": account["start_date"], "end_date": account["end_date"],
            "invoiced_through": account["invoiced_through"], "next_period_end": account["next_period_end"],
            "invoiced": total("total"), "paid": total("paid"), "credited": total("credited"),
            "balance": total("balance"),
            "overdue": domain.money(sum((domain.amount_of(s["balance"]) for s in summaries
                                         if s["status"] == "overdue"), domain.ZERO), currency),
            "sla_credits_owed": domain.money(sum((domain.amount_of(c["remaining"])
                                                  for c in repo.credits_owed(account["id"])), domain.ZERO), currency),
            "credit_balance": domain.money(domain.credit_balance_of(account), currency),
            "sla_credits": [schemas.credit_to_wire(c) for c in repo.credits_of(account["id"])],
            "invoices": summaries,
        })

    # -- invoice runs ------------------------------------------------------------------------------------------------

    def _run(self, as_of: str, tenant_id: str | None) -> dict:
        return runs.run(self.store.db, self.store.transact, as_of=as_of, tenant_id=tenant_id,
                        tax_rates=self.settings.tax_rates, batch_size=self.settings.run_batch_size,
                        clock=repository.current_time)

    @rpc
    def run_invoices(self, payload: dict | None = None) -> dict:
        """On demand: invoice every period that ended before ``as_of`` (default today), for one tenant or all."""
        as_of, tenant_id = schemas.load_run(payload)
        today = repository.current_time().date().isoformat()
        if as_of and as_of > today:  # a bound that moves with the clock, not the request's shape: 409
            raise Conflict("An invoice run cannot look into the future.", {"as_of": ["Today at the latest."]})
        return self._run(as_of or today, tenant_id)

    @configured_timer("BILLING_INVOICE_RUN_INTERVAL_SECONDS", 3600.0)
    def scheduled_invoice_run(self) -> None:
        """On schedule: the same run up to today, for every tenant."""
        summary = self._run(repository.current_time().date().isoformat(), None)
        if summary["invoices_issued"]:
            log.info("invoice run issued %d invoices", summary["invoices_issued"])

    # -- invoices ------------------------------------------------------------------------------------------------------

    def _invoice_for(self, repo: Repository, kind: str, party_id: str | None, invoice_id: Any) -> dict:
        return _visible(repo.invoice(invoice_id), kind, party_id, "Invoice", invoice_id)

    @rpc
    def list_invoices(self, party: dict, status: str | None = None, contract_id: str | None = None,
                      limit: int = schemas.DEFAULT_PAGE, cursor: str | None = None) -> dict:
        kind, party_id = schemas.load_party(party)
        status, limit, after = schemas.load_page(status, limit, cursor, schemas.INVOICE_STATUSES, "inv")
        query: dict[str, Any] = {}
        if kind != "operator":
            query["tenant_id" if kind == "client" else "provider_id"] = party_id
        if contract_id:
            query["contract_id"] = contract_id
        now = repository.current_time()
        repo = Repository(self.store.db)
        items: list[dict] = []
        while len(items) <= limit:
            rows = repo.invoices_of(query, after, limit + 1)
            for row in rows:
                summary = schemas.invoice_summary(row, now)
                if status is None or summary["status"] == status:
                    items.append(summary)
            if len(rows) <= limit:
                break
            after = rows[-1]["id"]
        page = items[:limit]
        return {"items": page, "next_cursor": page[-1]["id"] if len(items) > limit else None}

    def _invoice_wire(self, repo: Repository, invoice: dict) -> dict:
        return schemas.invoice_to_wire(invoice, repository.current_time(),
                                       repo.records_of(repository.PAYMENTS, invoice["id"]),
                                       repo.records_of(repository.CREDIT_NOTES, invoice["id"]))

    @rpc
    def get_invoice(self, party: dict, invoice_id: str) -> dict:
        kind, party_id = schemas.load_party(party)
        repo = Repository(self.store.db)
        return self._invoice_wire(repo, self._invoice_for(repo, kind, party_id, invoice_id))

    def _printable(self, party: dict, invoice_id: str) -> tuple[dict, dict | None, dict | None]:
        """What an invoice document shows: the invoice (wire form), its client and its provider."""
        kind, party_id = schemas.load_party(party)
        repo = Repository(self.store.db)
        invoice = self._invoice_wire(repo, self._invoice_for(repo, kind, party_id, invoice_id))
        return (invoice, repo.tenant(invoice["tenant_id"]),
                repo.providers([invoice["provider_id"]]).get(invoice["provider_id"]))

    @rpc
    def render_invoice(self, party: dict, invoice_id: str) -> str:
        """The invoice as a readable HTML document."""
        return documents.invoice_html(*self._printable(party, invoice_id))

    @rpc
    def render_statement(self, party: dict, invoice_id: str) -> str:
        """Where the invoice stands now (status, payments, credit notes, balance), as an HTML document beside the
        invoice, which never changes."""
        return documents.statement_html(self._printable(party, invoice_id)[0])

    @rpc
    def render_invoice_pdf(self, party: dict, invoice_id: str) -> str:
        """The invoice as a PDF document, base64-encoded (RPC payloads are JSON)."""
        document = documents.invoice_pdf(*self._printable(party, invoice_id), self.settings.pdf_font)
        return base64.b64encode(document).decode("ascii")

    @rpc
    def record_payment(self, party: dict, invoice_id: str, payload: dict) -> dict:
        """A payment against an invoice, received by now: full, partial or over. What it pays beyond the balance
        becomes the account's credit balance (the next invoice uses it, or it is refunded). An invoice credited in
        full takes no payment. Its ``reference`` is its idempotency key: the same reference again is the same
        payment."""
        kind, party_id = schemas.load_party(party)
        loaded = schemas.load_payment(payload)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            invoice = self._invoice_for(repo, kind, party_id, invoice_id)
            _only(kind, "client", "operator", action="record payments")
            _require_positive_in(invoice, loaded["amount"], "Pay")
            if _seen_reference(repo.payment_by_reference(invoice["id"], loaded["reference"]), loaded):
                return {**self._invoice_wire(repo, invoice), "outcome": "duplicate"}
            now = repository.current_time()
            received_at = loaded["received_at"] or now
            domain.check_payable(invoice, received_at, now)
            after, excess = domain.with_payment(invoice, loaded["amount"].amount)
            currency = invoice["currency"]
            payment = {"id": repository.new_id("pay"), "invoice_id": invoice["id"],
                       "tenant_id": invoice["tenant_id"], "provider_id": invoice["provider_id"],
                       "contract_id": invoice["contract_id"],
                       "amount": domain.money(loaded["amount"].amount, currency),
                       "to_credit_balance": domain.money(excess, currency),
                       "reference": loaded["reference"], "received_at": received_at, "recorded_at": now}
            repo.insert(repository.PAYMENTS, payment)
            repo.replace_invoice(invoice, after)
            if excess:
                account = _activated_account(repo, invoice["contract_id"])
                repo.replace_account(account, domain.with_credit_balance_change(account, excess, now))
            uow.emit(**events.event(events.PAYMENT_RECORDED, invoice["id"], invoice, schemas.jsonable(
                events.payment_recorded(schemas.payment_to_wire(payment), domain.balance_summary(after, now)))))
            return {**self._invoice_wire(repo, after), "outcome": "recorded"}

        return self.store.transact_keyed(work)

    @rpc
    def record_refund(self, party: dict, contract_id: str, payload: dict) -> dict:
        """Money of the account's credit balance paid back to the client (the provider or the operator records
        it; its ``reference`` is its idempotency key). At most the credit balance."""
        kind, party_id = schemas.load_party(party)
        loaded = schemas.load_refund(payload)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            account = self._account_for(repo, kind, party_id, contract_id)
            _only(kind, "provider", "operator", action="record refunds")
            _require_positive_in({"currency": account["currency"]}, loaded["amount"], "Refund")
            earlier = repo.refund_by_reference(account["id"], loaded["reference"])
            if _seen_reference(earlier, loaded):
                return {**schemas.refund_to_wire(earlier), "outcome": "duplicate"}
            now = repository.current_time()
            after = domain.with_credit_balance_change(account, -loaded["amount"].amount, now)
            refund = {"id": repository.new_id("rfd"), "contract_id": account["id"],
                      "tenant_id": account["tenant_id"], "provider_id": account["provider_id"],
                      "amount": domain.money(loaded["amount"].amount, account["currency"]),
                      "reference": loaded["reference"], "recorded_at": now}
            repo.insert(repository.REFUNDS, refund)
            repo.replace_account(account, after)
            return {**schemas.refund_to_wire(refund), "outcome": "recorded"}

        return self.store.transact_keyed(work)

    @rpc
    def issue_credit_note(self, party: dict, invoice_id: str, payload: dict,
                          idempotency_key: str | None = None) -> dict:
        """Corrects an issued invoice (which never changes) by crediting part or all of it, with the reason;
        numbered gaplessly in its issuer's credit note series. With an idempotency key, the same request again is the
        same note (a retry after a lost answer credits once); the key with another amount or reason is 409."""
        kind, party_id = schemas.load_party(party)
        loaded = schemas.load_credit_note(payload)
        key = idempotency.load_key(idempotency_key)

        def work(uow: UnitOfWork) -> dict:
            repo = Repository.of(uow)
            invoice = self._invoice_for(repo, kind, party_id, invoice_id)
            _only(kind, "provider", "operator", action="issue credit notes")
            _require_positive_in(invoice, loaded["amount"], "Credit")
            earlier = repo.credit_note_by_key(invoice["id"], key) if key else None
            if earlier is not None:
                if (domain.amount_of(earlier["amount"]), earlier["reason"]) != (loaded["amount"].amount,
                                                                                loaded["reason"]):
                    raise Conflict("This idempotency key was already used for another credit note.",
                                   {"idempotency_key": ["Already used with a different amount or reason."]})
                return schemas.credit_note_to_wire(earlier)
            return schemas.credit_note_to_wire(self._credit_note(uow, repo, invoice, loaded["amount"].amount,
                                                                 loaded["reason"], idempotency_key=key))

        return self.store.transact_keyed(work)

    @staticmethod
    def _credit_note(uow: UnitOfWork, repo: Repository, invoice: dict, amount: Decimal, reason: str,
                     idempotency_key: str | None = None, split: tuple[Decimal, Decimal] | None = None) -> dict:
        """A credit note of ``amount`` (gross) on ``invoice``, stating the net and tax it corrects (``split``, or
        pro rata of the invoice), numbered gaplessly in its issuer's series, and its event."""
        after = domain.with_credit_note(invoice, amount)
        now = repository.current_time()
        net, tax = split or domain.credit_note_split(invoice, amount)
        sequence = repo.allocate_in_series(repository.CREDIT_NOTES, repository.series_of(invoice["provider_id"]))
        note = {"id": repository.new_id("cn"), "number": domain.credit_note_number(sequence),
                "sequence": sequence, "invoice_id": invoice["id"], "invoice_number": invoice["number"],
                "tenant_id": invoice["tenant_id"], "provider_id": invoice["provider_id"],
                "contract_id": invoice["contract_id"], "amount": domain.money(amount, invoice["currency"]),
                "net": domain.money(net, invoice["currency"]), "tax": domain.money(tax, invoice["currency"]),
                "series": repository.series_of(invoice["provider_id"]), "reason": reason, "issued_at": now}
        if idempotency_key is not None:
            note["idempotency_key"] = idempotency_key
        repo.insert(repository.CREDIT_NOTES, note)
        repo.replace_invoice(invoice, after)
        uow.emit(**events.event(events.CREDIT_NOTE_ISSUED, invoice["id"], invoice, schemas.jsonable(
            events.credit_note_issued(schemas.credit_note_to_wire(note), domain.balance_summary(after, now)))))
        return note

    @configured_timer("BILLING_OVERDUE_INTERVAL_SECONDS", 300.0)
    def detect_overdue(self) -> None:
        """Invoices with a balance past their due time are marked overdue and announced, once each."""
        now = repository.current_time()
        for invoice_id in Repository(self.store.db).overdue_candidates(now, TIMER_BATCH):
            try:
                self.store.transact(lambda uow, iid=invoice_id: self._mark_overdue(uow, iid, now))
            except Exception as exc:  # another replica got there first, or a passing failure: next tick retries
                log.warning("overdue check of %s deferred: %s", invoice_id, exc)

    @staticmethod
    def _mark_overdue(uow: UnitOfWork, invoice_id: str, now: datetime) -> None:
        repo = Repository.of(uow)
        invoice = repo.invoice(invoice_id)
        if invoice is None or not repo.mark_overdue(invoice_id, now):
            return
        balance = domain.balance_summary({**invoice, "overdue_at": now}, now)
        uow.emit(**events.event(events.INVOICE_OVERDUE, invoice_id, invoice, schemas.jsonable(
            events.invoice_overdue(invoice, balance, now))))

    # -- cost reports --------------------------------------------------------------------------------------------------

    @rpc
    def set_in_house_costs(self, tenant_id: str, payload: dict) -> dict:
        """The client's estimate of what each category of work would cost it in-house, per month."""
        costs = schemas.load_in_house_costs(payload)
        self.store.transact(lambda uow: Repository.of(uow).set_in_house_costs(tenant_id, costs,
                                                                              repository.current_time()))
        return {"monthly": costs}

    @rpc
    def get_in_house_costs(self, tenant_id: str) -> dict:
        return {"monthly": Repository(self.store.db).in_house_costs(tenant_id)}

    @rpc
    def cost_report(self, tenant_id: str, start: str, end: str) -> dict:
        """Spend over the invoices whose period starts in [start, end]; see ``domain.cost_report``."""
        first, last = schemas.load_range(start, end)
        repo = Repository(self.store.db)
        invoices = repo.invoices_in(tenant_id, first.isoformat(), last.isoformat())
        return domain.cost_report(invoices, repo.in_house_costs(tenant_id), first, last,
                                  repo.credit_notes_of([invoice["id"] for invoice in invoices]))

    @rpc
    def cost_report_csv(self, tenant_id: str, start: str, end: str) -> str:
        return documents.csv_text(domain.report_csv_rows(self.cost_report(tenant_id, start, end)))

    @rpc
    def health(self) -> dict:
        self.store.db.command("ping")
        return {"database": "ok", "outbox_backlog": pending_count(self.store.db)}
