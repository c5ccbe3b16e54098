"""Billing's rules: accounts from contracts, billing periods, billable items and their checks, invoices (lines,
SLA credits, tax, totals), balances and cost reports.

Pure functions over plain dicts; no I/O. Money is ``Decimal``; dates are ``YYYY-MM-DD`` strings (they sort as
dates), timestamps aware ``datetime``s.

Rules (docs/design/billing.md has the longer story):

- **Periods.** monthly = calendar months, weekly = ISO weeks (Monday to Sunday), clipped to the contract's start
  and end dates. An account is invoiced period after period; ``invoiced_through`` is the last day invoiced.
- **What a period bills.** Approved items are assigned to a period when approved: the period of their date, or the
  first period not yet invoiced when that one is (a late approval is billed on the next invoice, never lost).
  SLA credits likewise, by the end of their window.
- **Lines, rounded once each, half up to the currency's minor unit** (``shared.vocabulary.money.round_money``):
  time = hours x hourly price (hourly contracts; on a retainer the hours are shown at no charge: the retainer
  pays for them); usage = units x unit price (per-unit contracts); milestone = its amount once the client accepted
  it; retainer = monthly price x days of the period in its first month / days in that month (a whole calendar
  month is exactly the price); a fixed-price contract without milestones bills its price in its last period.
- **SLA credits** (owed as contracting computed them, already capped per window) are negative lines. They never
  take an invoice below zero: a credit larger than what is left is applied up to it and the rest carried to the
  next invoice.
- **Tax** = net (charges - credits) x the rate of the treatment by both parties' countries (``tax.py``: domestic
  VAT/GST, or none under reverse charge), rounded once.
- **Terms** in force on the day of the work price each line (``terms_on``): an amendment never reprices earlier
  work.
- **Balance** = total - payments - credit notes; a payment beyond it is the account's credit balance, which pays
  the next invoice. An invoice with a balance once its due date (the client's issue day + payment_due_days) has
  passed in the client's time zone is overdue, announced once. A credit note states the net and tax it corrects.
"""

from __future__ import annotations

import calendar
import hashlib
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shared.vocabulary.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.vocabulary.fields import LAST_YEAR
from shared.vocabulary.money import Money, minor_unit, round_money

ZERO = Decimal(0)
FIXED_KINDS = frozenset({"retainer", "milestone"})
VARIABLE_KINDS = frozenset({"time", "usage"})
ITEM_KINDS = ("time", "usage", "milestone")
MAX_HOURS_PER_DAY = Decimal(24)


def money(amount: Decimal, currency: str) -> dict:
    return {"amount": format(round_money(amount, currency), "f"), "currency": currency}


def amount_of(value: dict | None) -> Decimal:
    return Decimal(value["amount"]) if value else ZERO


def decimal_text(value: Decimal) -> str:
    """A quantity without trailing zeros ("2.5", "3")."""
    text = format(value.normalize(), "f")
    return text


# -- periods -----------------------------------------------------------------------------------------------------


def day(text: str) -> date:
    return date.fromisoformat(text)


def period_containing(moment: date, cycle: str) -> tuple[date, date]:
    """The calendar period (monthly: the month; weekly: the ISO week) containing ``moment``."""
    if cycle == "weekly":
        start = moment - timedelta(days=moment.weekday())
        return start, start + timedelta(days=6)
    last = calendar.monthrange(moment.year, moment.month)[1]
    return moment.replace(day=1), moment.replace(day=last)


def billing_period(account: dict, moment: date) -> tuple[str, str]:
    """The account's period containing ``moment``, clipped to the contract's dates and, for a moment after what
    was invoiced, to the first day not invoiced: after an extension the cut-short last period is followed by the
    rest of its calendar period, never billed again from its start."""
    start, end = period_containing(moment, account["terms"]["billing_cycle"])
    start = max(start, day(account["start_date"]))
    through = account.get("invoiced_through")
    if through is not None and moment > day(through):
        start = max(start, day(through) + timedelta(days=1))
    if account["end_date"]:
        end = min(end, day(account["end_date"]))
    return start.isoformat(), end.isoformat()


def next_period(account: dict) -> tuple[str, str] | None:
    """The first period not invoiced yet; None when the contract ended and everything up to its end is."""
    if account["invoiced_through"] is None:
        first = day(account["start_date"])
    else:
        first = day(account["invoiced_through"]) + timedelta(days=1)
    if account["end_date"] and first > day(account["end_date"]):
        return None
    return billing_period(account, first)


