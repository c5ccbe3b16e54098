"""Billing's use cases: one plain function each, taking a unit of work (a change, committed with its events in one
transaction) or a repository (a query), and the input the entrypoint decoded.

They ask ``domain`` (and ``tax``) for the rules, ``repository`` for the data, and record the events of ``events``.
The invoice run is the handler module ``runs``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pymongo.database import Database as MongoDatabase

from shared.runtime.persistence import UnitOfWork
from shared.vocabulary.errors import Conflict, NotFound
from shared.vocabulary.fields import jsonable
from shared.vocabulary.idempotency import claim_batch

from . import domain, events, repository, runs, schemas
from .dependencies import BillingSettings
from .repository import Repository

log = logging.getLogger(__name__)

LEGAL_FIELDS = ("legal_name", "address", "tax_id")  # optional in the parties' events: what an invoice names
ITEM_CONTENT = ("kind", "date", "hours", "units", "milestone")  # what makes a resubmitted key the same item

Party = tuple[str, str | None]  # (client / provider / operator, its id)


# -- what billing learns from the others ---------------------------------------------------------------------------


def save_tenants(uow: UnitOfWork, tenants: list[dict]) -> None:
    """Billing's copy of client organisations (country: tax, shoring), a batch in one write, in delivery order."""
    Repository.of(uow).save_parties(repository.TENANTS, [{
        **{k: tenant[k] for k in ("id", "name", "country", "time_zone")},
        **{k: tenant.get(k) for k in LEGAL_FIELDS}} for tenant in tenants])


def save_providers(uow: UnitOfWork, providers: list[dict]) -> None:
    """Billing's copy of providers (the issuer on their invoices), a batch in one write, in delivery order."""
    Repository.of(uow).save_parties(repository.PROVIDERS, [{
        "id": provider["id"], "name": provider["display_name"], "country": provider["country"],
        "time_zone": provider["time_zone"], **{k: provider.get(k) for k in (*LEGAL_FIELDS, "payment_instructions")}}
        for provider in providers])


def _activated_account(repo: Repository, contract_id: str) -> dict:
    """The contract's account; a contract event that overtook its activation fails, to be retried after it."""
    account = repo.account(contract_id)
    if account is None:
        raise Conflict(f"No billing account for {contract_id} yet; retried after its activation.")
    return account


def open_account(uow: UnitOfWork, contract: dict) -> None:
    repo = Repository.of(uow)
    if repo.account(contract["id"]) is None:
        repo.insert_account(domain.account_from_contract(contract, repository.current_time()))


def amend_account(uow: UnitOfWork, contract: dict, effective_date: str) -> None:
    repo = Repository.of(uow)
    account = _activated_account(repo, contract["id"])
    after = domain.amend_account(account, contract, effective_date, repository.current_time())
    if after is not account:
        repo.replace_account(account, after)


def end_account(uow: UnitOfWork, contract: dict, last_day: str) -> None:
    repo = Repository.of(uow)
    account = _activated_account(repo, contract["id"])
    repo.replace_account(account, domain.end_account(account, contract["status"], last_day,
                                                     repository.current_time()))


def record_sla_credit(uow: UnitOfWork, breach: dict) -> None:
    """The credit owed for a breached window, billed on the invoice of the period the window ends in (or the next
    one not invoiced yet). When every period is invoiced already (the breach of a contract's last window is
    evaluated after its last invoice), a credit note on the invoice of the window's period settles it."""
    repo = Repository.of(uow)
    account = _activated_account(repo, breach["contract_id"])
    window = {"start": domain.parse_time(breach["window"]["start"]), "end": domain.parse_time(breach["window"]["end"])}
    last_day = (window["end"] - timedelta(milliseconds=1)).date()
    period = domain.open_period_for(account, last_day)
    credit = {"id": domain.credit_id(breach["sla"]["id"], breach["window"]["start"]), "contract_id": account["id"],
              "tenant_id": account["tenant_id"], "provider_id": account["provider_id"],
              "sla_id": breach["sla"]["id"], "metric": breach["sla"]["metric"], "window": window,
              "owed": breach["credit"], "remaining": breach["credit"],
              "bill_key": domain.bill_key(account["id"], period[0]), "recorded_at": repository.current_time()}
    if domain.next_period(account) is None:
        credit["bill_key"] = None  # no invoice will carry it
    if not repo.insert_credit(credit):
        return  # this window's credit is recorded already
    repo.touch_account(account)
    if credit["bill_key"] is None:
        _settle_by_credit_note(uow, repo, credit, repo.invoice_of_period(account["id"], period[0]))


