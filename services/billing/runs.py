"""The invoice run: every account whose next billing period ended before ``as_of`` gets that period's invoice.

Accounts are taken a tenant at a time, up to ``batch_size`` per transaction, one such transaction at a time per
process (``ISSUING``: concurrent runs take turns, a batch at a time). One transaction reads the batch's
accounts, their approved items and open SLA credits, allocates the tenant's next invoice numbers from its counter,
inserts the invoices, advances each account past the period (conditionally on its revision), carries what credits
are left and writes the events to the outbox. Hence:

- **Gapless and unique numbers**: numbers are allocated in the transaction that inserts the invoices; two runs at
  once both write the tenant's counter, so one of them conflicts and retries, and on retry finds the accounts
  already advanced and issues nothing. An aborted transaction allocates nothing.
- **Nothing twice**: an account advanced past a period is no longer due; ``(contract, period start)`` is also a
  unique key of the invoices.
- **Nothing lost**: approving an item or recording a credit writes the account too, so it conflicts with a run
  closing the period it was assigned to (one retries: the item lands in this invoice or the next).
- A period with nothing to bill closes without an invoice (and without using a number).

A handler module (it reads and writes through the repository, one transaction per batch), kept apart from
``handlers`` so the benchmark runs exactly this code.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from typing import Any

from pymongo.database import Database as MongoDatabase

from shared.runtime.persistence import UnitOfWork, is_duplicate
from shared.vocabulary.errors import Conflict, OutcomeUnknown, Unavailable
from shared.vocabulary.fields import jsonable
from shared.vocabulary.shoring import shoring_class

from . import domain, events, schemas
from .repository import INVOICES, PAYMENTS, Repository, new_id, series_of
from .tax import tax_for

log = logging.getLogger(__name__)

DUE_SCAN = 100_000
# A batch's transaction holds every item of its accounts: several at once in one process only share its CPU and the
# database's, and under load each ran past its time budget and was deferred, its work thrown away, again and again
# (`make bench-scaling --contracts 2000`: 109 batches deferred with one worker, 220 with two, ten runs asked at once
# per worker). The runs of a process (RPC calls, its timer) take turns, a batch at a time.
ISSUING = threading.Semaphore(1)


def shoring_of(tenant: dict | None, provider: dict | None) -> str | None:
    if not tenant or not provider:
        return None
    return shoring_class(tenant["country"], tenant["time_zone"], provider["country"], provider["time_zone"]).value


def issue_batch(uow: UnitOfWork, tenant_id: str, contract_ids: list[str], *, as_of: str,
                tax_rates: dict[str, tuple[str, str]], now: datetime) -> tuple[int, list[str]]:
    """Invoice the due period of each account of ``contract_ids`` (one tenant's): (periods closed, numbers)."""
    repo = Repository.of(uow)
    accounts = [a for a in repo.accounts(contract_ids) if a["next_period_end"] and a["next_period_end"] < as_of]
    if not accounts:
        return 0, []
    periods = {a["id"]: domain.next_period(a) for a in accounts}
    keys = {a["id"]: domain.bill_key(a["id"], periods[a["id"]][0]) for a in accounts}
    items: dict[str, list[dict]] = defaultdict(list)
    for item in repo.approved_items(list(keys.values())):
        items[item["bill_key"]].append(item)
    credits: dict[str, list[dict]] = defaultdict(list)
    for credit in repo.open_credits(list(keys.values())):
        credits[credit["bill_key"]].append(credit)
    tenant = repo.tenant(tenant_id)
    providers = repo.providers([a["provider_id"] for a in accounts])

    advances, billable, carried = [], [], []
    for account in accounts:
        period = periods[account["id"]]
        after = domain.with_next_period({**account, "invoiced_through": period[1],
                                         "revision": account["revision"] + 1})
        advances.append((account, after))
        key = keys[account["id"]]
        if domain.charge_lines(account, period, items[key]):
            billable.append((account, after, period, key))
        else:
            # Nothing charged: credits wait for the next invoice that has charges to set them against.
            carried += _carried(credits[key], after, [])
    invoices, payments = [], []
    zone = tenant.get("time_zone") if tenant else None
    by_series: dict[str, list[tuple[dict, dict, tuple[str, str], str]]] = defaultdict(list)
    for entry in billable:  # an issuer's series of the account's lane
        by_series[series_of(entry[0]["provider_id"], entry[0]["lane"])].append(entry)
    for series, entries in sorted(by_series.items()):
        first = repo.allocate_in_series(INVOICES, series, len(entries))
        for offset, (account, after, period, key) in enumerate(entries):
            provider = providers.get(account["provider_id"])
            tax = tax_for(tenant["country"] if tenant else None, tax_rates, provider["country"] if provider else None)
            invoice = domain.build_invoice(
                account, period, items[key], credits[key], tax=tax,
                shoring=shoring_of(tenant, providers.get(account["provider_id"])),
                invoice_id=new_id("inv"), sequence=first + offset, now=now, client_zone=zone, series=series,
                parties=(domain.party_snapshot(provider, account["provider_id"], supplier=True),
                         domain.party_snapshot(tenant, tenant_id)))
            carried += _carried(credits[key], after, invoice["credit_applications"])
            invoice, used = domain.with_credit_balance(invoice, domain.credit_balance_of(account))
            if used:
                after["credit_balance"] = domain.money(domain.credit_balance_of(account) - used, account["currency"])
                payments.append(_from_credit_balance(invoice, used, now))
            invoices.append(invoice)
    repo.insert_invoices(invoices)
    for payment in payments:
        repo.insert(PAYMENTS, payment)
    repo.advance_accounts(advances)
    repo.carry_credits(carried)
    uow.emit_many(announcements(invoices, credits, keys))
    return len(advances), [invoice["number"] for invoice in invoices]


def _from_credit_balance(invoice: dict, used: Decimal, now: datetime) -> dict:
    """The payment an invoice received from its account's credit balance (an earlier overpayment)."""
    return {"id": new_id("pay"), "invoice_id": invoice["id"], "tenant_id": invoice["tenant_id"],
            "provider_id": invoice["provider_id"], "contract_id": invoice["contract_id"],
            "amount": domain.money(used, invoice["currency"]),
            "to_credit_balance": domain.money(-used, invoice["currency"]),
            "reference": f"credit-balance:{invoice['id']}", "received_at": now, "recorded_at": now}


def _carried(credits: list[dict], after: dict, applications: list[dict]) -> list[tuple[str, dict]]:
    """Credits fully applied leave every period; what is left of the others moves to the account's next one."""
    applied = {a["credit_id"]: a for a in applications}
    upcoming = domain.next_period(after)
    updates = []
    for credit in credits:
        remaining = applied[credit["id"]]["remaining"] if credit["id"] in applied else credit["remaining"]
        done = domain.amount_of(remaining) <= 0
        updates.append((credit["id"], {
            "remaining": remaining,
            "bill_key": None if done or upcoming is None else domain.bill_key(after["id"], upcoming[0]),
        }))
    return updates


def announcements(invoices: list[dict], credits: dict[str, list[dict]], keys: dict[str, str]) -> list[dict]:
    out = []
    for invoice in invoices:
        wire = schemas.invoice_to_event(invoice)
        out.append(events.event(events.INVOICE_ISSUED, invoice["id"], invoice, events.invoice_issued(wire)))
        by_id = {c["id"]: c for c in credits[keys[invoice["contract_id"]]]}
        for application in invoice["credit_applications"]:
            data = jsonable(events.credit_applied(by_id[application["credit_id"]], application, invoice))
            out.append(events.event(events.CREDIT_APPLIED, invoice["contract_id"], invoice, data))
    return out


def run(db: MongoDatabase, transact: Callable[[Callable[[UnitOfWork], Any]], Any], *, as_of: str,
        tenant_id: str | None, tax_rates: dict[str, tuple[str, str]], batch_size: int,
        clock: Callable[[], datetime]) -> dict:
    """Issue every due invoice up to ``as_of`` (exclusive), period after period; a summary of what was issued."""
    issued: list[str] = []
    deferred = 0
    while True:
        due = Repository(db).due_accounts(as_of, tenant_id, DUE_SCAN)
        if not due:
            break
        progressed = False
        for tenant, rows in groupby(due, key=lambda row: row[0]):
            ids = [contract_id for _, contract_id in rows]
            for start in range(0, len(ids), batch_size):
                batch = ids[start:start + batch_size]
                try:
                    with ISSUING:
                        closed, numbers = transact(lambda uow, t=tenant, b=batch: issue_batch(
                            uow, t, b, as_of=as_of, tax_rates=tax_rates, now=clock()))
                except (Conflict, Unavailable, OutcomeUnknown) as exc:  # a rerun issues nothing twice
                    deferred += 1
                    log.warning("invoice batch of %s deferred: %s", tenant, exc)
                    continue
                except Exception as exc:
                    if not is_duplicate(exc):
                        raise
                    deferred += 1  # another run issued these meanwhile
                    continue
                issued.extend(numbers)
                progressed = progressed or closed > 0
        if not progressed:
            break
    return {"as_of": as_of, "invoices_issued": len(issued), "deferred_batches": deferred}