def open_period_for(account: dict, moment: date) -> tuple[str, str]:
    """Where something dated ``moment`` is billed: its own period, or the first one not invoiced yet."""
    upcoming = next_period(account)
    own = billing_period(account, min(moment, day(account["end_date"])) if account["end_date"] else moment)
    if upcoming is None:
        return own  # nothing is left to invoice: the caller refuses it (``check_billable``)
    return own if own[0] >= upcoming[0] else upcoming


def bill_key(contract_id: str, period_start: str) -> str:
    return f"{contract_id}:{period_start}"


def with_next_period(account: dict) -> dict:
    """The account with ``next_period_end`` (what the invoice run looks for) recomputed."""
    upcoming = next_period(account)
    return {**account, "next_period_end": upcoming[1] if upcoming else None}


# -- accounts ----------------------------------------------------------------------------------------------------


def terms_on(account: dict, moment: date) -> dict:
    """The terms in force on ``moment``: the latest version whose effective date is on or before it (the first
    version before the start). An amendment never reaches back before its effective date."""
    versions = account.get("terms_versions") or [{"effective_date": account["start_date"], "terms": account["terms"]}]
    chosen = versions[0]["terms"]
    for version in versions:
        if version["effective_date"] <= moment.isoformat():
            chosen = version["terms"]
    return chosen


def terms_spans(account: dict, start: date, end: date) -> list[tuple[date, date, dict]]:
    """[start, end] cut where a terms version takes effect: (first day, last day, terms) each."""
    cuts = sorted({day(v["effective_date"]) for v in account.get("terms_versions") or []
                   if start < day(v["effective_date"]) <= end})
    spans, first = [], start
    for cut in [*cuts, end + timedelta(days=1)]:
        spans.append((first, cut - timedelta(days=1), terms_on(account, first)))
        first = cut
    return spans


def account_from_contract(contract: dict, now: datetime) -> dict:
    """A billing account from an activated contract (``events.CONTRACT_ACTIVATED``)."""
    account = {
        "id": contract["id"],
        "tenant_id": contract["tenant_id"],
        "provider_id": contract["provider_id"],
        "centre_id": contract["centre_id"],
        "title": contract["title"],
        "category": contract["category"],
        "model": contract["model"],
        "lane": contract["lane"],
        "currency": contract["terms"]["price"]["currency"],
        "terms": contract["terms"],
        "milestones": contract["milestones"],
        "start_date": contract["start_date"],
        "end_date": contract["end_date"],
        "status": contract["status"],
        "version": contract["version"],
        "terms_versions": [{"version": contract["version"], "effective_date": contract["start_date"],
                            "terms": contract["terms"]}],
        "credit_balance": money(ZERO, contract["terms"]["price"]["currency"]),
        "invoiced_through": None,
        "created_at": now,
        "updated_at": now,
        "revision": 1,
    }
    return with_next_period(account)


def amend_account(account: dict, contract: dict, effective_date: str, now: datetime) -> dict:
    """New terms from ``events.CONTRACT_AMENDED``: they bill the work dated on or after the amendment's effective date
    (never earlier work, whenever it is invoiced). An older version arriving late changes nothing."""
    if contract["version"] <= account["version"]:
        return account
    versions = account.get("terms_versions") or [{"version": account["version"],
                                                  "effective_date": account["start_date"], "terms": account["terms"]}]
    versions = [*versions, {"version": contract["version"], "effective_date": effective_date,
                            "terms": contract["terms"]}]
    return with_next_period({**account, "terms": contract["terms"], "terms_versions": versions,
                             "milestones": contract["milestones"],
                             "end_date": contract["end_date"], "title": contract["title"],
                             "version": contract["version"], "updated_at": now,
                             "revision": account["revision"] + 1})


def end_account(account: dict, status: str, last_day: str, now: datetime) -> dict:
    """A completed or terminated contract bills up to ``last_day`` (never past its agreed end)."""
    end = last_day if not account["end_date"] else min(last_day, account["end_date"])
    end = max(end, account["start_date"])
    return with_next_period({**account, "status": status, "end_date": end, "updated_at": now,
                             "revision": account["revision"] + 1})


# -- who may see and do what ---------------------------------------------------------------------------------------


def visible(record: dict | None, kind: str, party_id: str | None, what: str, record_id: Any) -> dict:
    """The record when the party may see it: its client organisation, its provider, or the operator; to anyone
    else it does not exist (404)."""
    if record is None or (kind == "client" and record["tenant_id"] != party_id) or (
            kind == "provider" and record["provider_id"] != party_id):
        raise NotFound(f"{what} {record_id} not found.")
    return record