def _settle_by_credit_note(uow: UnitOfWork, repo: Repository, credit: dict, invoice: dict | None) -> None:
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
    note = _credit_note(uow, repo, invoice, net + tax, f"SLA credit: {credit['metric']}, window "
                        f"{window['start'].date().isoformat()} to {window['end'].date().isoformat()}",
                        split=(net, tax))
    repo.carry_credits([(credit["id"], {"remaining": domain.money(owed - net, invoice["currency"]),
                                        "credit_note_id": note["id"]})])


# -- billable items ------------------------------------------------------------------------------------------------


def _account_for(repo: Repository, party: Party, contract_id: Any) -> dict:
    return domain.visible(repo.account(contract_id), *party, "Billing account of contract", contract_id)


def providers_today(repo: Repository, account: dict, now: datetime) -> date:
    """Today where the account's provider works (``domain.providers_today``)."""
    return domain.providers_today(repo.providers([account["provider_id"]]).get(account["provider_id"]), now)


def submit_items(uow: UnitOfWork, party: Party, contract_id: str, items: list[dict]) -> dict:
    """Time entries, usage or a delivered milestone, one or a batch, each with its idempotency key. A key seen before
    with the same content is a duplicate (acknowledged, not counted again); with other content, or an item refused
    by the rules, the whole batch is refused with the reason per key."""
    repo = Repository.of(uow)
    account = _account_for(repo, party, contract_id)
    domain.only(party[0], "provider", action="submit billable items")
    now = repository.current_time()
    today = providers_today(repo, account, now)
    weeks = {domain.week_of(item["date"]) for item in items}
    batch = domain.ItemBatch(account, today, {week: repo.hours_by_day(account["id"], week) for week in weeks},
                             repo.milestones_taken(account["id"], sorted(
                                 {item["milestone"] for item in items if item["kind"] == "milestone"})))
    claims = claim_batch(items, repo.items_by_key(account["id"], [item["key"] for item in items]).get,
                         ITEM_CONTENT, "item", batch.refusal, "Some items cannot be billed; none were recorded.")
    answers = [(earlier, "duplicate") if earlier is not None
               else (domain.new_item(account, item, repository.new_id("itm"), now), "recorded")
               for item, earlier in claims]
    new = [item for item, outcome in answers if outcome == "recorded"]
    repo.insert_items(new)
    return {"contract_id": account["id"], "recorded": len(new), "duplicate": len(answers) - len(new),
            "items": [{**schemas.item_to_wire(item), "outcome": outcome} for item, outcome in answers]}


def list_items(repo: Repository, party: Party, contract_id: str, status: str | None, limit: int,
               after: str | None) -> dict:
    account = _account_for(repo, party, contract_id)
    rows = repo.items_of(account["id"], status, after, limit + 1)
    page = rows[:limit]
    return {"items": [schemas.item_to_wire(i) for i in page],
            "next_cursor": page[-1]["id"] if len(rows) > limit else None}


def review_item(uow: UnitOfWork, party: Party, contract_id: str, item_id: str, decision: str,
                reason: str | None) -> dict:
    """The client approves (it will be billed) or rejects (with the reason) a submitted item."""
    repo = Repository.of(uow)
    account = _account_for(repo, party, contract_id)
    domain.only(party[0], "client", action="approve or reject billable items")
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


def account_summary(repo: Repository, party: Party, contract_id: str) -> dict:
    """The account's terms, what was invoiced through when, and its invoices' balances."""
    account = _account_for(repo, party, contract_id)
    now = repository.current_time()
    summaries = [domain.balance_summary(i, now) for i in repo.invoices_of({"contract_id": account["id"]}, None, 0)]
    currency = account["currency"]

    def total(field: str, status: str | None = None) -> dict:
        return domain.money(sum((domain.amount_of(s[field]) for s in summaries
                                 if status is None or s["status"] == status), domain.ZERO), currency)

    return jsonable({
        "contract_id": account["id"], "tenant_id": account["tenant_id"], "provider_id": account["provider_id"],
        "title": account["title"], "status": account["status"], "currency": currency,
        "terms": account["terms"], "start_date": account["start_date"], "end_date": account["end_date"],
        "invoiced_through": account["invoiced_through"], "next_period_end": account["next_period_end"],
        "invoiced": total("total"), "paid": total("paid"), "credited": total("credited"),
        "balance": total("balance"), "overdue": total("balance", "overdue"),
        "sla_credits_owed": domain.money(sum((domain.amount_of(c["remaining"])
                                              for c in repo.credits_owed(account["id"])), domain.ZERO), currency),
        "credit_balance": domain.money(domain.credit_balance_of(account), currency),
        "sla_credits": [schemas.credit_to_wire(c) for c in repo.credits_of(account["id"])],
        "invoices": summaries,
    })


# -- invoice runs --------------------------------------------------------------------------------------------------


def run_invoices(db: MongoDatabase, transact: Callable[[Callable[[UnitOfWork], Any]], Any],
                 settings: BillingSettings, as_of: str | None, tenant_id: str | None) -> dict:
    """Invoice every period that ended before ``as_of`` (default today, never later), for one tenant or all."""
    return runs.run(db, transact, as_of=domain.check_run_date(as_of, repository.current_time().date().isoformat()),
                    tenant_id=tenant_id, tax_rates=settings.tax_rates, batch_size=settings.run_batch_size,
                    clock=repository.current_time)


# -- invoices ------------------------------------------------------------------------------------------------------


def _invoice_for(repo: Repository, party: Party, invoice_id: Any) -> dict:
    return domain.visible(repo.invoice(invoice_id), *party, "Invoice", invoice_id)


def list_invoices(repo: Repository, party: Party, status: str | None, contract_id: str | None, limit: int,
                  after: str | None) -> dict:
    """A page of the invoices the party may see, by id, filtered by their status now (which is computed, not
    stored: pages are read until one is full)."""
    now = repository.current_time()
    items: list[dict] = []
    while len(items) <= limit:
        rows = repo.invoices_visible_to(*party, contract_id, after, limit + 1)
        for row in rows:
            summary = schemas.invoice_summary(row, now)
            if status is None or summary["status"] == status:
                items.append(summary)
        if len(rows) <= limit:
            break
        after = rows[-1]["id"]
    page = items[:limit]
    return {"items": page, "next_cursor": page[-1]["id"] if len(items) > limit else None}


def _invoice_wire(repo: Repository, invoice: dict) -> dict:
    return schemas.invoice_to_wire(invoice, repository.current_time(),
                                   repo.records_of(repository.PAYMENTS, invoice["id"]),
                                   repo.records_of(repository.CREDIT_NOTES, invoice["id"]))


def get_invoice(repo: Repository, party: Party, invoice_id: str) -> dict:
    return _invoice_wire(repo, _invoice_for(repo, party, invoice_id))


def printable(repo: Repository, party: Party, invoice_id: str) -> tuple[dict, dict | None, dict | None]:
    """What an invoice document shows: the invoice (wire form), its client and its provider."""
    invoice = get_invoice(repo, party, invoice_id)
    return (invoice, repo.tenant(invoice["tenant_id"]),
            repo.providers([invoice["provider_id"]]).get(invoice["provider_id"]))