def only(kind: str, *allowed: str, action: str) -> None:
    if kind not in allowed:
        raise Forbidden(f"Only the {' or '.join(allowed)} may {action}.")


def require_positive_in(currency: str, amount: Money, verb: str) -> None:
    """A positive amount in ``currency`` (the invoice's or the account's), in whole minor units (no 0.4 JPY, no
    100.005 EUR: a payment or a credit is recorded exactly as sent, never rounded)."""
    if amount.currency != currency or amount.amount <= 0:
        raise ValidationFailed(f"{verb} a positive amount in the invoice's currency.",
                               {"amount": [f"A positive amount in {currency}."]})
    unit = minor_unit(currency)
    if amount.amount % unit:
        raise ValidationFailed(f"{verb} an amount in whole units of {unit} {currency}.",
                               {"amount": [f"{currency} amounts are in steps of {unit}."]})


def seen_reference(earlier: dict | None, loaded: dict) -> bool:
    """A payment or refund's ``reference`` is its idempotency key: seen before with the same amount it is the same
    one (True), with another amount a conflict."""
    if earlier is None:
        return False
    if amount_of(earlier["amount"]) != loaded["amount"].amount:
        raise Conflict("This reference was already used for another amount.", {"reference": loaded["reference"]})
    return True


def same_credit_note(earlier: dict, amount: Decimal, reason: str) -> None:
    """A credit note's idempotency key seen before must come with the same amount and reason (409 otherwise)."""
    if (amount_of(earlier["amount"]), earlier["reason"]) != (amount, reason):
        raise Conflict("This idempotency key was already used for another credit note.",
                       {"idempotency_key": ["Already used with a different amount or reason."]})


def check_run_date(as_of: str | None, today: str) -> str:
    """The day an on-demand invoice run looks up to: ``as_of`` (never after today) or today."""
    if as_of and as_of > today:  # a bound that moves with the clock, not the request's shape: 409
        raise Conflict("An invoice run cannot look into the future.", {"as_of": ["Today at the latest."]})
    return as_of or today


def providers_today(provider: dict | None, now: datetime) -> date:
    """Today where the provider works (its time zone, from its events), so a provider east of UTC can bill its own
    today; where that is not known yet, today anywhere on Earth (UTC+14)."""
    zone = (provider or {}).get("time_zone")
    if zone:
        return now.astimezone(ZoneInfo(zone)).date()
    return (now + timedelta(hours=14)).date()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def credit_id(sla_id: str, window_start: str) -> str:
    """One credit per SLA window, whatever how often its breach is delivered."""
    return "crd_" + hashlib.sha256(f"{sla_id}:{window_start}".encode()).hexdigest()[:32]


# -- billable items ------------------------------------------------------------------------------------------------


def check_billable(account: dict, item: dict, today: date, hours_that_week: Decimal,
                   milestone_taken: bool, hours_that_day: Decimal = ZERO) -> str | None:
    """Why ``item`` cannot be billed on this account (None when it can). ``today``: the provider's date;
    ``hours_that_week`` / ``hours_that_day``: the hours already submitted and not rejected in the item's ISO week
    and on its date; ``milestone_taken``: that milestone was already submitted."""
    when = day(item["date"])
    terms = terms_on(account, when)
    engagement = terms["engagement_type"]
    if when < day(account["start_date"]):
        return f"{item['date']} is before the contract starts ({account['start_date']})."
    if account["end_date"] and when > day(account["end_date"]):
        return f"{item['date']} is after the contract ends ({account['end_date']})."
    if when > today:
        return f"{item['date']} is in the future."
    if next_period(account) is None:
        return "The contract has ended and its last period is invoiced."
    kind = item["kind"]
    if kind == "time":
        if engagement not in ("hourly", "retainer"):
            return f"Time is not billed on a {engagement} contract."
        seats = Decimal(terms.get("seats") or 1)
        if hours_that_day + item["hours"] > MAX_HOURS_PER_DAY * seats:
            return (f"More than {MAX_HOURS_PER_DAY * seats} hours in a day for {seats} people on {item['date']} "
                    f"({decimal_text(hours_that_day)} already submitted).")
        weekly = terms.get("hours_per_week")
        if weekly:
            capacity = Decimal(weekly) * seats
            if hours_that_week + item["hours"] > capacity:
                return (f"Over the agreed capacity of {capacity} hours in the week of {item['date']} "
                        f"({decimal_text(hours_that_week)} already submitted).")
    elif kind == "usage":
        if engagement != "per_unit":
            return f"Usage is billed on per-unit contracts only, not on a {engagement} contract."
    elif kind == "milestone":
        index = item["milestone"]
        if index >= len(account["milestones"]):
            return f"The contract has no milestone {index}."
        if milestone_taken:
            return f"Milestone {index} ({account['milestones'][index]['title']}) was already submitted."
    return None