def record_payment(uow: UnitOfWork, party: Party, invoice_id: str, loaded: dict) -> dict:
    """A payment against an invoice, received by now: full, partial or over. What it pays beyond the balance becomes
    the account's credit balance (the next invoice uses it, or it is refunded). An invoice credited in full takes
    no payment. Its ``reference`` is its idempotency key: the same reference again is the same payment."""
    repo = Repository.of(uow)
    invoice = _invoice_for(repo, party, invoice_id)
    domain.only(party[0], "client", "operator", action="record payments")
    domain.require_positive_in(invoice["currency"], loaded["amount"], "Pay")
    if domain.seen_reference(repo.payment_by_reference(invoice["id"], loaded["reference"]), loaded):
        return {**_invoice_wire(repo, invoice), "outcome": "duplicate"}
    now = repository.current_time()
    received_at = loaded["received_at"] or now
    domain.check_payable(invoice, received_at, now)
    after, excess = domain.with_payment(invoice, loaded["amount"].amount)
    currency = invoice["currency"]
    payment = {"id": repository.new_id("pay"), "invoice_id": invoice["id"],
               "tenant_id": invoice["tenant_id"], "provider_id": invoice["provider_id"],
               "contract_id": invoice["contract_id"], "amount": domain.money(loaded["amount"].amount, currency),
               "to_credit_balance": domain.money(excess, currency),
               "reference": loaded["reference"], "received_at": received_at, "recorded_at": now}
    repo.insert(repository.PAYMENTS, payment)
    repo.replace_invoice(invoice, after)
    if excess:
        account = _activated_account(repo, invoice["contract_id"])
        repo.replace_account(account, domain.with_credit_balance_change(account, excess, now))
    uow.emit(**events.event(events.PAYMENT_RECORDED, invoice["id"], invoice, jsonable(
        events.payment_recorded(schemas.payment_to_wire(payment), domain.balance_summary(after, now)))))
    return {**_invoice_wire(repo, after), "outcome": "recorded"}


def record_refund(uow: UnitOfWork, party: Party, contract_id: str, loaded: dict) -> dict:
    """Money of the account's credit balance paid back to the client (the provider or the operator records it; its
    ``reference`` is its idempotency key). At most the credit balance."""
    repo = Repository.of(uow)
    account = _account_for(repo, party, contract_id)
    domain.only(party[0], "provider", "operator", action="record refunds")
    domain.require_positive_in(account["currency"], loaded["amount"], "Refund")
    earlier = repo.refund_by_reference(account["id"], loaded["reference"])
    if domain.seen_reference(earlier, loaded):
        return {**schemas.refund_to_wire(earlier), "outcome": "duplicate"}
    now = repository.current_time()
    after = domain.with_credit_balance_change(account, -loaded["amount"].amount, now)
    refund = {"id": repository.new_id("rfd"), "contract_id": account["id"], "tenant_id": account["tenant_id"],
              "provider_id": account["provider_id"], "amount": domain.money(loaded["amount"].amount,
                                                                            account["currency"]),
              "reference": loaded["reference"], "recorded_at": now}
    repo.insert(repository.REFUNDS, refund)
    repo.replace_account(account, after)
    return {**schemas.refund_to_wire(refund), "outcome": "recorded"}


def issue_credit_note(uow: UnitOfWork, party: Party, invoice_id: str, loaded: dict, key: str | None) -> dict:
    """Corrects an issued invoice (which never changes) by crediting part or all of it, with the reason; numbered
    gaplessly in its issuer's credit note series. With an idempotency key, the same request again is the same note
    (a retry after a lost answer credits once); the key with another amount or reason is 409."""
    repo = Repository.of(uow)
    invoice = _invoice_for(repo, party, invoice_id)
    domain.only(party[0], "provider", "operator", action="issue credit notes")
    domain.require_positive_in(invoice["currency"], loaded["amount"], "Credit")
    earlier = repo.credit_note_by_key(invoice["id"], key) if key else None
    if earlier is not None:
        domain.same_credit_note(earlier, loaded["amount"].amount, loaded["reason"])
        return schemas.credit_note_to_wire(earlier)
    return schemas.credit_note_to_wire(_credit_note(uow, repo, invoice, loaded["amount"].amount, loaded["reason"],
                                                    idempotency_key=key))


def _credit_note(uow: UnitOfWork, repo: Repository, invoice: dict, amount: Decimal, reason: str,
                 idempotency_key: str | None = None, split: tuple[Decimal, Decimal] | None = None) -> dict:
    """A credit note of ``amount`` (gross) on ``invoice``, stating the net and tax it corrects (``split``, or pro
    rata of the invoice), numbered gaplessly in its issuer's series, and its event."""
    after = domain.with_credit_note(invoice, amount)
    now = repository.current_time()
    net, tax = split or domain.credit_note_split(invoice, amount)
    series = repository.series_of(invoice["provider_id"], invoice["lane"])
    sequence = repo.allocate_in_series(repository.CREDIT_NOTES, series)
    currency = invoice["currency"]
    note = {"id": repository.new_id("cn"), "number": domain.credit_note_number(sequence),
            "sequence": sequence, "invoice_id": invoice["id"], "invoice_number": invoice["number"],
            "tenant_id": invoice["tenant_id"], "provider_id": invoice["provider_id"],
            "contract_id": invoice["contract_id"], "amount": domain.money(amount, currency),
            "net": domain.money(net, currency), "tax": domain.money(tax, currency),
            "series": series, "reason": reason, "issued_at": now}
    if idempotency_key is not None:
        note["idempotency_key"] = idempotency_key
    repo.insert(repository.CREDIT_NOTES, note)
    repo.replace_invoice(invoice, after)
    uow.emit(**events.event(events.CREDIT_NOTE_ISSUED, invoice["id"], invoice, jsonable(
        events.credit_note_issued(schemas.credit_note_to_wire(note), domain.balance_summary(after, now)))))
    return note


def mark_overdue_invoices(db: MongoDatabase, transact: Callable[[Callable[[UnitOfWork], Any]], Any],
                          now: datetime, batch: int) -> None:
    """Invoices with a balance past their due time, each in its own transaction."""
    for invoice_id in Repository(db).overdue_candidates(now, batch):
        try:
            transact(lambda uow, iid=invoice_id: mark_overdue(uow, iid, now))
        except Exception as exc:  # another replica got there first, or a passing failure: next tick retries
            log.warning("overdue check of %s deferred: %s", invoice_id, exc)


def mark_overdue(uow: UnitOfWork, invoice_id: str, now: datetime) -> None:
    """An invoice with a balance past its due time is marked overdue and announced, once."""
    repo = Repository.of(uow)
    invoice = repo.invoice(invoice_id)
    if invoice is None or not repo.mark_overdue(invoice_id, now):
        return
    balance = domain.balance_summary({**invoice, "overdue_at": now}, now)
    uow.emit(**events.event(events.INVOICE_OVERDUE, invoice_id, invoice, jsonable(
        events.invoice_overdue(invoice, balance, now))))


# -- cost reports --------------------------------------------------------------------------------------------------


def set_in_house_costs(uow: UnitOfWork, tenant_id: str, costs: dict) -> dict:
    """The client's estimate of what each category of work would cost it in-house, per month."""
    Repository.of(uow).set_in_house_costs(tenant_id, costs, repository.current_time())
    return {"monthly": costs}


def in_house_costs(repo: Repository, tenant_id: str) -> dict:
    return {"monthly": repo.in_house_costs(tenant_id)}


def cost_report(repo: Repository, tenant_id: str, first: date, months: int) -> dict:
    """Spend over the invoices whose period starts in the ``months`` months from ``first``; see
    ``domain.cost_report``."""
    _, last = domain.report_period(first, months)
    invoices = repo.invoices_in(tenant_id, first.isoformat(), last.isoformat())
    return domain.cost_report(invoices, repo.in_house_costs(tenant_id), first, months,
                              repo.credit_notes_of([invoice["id"] for invoice in invoices]))


def health(repo: Repository) -> dict:
    return repo.health()