def week_of(item_date: str) -> str:
    """The ISO week (its Monday) an item's date falls in: capacity is counted per week."""
    return period_containing(day(item_date), "weekly")[0].isoformat()


class ItemBatch:
    """The checks of a batch of new billable items in order, each counting what the ones before it added: the hours
    of a day and a week (``hours``: per week, per date, submitted before) and the milestones taken."""

    def __init__(self, account: dict, today: date, hours: dict[str, dict[str, Decimal]], milestones_taken: set[int]):
        self.account, self.today, self.hours = account, today, hours
        self.milestones_taken = set(milestones_taken)

    def refusal(self, item: dict) -> str | None:
        """Why ``item`` cannot be billed (None: it can, and it counts from now on)."""
        days = self.hours[week_of(item["date"])]
        taken = item["kind"] == "milestone" and item["milestone"] in self.milestones_taken
        why = check_billable(self.account, {**item, "hours": Decimal(item.get("hours") or 0)}, self.today,
                             sum(days.values(), ZERO), taken, days.get(item["date"], ZERO))
        if why is None and item["kind"] == "time":
            days[item["date"]] = days.get(item["date"], ZERO) + Decimal(item["hours"])
        if why is None and item["kind"] == "milestone":
            self.milestones_taken.add(item["milestone"])
        return why


def new_item(account: dict, item: dict, item_id: str, now: datetime) -> dict:
    """A submitted item as recorded (a milestone without a description is named after its title)."""
    if item["kind"] == "milestone" and not item.get("description"):
        item = {**item, "description": account["milestones"][item["milestone"]]["title"]}
    return {"id": item_id, "contract_id": account["id"], "tenant_id": account["tenant_id"],
            "provider_id": account["provider_id"], "hours": None, "units": None, "milestone": None, **item,
            "week": week_of(item["date"]), "status": "submitted", "reason": None, "submitted_at": now,
            "reviewed_at": None, "bill_key": None, "billing_period": None}


def review_item(item: dict, decision: str, reason: str | None, now: datetime) -> dict:
    """The client approves or rejects a submitted item (a reason is required to reject). Deciding the same way
    twice is a no-op; changing a decision is a conflict."""
    target = "approved" if decision == "approve" else "rejected"
    if item["status"] == target:
        return item
    if item["status"] != "submitted":
        raise Conflict(f"The item is already {item['status']}.", {"status": item["status"]})
    return {**item, "status": target, "reason": reason, "reviewed_at": now}


# -- invoices ------------------------------------------------------------------------------------------------------


def retainer_fee(price: Decimal, start: date, end: date) -> Decimal:
    days_in_month = calendar.monthrange(start.year, start.month)[1]
    return price * Decimal((end - start).days + 1) / days_in_month


def charge_lines(account: dict, period: tuple[str, str], items: list[dict]) -> list[dict]:
    """The positive lines of one period, unrounded amounts in ``raw``: time, usage, milestones, each by date, each
    at the price of the terms in force on its date (a retainer: one line per terms version in the period)."""
    currency = account["currency"]
    engagement = account["terms"]["engagement_type"]
    lines = []
    start, end = day(period[0]), day(period[1])
    if engagement == "retainer":
        for first, last, terms in terms_spans(account, start, end):
            price = Decimal(terms["price"]["amount"])
            days_in_month = calendar.monthrange(first.year, first.month)[1]
            lines.append({"kind": "retainer", "description": f"Retainer {first.isoformat()} to {last.isoformat()}",
                          "date": None, "quantity": Decimal((last - first).days + 1), "unit": "days",
                          "unit_price": money(price, currency),
                          "basis": f"{(last - first).days + 1}/{days_in_month} of the monthly retainer",
                          "raw": retainer_fee(price, first, last), "source_id": None})
    if engagement == "fixed" and not account["milestones"] and account["end_date"] == period[1]:
        price = Decimal(terms_on(account, end)["price"]["amount"])
        lines.append({"kind": "milestone", "description": "Fixed price", "date": period[1], "quantity": Decimal(1),
                      "unit": None, "unit_price": money(price, currency), "raw": price, "source_id": None})
    for item in sorted(items, key=lambda i: (ITEM_KINDS.index(i["kind"]), i["date"], i["submitted_at"], i["id"])):
        terms = terms_on(account, day(item["date"]))
        price = Decimal(terms["price"]["amount"])
        if item["kind"] == "time":
            billed = engagement == "hourly"
            hours = Decimal(item["hours"])
            description = item["description"] if billed else f"{item['description']} (within the retainer)"
            lines.append({"kind": "time", "description": description, "date": item["date"], "quantity": hours,
                          "unit": "hours", "unit_price": money(price, currency) if billed else None,
                          "raw": hours * price if billed else ZERO, "source_id": item["id"]})
        elif item["kind"] == "usage":
            units = Decimal(item["units"])
            lines.append({"kind": "usage", "description": item["description"], "date": item["date"],
                          "quantity": units, "unit": terms.get("unit") or "units",
                          "unit_price": money(price, currency), "raw": units * price, "source_id": item["id"]})
        else:
            milestone = account["milestones"][item["milestone"]]
            amount = Decimal(milestone["amount"]["amount"])
            lines.append({"kind": "milestone", "description": milestone["title"], "date": item["date"],
                          "quantity": Decimal(1), "unit": None, "unit_price": money(amount, currency), "raw": amount,
                          "source_id": item["id"]})
    return lines


def apply_credits(charges: Decimal, credits: list[dict]) -> list[tuple[dict, Decimal]]:
    """(credit, applied) for each credit, oldest window first, never more in all than ``charges``."""
    left = charges
    applied = []
    for credit in sorted(credits, key=lambda c: (c["window"]["end"], c["id"])):
        take = min(Decimal(credit["remaining"]["amount"]), left)
        applied.append((credit, take))
        left -= take
    return applied


def due_of(issued_at: datetime, payment_due_days: int, client_zone: str | None) -> tuple[str, datetime]:
    """(due date, the instant it has passed): the issue day in the client's time zone + the payment days; overdue
    from midnight after the due date there (UTC while billing has not heard of the client's time zone)."""
    zone = ZoneInfo(client_zone) if client_zone else UTC
    due = issued_at.astimezone(zone).date() + timedelta(days=payment_due_days)
    passed = datetime.combine(due + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return due.isoformat(), passed


PARTY_FIELDS = ("name", "legal_name", "address", "tax_id", "country")


def party_snapshot(party: dict | None, party_id: str, *, supplier: bool = False) -> dict:
    """A party as the invoice names it when issued (from billing's projection; an issued invoice keeps it even
    when the party later changes its name or address). The supplier's also carries its payment instructions."""
    party = party or {}
    snapshot = {"id": party_id, **{key: party.get(key) for key in PARTY_FIELDS}}
    if supplier:
        snapshot["payment_instructions"] = party.get("payment_instructions")
    return snapshot


def build_invoice(account: dict, period: tuple[str, str], items: list[dict], credits: list[dict], *,
                  tax: dict, shoring: str | None, invoice_id: str, sequence: int, now: datetime,
                  client_zone: str | None = None, series: str | None = None,
                  parties: tuple[dict, dict] | None = None) -> dict:
    """One period's invoice: lines rounded once each, SLA credits as negative lines, tax on the net, the total.
    ``tax`` is ``{"country", "name", "rate"}``. ``credit_applications`` lists what each credit gave. Due on the
    client's calendar (``due_of``); numbered in the issuer's ``series``."""
    currency = account["currency"]
    lines = [{**{k: v for k, v in line.items() if k != "raw"}, "amount": money(line["raw"], currency)}
             for line in charge_lines(account, period, items)]
    charges = sum((amount_of(line["amount"]) for line in lines), ZERO)
    applications = []
    for credit, applied in apply_credits(charges, credits):
        if applied <= 0:
            continue
        window = credit["window"]
        lines.append({"kind": "sla_credit",
                      "description": f"SLA credit: {credit['metric']}, {window['start'].date().isoformat()} to "
                                     f"{window['end'].date().isoformat()}",
                      "date": window["end"].date().isoformat(), "quantity": Decimal(1), "unit": None,
                      "unit_price": None, "amount": money(-applied, currency), "source_id": credit["id"]})
        applications.append({"credit_id": credit["id"], "applied": money(applied, currency),
                             "remaining": money(Decimal(credit["remaining"]["amount"]) - applied, currency)})
    credited = sum((Decimal(a["applied"]["amount"]) for a in applications), ZERO)
    net = charges - credited
    tax_amount = round_money(net * Decimal(tax["rate"]) / 100, currency)
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        by_kind[line["kind"]] += amount_of(line["amount"])
    due_date, due_at = due_of(now, account["terms"]["payment_due_days"], client_zone)
    return {
        "id": invoice_id,
        "series": series,
        "sequence": sequence,
        "number": invoice_number(sequence),
        "tenant_id": account["tenant_id"],
        "provider_id": account["provider_id"],
        "contract_id": account["id"],
        "title": account["title"],
        "category": account["category"],
        "model": account["model"],
        "shoring": shoring,
        "supplier": parties[0] if parties else party_snapshot(None, account["provider_id"], supplier=True),
        "client": parties[1] if parties else party_snapshot(None, account["tenant_id"]),
        "lane": account["lane"],
        "currency": currency,
        "period": {"start": period[0], "end": period[1]},
        "issued_at": now,
        "due_at": due_at,
        "due_date": due_date,
        "lines": [{**line, "quantity": decimal_text(line["quantity"])} for line in lines],
        "charges": money(charges, currency),
        "credits": money(credited, currency),
        "net": money(net, currency),
        "tax": {**tax, "amount": money(tax_amount, currency)},
        "total": money(net + tax_amount, currency),
        "fixed": money(sum((v for k, v in by_kind.items() if k in FIXED_KINDS), ZERO), currency),
        "variable": money(sum((v for k, v in by_kind.items() if k in VARIABLE_KINDS), ZERO), currency),
        "credit_applications": applications,
        "paid": money(ZERO, currency),
        "credited": money(ZERO, currency),
        "open": net + tax_amount > 0,
        "overdue_at": None,
        "revision": 1,
    }


def invoice_number(sequence: int) -> str:
    return f"INV-{sequence:06d}"


def credit_note_number(sequence: int) -> str:
    return f"CN-{sequence:06d}"


# -- balances ------------------------------------------------------------------------------------------------------


def balance_of(invoice: dict) -> Decimal:
    return amount_of(invoice["total"]) - amount_of(invoice["paid"]) - amount_of(invoice["credited"])


def status_of(invoice: dict, now: datetime) -> str:
    balance = balance_of(invoice)
    if balance < 0:
        return "overpaid"
    if balance == 0:
        return "credited" if amount_of(invoice["credited"]) and not amount_of(invoice["paid"]) else "paid"
    if now >= invoice["due_at"]:
        return "overdue"
    return "partially_paid" if amount_of(invoice["paid"]) or amount_of(invoice["credited"]) else "issued"


CLOCK_SKEW = timedelta(minutes=5)


def check_payable(invoice: dict, received_at: datetime, now: datetime) -> None:
    """A payment is received by now (give or take ``CLOCK_SKEW`` between the payer's clock and ours, as for SLA
    measurements), on an invoice that still asks for money (not credited in full)."""
    if received_at > now + CLOCK_SKEW:
        raise ValidationFailed("A payment cannot be received in the future.",
                               {"received_at": ["Now or earlier."]})
    if amount_of(invoice["total"]) - amount_of(invoice["credited"]) <= 0:
        raise Conflict("The invoice is credited in full: there is nothing to pay.",
                       {"credited": invoice["credited"]})


def with_payment(invoice: dict, amount: Decimal) -> tuple[dict, Decimal]:
    """(the invoice paid up to its balance, the excess): an overpayment pays the invoice and the rest becomes the
    account's credit balance (used by its next invoice, or refunded)."""
    applied = min(amount, max(balance_of(invoice), ZERO))
    after = {**invoice, "paid": money(amount_of(invoice["paid"]) + applied, invoice["currency"]),
             "revision": invoice["revision"] + 1}
    return {**after, "open": balance_of(after) > 0}, amount - applied


def credit_balance_of(account: dict) -> Decimal:
    return amount_of(account.get("credit_balance"))


def with_credit_balance_change(account: dict, change: Decimal, now: datetime) -> dict:
    """The account with ``change`` added to its credit balance (an overpayment adds, a refund or an invoice paid
    from it takes); it never goes below zero."""
    after = credit_balance_of(account) + change
    if after < 0:
        left = money(credit_balance_of(account), account["currency"])
        raise Conflict(f"The credit balance is {left['amount']} {account['currency']}: at most that can be refunded.",
                       {"credit_balance": left})
    return {**account, "credit_balance": money(after, account["currency"]), "updated_at": now,
            "revision": account["revision"] + 1}


def with_credit_balance(invoice: dict, available: Decimal) -> tuple[dict, Decimal]:
    """A new invoice paid from the account's credit balance, as far as it goes: (invoice, amount used)."""
    used = min(available, max(balance_of(invoice), ZERO))
    if used <= 0:
        return invoice, ZERO
    currency = invoice["currency"]
    after = {**invoice, "paid": money(amount_of(invoice["paid"]) + used, currency),
             "paid_from_credit_balance": money(used, currency)}
    return {**after, "open": balance_of(after) > 0}, used


def credit_note_split(invoice: dict, amount: Decimal) -> tuple[Decimal, Decimal]:
    """(net, tax) a credit note of ``amount`` (gross) corrects: the invoice's own proportion of net to total, the
    net rounded once, the tax the rest, so the two add up to the note."""
    total = amount_of(invoice["total"])
    net = round_money(amount * amount_of(invoice["net"]) / total, invoice["currency"]) if total else amount
    return net, amount - net


def sla_credit_split(invoice: dict, credit: Decimal) -> tuple[Decimal, Decimal]:
    """(net, tax) an SLA credit of ``credit`` corrects on an issued ``invoice``: exactly what it would have taken
    off as a line of that invoice (the net, at most the invoice's, and the tax the invoice would have charged
    less, its tax on the lower net rounded once), so a credit is worth the same however it lands."""
    net = min(credit, amount_of(invoice["net"]))
    rate = Decimal(invoice["tax"]["rate"])
    lower_tax = round_money((amount_of(invoice["net"]) - net) * rate / 100, invoice["currency"])
    return net, amount_of(invoice["tax"]["amount"]) - lower_tax


def with_credit_note(invoice: dict, amount: Decimal) -> dict:
    """A credit note corrects at most what is left of the invoice's total after earlier notes."""
    left = amount_of(invoice["total"]) - amount_of(invoice["credited"])
    if amount > left:
        raise Conflict(f"A credit note can credit at most {money(left, invoice['currency'])['amount']} "
                       f"{invoice['currency']} of this invoice.", {"creditable": money(left, invoice["currency"])})
    after = {**invoice, "credited": money(amount_of(invoice["credited"]) + amount, invoice["currency"]),
             "revision": invoice["revision"] + 1}
    return {**after, "open": balance_of(after) > 0}


def balance_summary(invoice: dict, now: datetime) -> dict:
    currency = invoice["currency"]
    return {"id": invoice["id"], "number": invoice["number"], "status": status_of(invoice, now),
            "total": invoice["total"], "paid": invoice["paid"], "credited": invoice["credited"],
            "balance": money(balance_of(invoice), currency)}


def note_net_and_tax(invoice: dict, note: dict) -> tuple[Decimal, Decimal]:
    """The net and tax a credit note corrects (a note recorded before they were stated: pro rata of its invoice)."""
    if note.get("net") is not None:
        return amount_of(note["net"]), amount_of(note["tax"])
    return credit_note_split(invoice, amount_of(note["amount"]))


def percent(part: Decimal, whole: Decimal) -> str | None:
    """``part`` as a percentage of ``whole``, to two decimals, half up; None of nothing."""
    if not whole:
        return None
    return format((part * 100 / whole).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")


# -- cost reports --------------------------------------------------------------------------------------------------


def months_between(start: date, end: date) -> Decimal:
    """Calendar months covered by [start, end], each partial month counted by its days."""
    total = ZERO
    cursor = start
    while cursor <= end:
        last = cursor.replace(day=calendar.monthrange(cursor.year, cursor.month)[1])
        upto = min(last, end)
        total += Decimal((upto - cursor).days + 1) / last.day
        cursor = last + timedelta(days=1)
    return total


def months_covered(periods: list[tuple[date, date]]) -> Decimal:
    """The calendar months (each by its days) the union of ``periods`` covers: the days a spend paid for."""
    total, reach = ZERO, None
    for start, end in sorted(periods):
        if reach is not None:
            start = max(start, reach + timedelta(days=1))
        if start <= end:
            total += months_between(start, end)
        reach = end if reach is None else max(reach, end)
    return total


# Nothing the platform dates lies past this day (``shared.vocabulary.fields``): a report period ends there at latest.
LAST_DAY = date(LAST_YEAR, 12, 31)


def months_later(start: date, months: int) -> date:
    """The same day of the month ``months`` later (the month's last day when it is shorter)."""
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def report_period(start: date, months: int) -> tuple[date, date]:
    """The first and last day of the ``months`` months from ``start``: [start, start + months)."""
    return start, min(months_later(start, months) - timedelta(days=1), LAST_DAY)


def cost_report(invoices: list[dict], in_house: dict[str, dict], start: date, months: int,
                credit_notes: list[dict] = ()) -> dict:
    """Spend (net of SLA credits and of credit notes, before tax) of the invoices whose period starts in the
    ``months`` months from ``start`` (``report_period``), per currency: by category, outsourcing model, shoring
    and provider; fixed vs variable; and, per category with an in-house monthly cost estimate in the same currency,
    the saving = estimate x the months its invoices cover - spend.
    A credit note counts against its invoice (its net off the spend, its tax off the tax)."""
    per_currency: dict[str, dict[str, Any]] = {}
    notes_of: dict[str, list[dict]] = defaultdict(list)
    for note in credit_notes:
        notes_of[note["invoice_id"]].append(note)
    for invoice in invoices:
        currency = invoice["currency"]
        report = per_currency.setdefault(currency, {
            "invoices": 0, "net": ZERO, "tax": ZERO, "total": ZERO, "fixed": ZERO, "variable": ZERO,
            "credits": ZERO, "credit_notes": ZERO, "by_category": defaultdict(Decimal),
            "by_model": defaultdict(Decimal), "by_shoring": defaultdict(Decimal),
            "by_provider": defaultdict(Decimal), "periods": defaultdict(list)})
        noted = [note_net_and_tax(invoice, note) for note in notes_of[invoice["id"]]]
        noted_net = sum((n for n, _ in noted), ZERO)
        noted_tax = sum((t for _, t in noted), ZERO)
        net = amount_of(invoice["net"]) - noted_net
        report["invoices"] += 1
        report["net"] += net
        report["tax"] += amount_of(invoice["tax"]["amount"]) - noted_tax
        report["total"] += amount_of(invoice["total"]) - noted_net - noted_tax
        report["fixed"] += amount_of(invoice["fixed"])
        report["variable"] += amount_of(invoice["variable"])
        report["credits"] += amount_of(invoice["credits"])
        report["credit_notes"] += noted_net
        report["by_category"][invoice["category"]] += net
        report["periods"][invoice["category"]].append((day(invoice["period"]["start"]), day(invoice["period"]["end"])))
        report["by_model"][invoice["model"]] += net
        report["by_shoring"][invoice["shoring"] or "unknown"] += net
        report["by_provider"][invoice["provider_id"]] += net
    currencies = []
    for currency, report in sorted(per_currency.items()):
        charged = report["fixed"] + report["variable"]
        savings = []
        for category, estimate in sorted(in_house.items()):
            if estimate["currency"] != currency:
                continue
            compared = months_covered(report["periods"].get(category, []))
            in_house_cost = Decimal(estimate["amount"]) * compared
            spend = report["by_category"].get(category, ZERO)
            savings.append({"category": category, "monthly_estimate": money(Decimal(estimate["amount"]), currency),
                            "months_compared": decimal_text(round(compared, 4)),
                            "in_house_cost": money(in_house_cost, currency), "spend": money(spend, currency),
                            "saving": money(in_house_cost - spend, currency),
                            "saving_percent": percent(in_house_cost - spend, in_house_cost)})

        def breakdown(values: dict[str, Decimal], currency: str = currency) -> list[dict]:
            return [{"key": key, "spend": money(value, currency)} for key, value in sorted(values.items())]

        currencies.append({
            "currency": currency, "invoices": report["invoices"],
            "spend": money(report["net"], currency), "tax": money(report["tax"], currency),
            "total": money(report["total"], currency),
            "fixed": money(report["fixed"], currency), "variable": money(report["variable"], currency),
            "credits": money(report["credits"], currency),
            "credit_notes": money(report["credit_notes"], currency),
            "fixed_share_percent": percent(report["fixed"], charged),
            "variable_share_percent": percent(report["variable"], charged),
            "by_category": breakdown(report["by_category"]), "by_model": breakdown(report["by_model"]),
            "by_shoring": breakdown(report["by_shoring"]), "by_provider": breakdown(report["by_provider"]),
            "savings": savings,
        })
    _, end = report_period(start, months)
    return {"from": start.isoformat(), "to": end.isoformat(), "months": str(months), "currencies": currencies}


def report_csv_rows(report: dict) -> list[list[str]]:
    """The report as rows: section, key, currency, amount (spend; savings with in-house cost and saving)."""
    rows = [["section", "key", "currency", "amount", "in_house_cost", "saving"]]
    for part in report["currencies"]:
        currency = part["currency"]
        for section in ("spend", "fixed", "variable", "credits", "credit_notes", "tax", "total"):
            rows.append(["total", section, currency, part[section]["amount"], "", ""])
        for dimension in ("by_category", "by_model", "by_shoring", "by_provider"):
            for row in part[dimension]:
                rows.append([dimension[3:], row["key"], currency, row["spend"]["amount"], "", ""])
        for saving in part["savings"]:
            rows.append(["saving", saving["category"], currency, saving["spend"]["amount"],
                         saving["in_house_cost"]["amount"], saving["saving"]["amount"]])
    return rows
