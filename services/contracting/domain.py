"""Contracting's rules: the contract state machine, signatures, amendments, SLA windows and credits, governance.

Pure functions over plain dicts; no I/O. A contract's Python form is its wire form (money and decimals as decimal
strings, dates as ``YYYY-MM-DD``) except that timestamps are aware ``datetime``s, so what is hashed and signed is
exactly what is shown. Arithmetic is ``Decimal``.

Design (docs/design/contracting.md has the longer story):

- **State machine.** draft -> pending_signatures (one party signed) -> active (both signed the same terms hash)
  -> completed (client, with a rating) or terminated (either party, reason + notice); a fixed-price contract past
  its end date moves on to completion_pending (the client's completion is what is left). An edit voids every
  signature and returns the contract to draft. Anything else is ``Conflict`` and changes nothing.
- **Signatures** carry the party, its id, the time and the SHA-256 of the canonical JSON (sorted keys, no
  spaces) of the signable terms; the signer sends the hash it read, so nobody signs terms it has not seen.
- **SLA windows** are anchored at the contract's start date, 00:00 UTC: daily = 1 day, weekly = 7 days, monthly =
  calendar months from the start day; the last window ends with the contract. After an amendment that moves the
  boundaries (another window length, a later end date) the next window starts where the last evaluated one ended,
  never inside it; measurements count in the window their time falls in, whatever window they were recorded against.
  A window is evaluated once, ``grace`` after the later of its end and the contract's activation (a backdated
  contract's past windows wait for their measurements). No measurements in a window is a breach.
- **Closing a window early.** The grace exists so late measurements still count; once both parties confirm that
  an ended window's measurements are complete (``confirm_window_closed``), it is due at once, still evaluated once
  and in order. One party's confirmation is recorded and changes nothing; measurements after the close are late.
- **Late measurements** (their window was already evaluated) are recorded, flagged ``late`` and shown in the
  governance summary; they do not change the evaluated outcome (the credit was already owed or not).
- **Credit** = ``percent`` % of the window's fees, rounded once (half up) to the currency's minor unit, at most
  ``cap``. Window fees: hourly = price x hours/week x days/7; retainer = price x days / days in the month the
  window starts (a monthly window: / days of that monthly window, so a whole one is exactly the price); fixed =
  price x days / contract days (0 when open-ended); per_unit = price x units reported. Each day at the terms in
  force that day (``terms_on``): an amendment has an effective date and never reaches back.
- **Notice.** A terminated contract is in force until the termination's effective date (``in_notice``):
  measurements, reviews and issues go on and SLA windows run to that date.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

from shared.vocabulary.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.vocabulary.money import minor_unit, round_money


class Status(StrEnum):
    DRAFT = "draft"
    PENDING_SIGNATURES = "pending_signatures"
    ACTIVE = "active"
    COMPLETION_PENDING = "completion_pending"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class Party(StrEnum):
    CLIENT = "client"
    PROVIDER = "provider"


# What each action needs the contract to be. Everything else is a 409.
ALLOWED: dict[str, frozenset[Status]] = {
    "edit": frozenset({Status.DRAFT, Status.PENDING_SIGNATURES}),
    "sign": frozenset({Status.DRAFT, Status.PENDING_SIGNATURES}),
    "amend": frozenset({Status.ACTIVE}),
    "measure": frozenset({Status.ACTIVE, Status.COMPLETION_PENDING}),
    "review": frozenset({Status.ACTIVE, Status.COMPLETION_PENDING}),
    "raise_issue": frozenset({Status.ACTIVE, Status.COMPLETION_PENDING}),
    "complete": frozenset({Status.ACTIVE, Status.COMPLETION_PENDING}),
    "terminate": frozenset({Status.ACTIVE}),
    "rate_client": frozenset({Status.COMPLETED}),
    "answer_rating": frozenset({Status.COMPLETED}),
}

# The terms both parties sign. Everything else (status, signatures, timestamps, history) is bookkeeping.
SIGNABLE = ("id", "tenant_id", "provider_id", "centre_id", "posting_id", "version", "title", "scope", "category",
            "model", "responsibilities", "deliverables", "milestones", "terms", "confidentiality", "start_date",
            "end_date", "termination_notice_days", "slas", "governance")
# What the client may change in a draft.
EDITABLE = ("title", "scope", "responsibilities", "deliverables", "milestones", "terms", "confidentiality",
            "start_date", "end_date", "termination_notice_days", "slas", "governance")
# What an amendment may change.
AMENDABLE = ("hours_per_week", "seats", "price", "end_date", "slas")

DEFAULT_CREDIT_PERCENT = "5"
DEFAULT_NOTICE_DAYS = 14
DEFAULT_PAYMENT_DUE_DAYS = 30
CADENCE_DAYS = {"weekly": 7}
CADENCE_MONTHS = {"monthly": 1, "quarterly": 3}


# What goes on during a termination's notice period: the contract is in force for both sides until its effective
# date (the provider still delivers and bills, the client still reviews, SLAs are still measured).
IN_FORCE_DURING_NOTICE = frozenset({"measure", "review", "raise_issue"})


def in_notice(contract: dict, today: date) -> bool:
    """Terminated, with the termination's effective date still to come (or today)."""
    termination = contract.get("termination")
    return (contract["status"] == Status.TERMINATED.value and termination is not None
            and today <= date.fromisoformat(termination["effective_date"]))


def require(contract: dict, action: str, today: date | None = None) -> None:
    """Raise ``Conflict`` unless ``action`` is legal in the contract's current status (or, for what goes on during
    a notice period, the contract is still in force on ``today``)."""
    status = Status(contract["status"])
    if action in IN_FORCE_DURING_NOTICE and today is not None and in_notice(contract, today):
        return
    if status not in ALLOWED[action]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[action]))
        raise Conflict(f"Cannot {action.replace('_', ' ')} a contract that is {status.value} (only when {allowed}).",
                       details={"status": status.value, "action": action})


def party_id(contract: dict, party: Party) -> str:
    return contract["tenant_id"] if party is Party.CLIENT else contract["provider_id"]


def visible(contract: dict | None, party: Party, acting_id: str, contract_id: Any) -> dict:
    """The contract when ``acting_id`` is its ``party``. Someone else's contract is as absent as an unknown one: no
    existence leak."""
    if contract is None or party_id(contract, party) != acting_id:
        raise NotFound(f"Contract {contract_id} not found.")
    return contract


# -- hashing -----------------------------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def terms_hash(contract: dict) -> str:
    """SHA-256 of the canonical JSON of the signable terms."""
    signable = {key: contract[key] for key in SIGNABLE}
    return hashlib.sha256(canonical_json(signable).encode()).hexdigest()


# -- money -------------------------------------------------------------------------------------------------------


def money(amount: Decimal, currency: str) -> dict:
    return {"amount": format(round_money(amount, currency), "f"), "currency": currency}


# -- drafting ----------------------------------------------------------------------------------------------------


def _end_date(start: date, duration_weeks: int | None) -> str | None:
    return None if not duration_weeks else (start + timedelta(weeks=duration_weeks, days=-1)).isoformat()


def _awarded_seats(terms: dict) -> int | None:
    """The posting's seats, with hours_per_week per seat (billing's limits count seats × hours). Output-priced
    work (fixed, per unit) on the default single seat commits no seat: the provider is not dedicating one."""
    seats = terms.get("seats")
    if seats is None or (terms.get("hours_per_week") is None and seats <= 1):
        return None
    return seats


def draft_from_award(data: dict, *, contract_id: str, sla_ids: list[str], lane: str, now: datetime) -> dict:
    """The draft contract an award (``events.POSTING_AWARDED`` data) becomes."""
    posting, terms = data["posting"], data["terms"]
    start = date.fromisoformat(terms["start_date"])
    end = _end_date(start, terms.get("duration_weeks"))
    price = dict(terms["price"])
    confidentiality = data["confidentiality"]
    engagement = terms["engagement_type"]
    contract = {
        "id": contract_id,
        "tenant_id": data["client"]["tenant_id"],
        "provider_id": data["provider"]["provider_id"],
        "centre_id": data["provider"].get("centre_id"),
        "posting_id": posting["id"],
        "proposal_id": data["proposal"]["proposal_id"],
        "status": Status.DRAFT.value,
        "version": 1,
        "title": posting["title"],
        "scope": posting["description"],
        "category": posting["category"],
        "model": posting["model"],
        "responsibilities": {
            "client": ["Give the access, information and decisions the work needs, on time."],
            "provider": ["Deliver the scope to the agreed SLAs and report per the governance plan."],
        },
        "deliverables": [],
        "milestones": ([{"title": "Completion of the scope", "due_date": end, "amount": price}]
                       if engagement == "fixed" else []),
        "terms": {
            "engagement_type": engagement,
            "unit": terms.get("unit"),
            "price": price,
            "hours_per_week": terms.get("hours_per_week"),
            "seats": _awarded_seats(terms),
            "billing_cycle": "weekly" if engagement == "hourly" else "monthly",
            "payment_due_days": DEFAULT_PAYMENT_DUE_DAYS,
        },
        "confidentiality": {
            "confidential": bool(confidentiality["confidential"]),
            "nda_required": bool(confidentiality["nda_required"]),
            "nda_terms": ("Mutual non-disclosure of each other's confidential information, for the term of the "
                          "contract and five years after it." if confidentiality["nda_required"] else None),
        },
        "start_date": start.isoformat(),
        "end_date": end,
        "termination_notice_days": DEFAULT_NOTICE_DAYS,
        "slas": [
            {"id": sla_id, "metric": req["metric"], "target": req["target"], "direction": req["direction"],
             "window": req["window"], "aggregation": "average",
             "credit": {"percent": DEFAULT_CREDIT_PERCENT, "cap": None}}
            for sla_id, req in zip(sla_ids, data["sla_requirements"], strict=False)
        ],
        "governance": {
            "reporting_cadence": "weekly",
            "review_cadence": "monthly",
            "escalation_levels": [
                {"level": 1, "client_contact": "Engagement manager", "provider_contact": "Delivery lead",
                 "response_hours": 24},
                {"level": 2, "client_contact": "Head of operations", "provider_contact": "Account director",
                 "response_hours": 72},
            ],
        },
        "terms_hash": "",
        "signatures": [],
        "lane": lane,
        "history": [],
        "amendments": [],
        "pending_amendment": None,
        "sla_cursor": {},
        "next_evaluation_at": None,
        "ratings": {"provider": None, "client": None},
        "termination": None,
        "created_at": now,
        "updated_at": now,
        "activated_at": None,
        "completed_at": None,
        "terminated_at": None,
        "revision": 1,
    }
    contract["terms_hash"] = terms_hash(contract)
    return contract


def _check_consistency(contract: dict, today: date, max_backdate_days: int, *, check_start: bool) -> None:
    """Rules across fields; each broken one is a 422 naming the field."""
    errors: dict[str, list[str]] = {}
    terms = contract["terms"]
    currency = terms["price"]["currency"]
    start = date.fromisoformat(contract["start_date"])
    if check_start and start < today - timedelta(days=max_backdate_days):
        errors["start_date"] = [f"At most {max_backdate_days} days in the past (a backdated contract formalises "
                                "work already under way)."]
    if contract["end_date"] is not None and date.fromisoformat(contract["end_date"]) < start:
        errors["end_date"] = ["Not before the start date."]
    if terms["engagement_type"] == "per_unit" and not terms["unit"]:
        errors["terms"] = ["A per_unit price says its unit."]
    if terms["engagement_type"] in ("hourly", "retainer") and not terms["hours_per_week"]:
        errors["terms"] = ["Hourly and retainer work agree hours_per_week."]
    for milestone in contract["milestones"]:
        if milestone["amount"]["currency"] != currency:
            errors["milestones"] = [f"Milestone amounts are in the contract's currency, {currency}."]
    for sla in contract["slas"]:
        cap = sla["credit"]["cap"]
        if cap is not None and cap["currency"] != currency:
            errors["slas"] = [f"Credit caps are in the contract's currency, {currency}."]
        if Decimal(sla["credit"]["percent"]) > 100:
            errors["slas"] = ["A credit is at most 100 % of the window's fees."]
    ids = [sla["id"] for sla in contract["slas"]]
    if len(ids) != len(set(ids)):
        errors["slas"] = ["Each SLA once: two SLAs carry the same id (leave the id out of a new one)."]
    levels = [level["level"] for level in contract["governance"]["escalation_levels"]]
    if levels != list(range(1, len(levels) + 1)):
        errors["governance"] = ["Escalation levels are numbered 1, 2, 3 ... in order."]
    if errors:
        raise ValidationFailed("The contract's terms do not fit together.", details=errors)


def edit(contract: dict, changes: dict, *, new_sla_id, now: datetime, max_backdate_days: int) -> tuple[dict, bool]:
    """The client's edit of a draft. Any real change voids the signatures and returns the contract to draft."""
    require(contract, "edit")
    after = {**contract}
    for key in EDITABLE:
        if key not in changes:
            continue
        value = changes[key]
        if key == "terms":
            value = {**contract["terms"], **value}
        elif key == "confidentiality":
            value = {**contract["confidentiality"], **value}
        elif key == "slas":
            known = {sla["id"] for sla in contract["slas"]}
            value = [{**sla, "id": sla["id"] if sla.get("id") in known else new_sla_id()} for sla in value]
        after[key] = value
    after["terms_hash"] = terms_hash(after)
    if after["terms_hash"] == contract["terms_hash"]:
        return contract, False
    _check_consistency(after, now.date(), max_backdate_days, check_start="start_date" in changes)
    after.update(status=Status.DRAFT.value, signatures=[], updated_at=now, revision=contract["revision"] + 1)
    return after, True


def _signature(party: Party, signer: str, signed: str, now: datetime) -> dict:
    return {"party": party.value, "party_id": signer, "signed_at": now, "terms_hash": signed}


def sign(contract: dict, party: Party, signed_hash: str, *, now: datetime, grace: timedelta) -> tuple[dict, bool]:
    """A party signs the terms it read (``signed_hash``). The second signature activates the contract."""
    require(contract, "sign")
    if signed_hash != contract["terms_hash"]:
        raise Conflict("The terms changed since you read them; read the contract again and sign its current "
                       "terms_hash.", details={"terms_hash": contract["terms_hash"]})
    if any(s["party"] == party.value for s in contract["signatures"]):
        return contract, False  # signing twice is one signature
    signatures = [*contract["signatures"], _signature(party, party_id(contract, party), signed_hash, now)]
    after = {**contract, "signatures": signatures, "updated_at": now, "revision": contract["revision"] + 1}
    if len(signatures) < 2:
        after["status"] = Status.PENDING_SIGNATURES.value
        return after, True
    after.update(status=Status.ACTIVE.value, activated_at=now,
                 history=[{"version": contract["version"], "terms_hash": signed_hash, "agreed_at": now,
                           "signatures": signatures, "amendment_id": None}])
    after["sla_cursor"] = {sla["id"]: window_bounds(after, sla, 0)[0] for sla in after["slas"]}
    after["next_evaluation_at"] = next_evaluation_at(after, grace)
    return after, True


# -- amendments --------------------------------------------------------------------------------------------------


def _amended(contract: dict, changes: dict) -> dict:
    after = {**contract, "terms": {**contract["terms"]}, "version": contract["version"] + 1}
    for key, value in changes.items():
        if key in ("hours_per_week", "seats", "price"):
            after["terms"][key] = value
        else:
            after[key] = value
    return after


def _previous(contract: dict, changes: dict) -> dict:
    return {key: contract["terms"][key] if key in ("hours_per_week", "seats", "price") else contract[key]
            for key in changes}


def propose_amendment(contract: dict, party: Party, changes: dict, *, reason: str, amendment_id: str,
                      new_sla_id, now: datetime, effective_date: str | None = None) -> dict:
    """A party proposes changed terms; both sign them (``sign_amendment``) before they apply, from
    ``effective_date`` (default: the day both signed). An amendment never reaches back: not before today."""
    require(contract, "amend")
    if effective_date is not None and effective_date < now.date().isoformat():
        raise ValidationFailed("An amendment never reaches back: its effective date is today or later.",
                               details={"effective_date": ["Today or later (default: the day both sign)."]})
    if contract["pending_amendment"] is not None:
        raise Conflict("An amendment is already waiting for signatures; sign or withdraw it first.",
                       details={"amendment_id": contract["pending_amendment"]["id"]})
    if "slas" in changes:
        known = {sla["id"] for sla in contract["slas"]}
        changes = {**changes, "slas": [{**sla, "id": sla["id"] if sla.get("id") in known else new_sla_id()}
                                       for sla in changes["slas"]]}
    if "price" in changes and changes["price"]["currency"] != contract["terms"]["price"]["currency"]:
        raise ValidationFailed("An amendment keeps the contract's currency.",
                               details={"price": ["Same currency as the contract."]})
    changes = {key: value for key, value in changes.items() if _previous(contract, {key: 0})[key] != value}
    if not changes:
        raise ValidationFailed("The amendment changes nothing.", details={"changes": ["Change at least one term."]})
    amended = _amended(contract, changes)
    _check_consistency(amended, now.date(), 0, check_start=False)
    pending = {
        "id": amendment_id, "version": amended["version"], "previous_version": contract["version"],
        "changes": changes, "previous": _previous(contract, changes), "reason": reason,
        "proposed_by": party.value, "proposed_at": now, "terms_hash": terms_hash(amended), "signatures": [],
        "effective_date": effective_date,
    }
    return {**contract, "pending_amendment": pending, "updated_at": now, "revision": contract["revision"] + 1}


def withdraw_amendment(contract: dict, amendment_id: str, *, now: datetime, party: Party | None = None) -> dict:
    """The proposer withdraws a pending amendment, the other side declines it; either way it stays in the
    contract's history (what was proposed, by whom, who ended it and when), never applied."""
    pending = contract["pending_amendment"]
    if pending is None or pending["id"] != amendment_id:
        raise Conflict("No such amendment is waiting for signatures.")
    ended_by = party.value if party is not None else None
    outcome = "withdrawn" if ended_by in (None, pending["proposed_by"]) else "declined"
    row = {"version": contract["version"], "amendment_id": pending["id"], "outcome": outcome, "ended_by": ended_by,
           "ended_at": now, "proposed_version": pending["version"], "changes": pending["changes"],
           "reason": pending["reason"], "proposed_by": pending["proposed_by"], "proposed_at": pending["proposed_at"],
           "terms_hash": pending["terms_hash"], "signatures": pending["signatures"]}
    return {**contract, "pending_amendment": None, "history": [*contract["history"], row], "updated_at": now,
            "revision": contract["revision"] + 1}


def sign_amendment(contract: dict, party: Party, amendment_id: str, signed_hash: str, *, now: datetime,
                   grace: timedelta) -> tuple[dict, dict | None]:
    """A party signs a pending amendment. Returns the contract and, once both signed, the applied amendment."""
    require(contract, "amend")
    pending = contract["pending_amendment"]
    if pending is None or pending["id"] != amendment_id:
        raise Conflict("No such amendment is waiting for signatures.")
    if signed_hash != pending["terms_hash"]:
        raise Conflict("That is not the hash of the amended terms; read the amendment again.",
                       details={"terms_hash": pending["terms_hash"]})
    if any(s["party"] == party.value for s in pending["signatures"]):
        return contract, None
    signatures = [*pending["signatures"], _signature(party, party_id(contract, party), signed_hash, now)]
    if len(signatures) < 2:
        return {**contract, "pending_amendment": {**pending, "signatures": signatures}, "updated_at": now,
                "revision": contract["revision"] + 1}, None
    applied = {key: value for key, value in pending.items() if key != "terms_hash"}
    # Never before the day both signed, whatever was proposed.
    applied.update(signatures=signatures, agreed_at=now,
                   effective_date=max(pending.get("effective_date") or "", now.date().isoformat()))
    after = _amended(contract, pending["changes"])
    after.update(
        terms_hash=pending["terms_hash"], pending_amendment=None, updated_at=now, revision=contract["revision"] + 1,
        amendments=[*contract["amendments"], applied],
        history=[*contract["history"], {"version": after["version"], "terms_hash": pending["terms_hash"],
                                        "agreed_at": now, "signatures": signatures, "amendment_id": pending["id"]}],
    )
    cursor = dict(contract["sla_cursor"])
    for sla in after["slas"]:
        if sla["id"] not in cursor:  # a new SLA is measured from the window the amendment falls in (or the first)
            cursor[sla["id"]] = window_containing(after, sla, max(now, _anchor(after)))[0]
    after["sla_cursor"] = {sla_id: at for sla_id, at in cursor.items() if sla_id in {s["id"] for s in after["slas"]}}
    after["next_evaluation_at"] = next_evaluation_at(after, grace)
    return after, applied


# -- ending ------------------------------------------------------------------------------------------------------


def past_its_end(contract: dict, today: date) -> bool:
    """A fixed-price contract still active after its end date: the work is due, the client's acceptance (its
    completion) is what is left."""
    return (contract["status"] == Status.ACTIVE.value and contract["terms"]["engagement_type"] == "fixed"
            and contract["end_date"] is not None and date.fromisoformat(contract["end_date"]) < today)


def await_completion(contract: dict, *, now: datetime) -> dict:
    """A fixed-price contract past its end date moves on to ``completion_pending``: no more amendments or
    termination, only the client's completion (with its rating); reviews, issues and late measurements go on."""
    if not past_its_end(contract, now.date()):
        return contract
    return {**contract, "status": Status.COMPLETION_PENDING.value, "pending_amendment": None, "updated_at": now,
            "revision": contract["revision"] + 1}


def complete(contract: dict, rating: dict, *, now: datetime) -> dict:
    require(contract, "complete")
    return {**contract, "status": Status.COMPLETED.value, "completed_at": now, "updated_at": now,
            "pending_amendment": None, "revision": contract["revision"] + 1,
            "ratings": {**contract["ratings"], "provider": {**rating, "given_at": now, "answer": None}}}


def terminate(contract: dict, party: Party, reason: str, notice_days: int | None, *, now: datetime,
              grace: timedelta | None = None) -> dict:
    """Ends the contract at the termination's effective date (today + the notice days, at least the agreed
    notice); until then it is in force for both sides (``in_notice``)."""
    require(contract, "terminate")
    required = contract["termination_notice_days"]
    notice = required if notice_days is None else notice_days
    if notice < required:
        raise ValidationFailed(f"The contract requires at least {required} days' notice.",
                               details={"notice_days": [f"At least {required}."]})
    termination = {"reason": reason, "terminated_by": party.value, "notice_days": notice,
                   "effective_date": (now.date() + timedelta(days=notice)).isoformat()}
    after = {**contract, "status": Status.TERMINATED.value, "terminated_at": now, "updated_at": now,
             "termination": termination, "pending_amendment": None, "revision": contract["revision"] + 1}
    if grace is not None:  # the window open at the effective date is cut there, and evaluated then
        after["next_evaluation_at"] = next_evaluation_at(after, grace)
    return after


def rate_client(contract: dict, rating: dict, *, now: datetime) -> dict:
    require(contract, "rate_client")
    if contract["ratings"]["client"] is not None:
        raise Conflict("The provider already rated the client for this contract.")
    return {**contract, "updated_at": now, "revision": contract["revision"] + 1,
            "ratings": {**contract["ratings"], "client": {**rating, "given_at": now, "answer": None}}}


def answer_rating(contract: dict, party: Party, text: str, *, now: datetime) -> dict:
    """The rated party answers the rating it received, once."""
    require(contract, "answer_rating")
    received = "provider" if party is Party.PROVIDER else "client"
    rating = contract["ratings"][received]
    if rating is None:
        raise Conflict("There is no rating of you to answer yet.")
    if rating["answer"] is not None:
        raise Conflict("You already answered this rating.")
    answered = {**rating, "answer": {"text": text, "answered_at": now}}
    return {**contract, "updated_at": now, "revision": contract["revision"] + 1,
            "ratings": {**contract["ratings"], received: answered}}


def only(party: Party, expected: Party, action: str) -> None:
    if party is not expected:
        raise Forbidden(f"Only the {expected.value} may {action}.")


# -- SLA windows -------------------------------------------------------------------------------------------------


def _anchor(contract: dict) -> datetime:
    return datetime.combine(date.fromisoformat(contract["start_date"]), datetime.min.time(), tzinfo=UTC)


def _after_day(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text) + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def contract_end(contract: dict) -> datetime | None:
    """The first instant after the contract: after its end date, or after a termination's effective date when
    that comes first (the notice period is still in force)."""
    ends = [_after_day(contract["end_date"])] if contract["end_date"] is not None else []
    if contract.get("termination"):
        ends.append(_after_day(contract["termination"]["effective_date"]))
    return min(ends, default=None)


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _boundary(contract: dict, sla: dict, index: int) -> datetime:
    anchor = _anchor(contract)
    if sla["window"] == "monthly":
        return _add_months(anchor, index)
    return anchor + timedelta(days=index * (1 if sla["window"] == "daily" else 7))


def window_bounds(contract: dict, sla: dict, index: int) -> tuple[datetime, datetime]:
    end = _boundary(contract, sla, index + 1)
    last = contract_end(contract)
    return _boundary(contract, sla, index), end if last is None else min(end, last)


def window_index(contract: dict, sla: dict, moment: datetime) -> int:
    anchor = _anchor(contract)
    if sla["window"] == "monthly":
        index = (moment.year - anchor.year) * 12 + moment.month - anchor.month
        while _add_months(anchor, index) > moment:
            index -= 1
        return index
    return (moment - anchor) // timedelta(days=1 if sla["window"] == "daily" else 7)


def window_containing(contract: dict, sla: dict, moment: datetime) -> tuple[datetime, datetime]:
    return window_bounds(contract, sla, window_index(contract, sla, moment))


def evaluation_window(contract: dict, sla: dict, moment: datetime) -> tuple[datetime, datetime]:
    """The window ``moment`` is evaluated in: the one containing it, starting no earlier than the SLA's cursor
    (the end of its last evaluated window). The two differ only after an amendment moved the boundaries (a new
    window length, a later end date): the first window after it then runs from the cursor, so no stretch of time
    is evaluated, or credited, twice."""
    start, end = window_containing(contract, sla, moment)
    cursor = contract["sla_cursor"].get(sla["id"])
    return (cursor, end) if cursor is not None and start < cursor <= moment else (start, end)


def window_due_at(contract: dict, sla: dict, window: tuple[datetime, datetime], grace: timedelta) -> datetime:
    """When a window is evaluated: ``grace`` after its end, or after activation for windows already past; at once
    when both parties closed it."""
    due = max(window[1], contract["activated_at"]) + grace
    closed = window_closed_at(contract, sla["id"], window[0])
    return due if closed is None else min(due, closed)


def window_closure(contract: dict, sla_id: str, start: datetime) -> dict | None:
    """The parties' confirmations that a window is complete: ``{sla_id, start, confirmed: {party: at},
    closed_at}`` (None: nobody confirmed it)."""
    return next((c for c in contract.get("window_closures", [])
                 if c["sla_id"] == sla_id and c["start"] == start), None)


def window_closed_at(contract: dict, sla_id: str, start: datetime) -> datetime | None:
    """When both parties had confirmed the window starting at ``start`` complete (None: not closed)."""
    closure = window_closure(contract, sla_id, start)
    return None if closure is None else closure["closed_at"]


def closable_window(contract: dict, sla_id: str, start: datetime, now: datetime) -> tuple[dict, datetime, datetime]:
    """The (sla, start, end) a party may confirm complete: one of the contract's windows, ended; ``Conflict`` for
    a window still open, ``ValidationFailed`` for a start that is no window's start."""
    if contract["activated_at"] is None:
        raise Conflict("The contract is not active yet: it has no SLA windows to close.")
    sla = next((s for s in contract["slas"] if s["id"] == sla_id), None)
    if sla is None:
        raise ValidationFailed("No SLA of this contract has that id.", details={"sla_id": ["Unknown SLA."]})
    last = contract_end(contract)
    if start < _anchor(contract) or (last is not None and start >= last) \
            or evaluation_window(contract, sla, start)[0] != start:
        raise ValidationFailed("That is not the start of one of this SLA's windows.",
                               details={"start": ["Not a window start."]})
    end = evaluation_window(contract, sla, start)[1]
    if end > now:
        raise Conflict(f"The window ends at {end.isoformat()}: its measurements cannot be complete before that.",
                       details={"window_end": end.isoformat()})
    return sla, start, end


def window_evaluated(contract: dict, sla_id: str, start: datetime) -> bool:
    cursor = contract["sla_cursor"].get(sla_id)
    return cursor is not None and start < cursor


def confirm_window_closed(contract: dict, party: Party, sla_id: str, start: datetime, *, now: datetime,
                          grace: timedelta) -> dict:
    """``party`` confirms that the ended window of ``sla_id`` starting at ``start`` has all its measurements; with
    both parties' confirmations the window is closed (due at once). The same contract (unchanged) when there is
    nothing to record: this party confirmed already, or the window was evaluated."""
    sla, start, _ = closable_window(contract, sla_id, start, now)
    closure = window_closure(contract, sla["id"], start)
    if window_evaluated(contract, sla["id"], start) or (closure is not None and party.value in closure["confirmed"]):
        return contract
    confirmed = {**(closure["confirmed"] if closure else {}), party.value: now}
    updated = {"sla_id": sla["id"], "start": start, "confirmed": confirmed,
               "closed_at": now if len(confirmed) == len(Party) else None}
    others = [c for c in contract.get("window_closures", []) if c is not closure]
    after = {**contract, "window_closures": [*others, updated], "revision": contract["revision"] + 1}
    after["next_evaluation_at"] = next_evaluation_at(after, grace)
    return after


def _next_window(contract: dict, sla: dict, cursor: datetime) -> tuple[datetime, datetime] | None:
    """The window after ``cursor``; None past the contract's end, or when it completed or was terminated before
    that window ended (windows that ended before are still evaluated)."""
    last = contract_end(contract)
    if last is not None and cursor >= last:
        return None
    window = evaluation_window(contract, sla, cursor)
    ended = contract["completed_at"]  # a termination ends the contract at its effective date (``contract_end``)
    return None if ended is not None and window[1] > ended else window


def due_windows(contract: dict, now: datetime, grace: timedelta) -> list[tuple[dict, datetime, datetime]]:
    """Every (sla, window start, window end) whose evaluation is due, oldest first per SLA."""
    due = []
    for sla in contract["slas"]:
        cursor = contract["sla_cursor"].get(sla["id"])
        while cursor is not None:
            window = _next_window(contract, sla, cursor)
            if window is None or window_due_at(contract, sla, window, grace) > now:
                break
            due.append((sla, *window))
            cursor = window[1]
    return due


def next_evaluation_at(contract: dict, grace: timedelta) -> datetime | None:
    """The earliest moment one of the contract's windows falls due (None: nothing left to evaluate)."""
    if contract["activated_at"] is None:
        return None
    moments = []
    for sla in contract["slas"]:
        cursor = contract["sla_cursor"].get(sla["id"])
        window = _next_window(contract, sla, cursor) if cursor is not None else None
        if window is not None:
            moments.append(window_due_at(contract, sla, window, grace))
    return min(moments, default=None)


def advance_cursor(contract: dict, sla_id: str, window_end: datetime, grace: timedelta) -> dict:
    after = {**contract, "sla_cursor": {**contract["sla_cursor"], sla_id: window_end},
             "revision": contract["revision"] + 1}
    after["next_evaluation_at"] = next_evaluation_at(after, grace)
    return after


# -- SLA evaluation ----------------------------------------------------------------------------------------------


def aggregate(aggregation: str, values: list[Decimal]) -> Decimal:
    if not values:
        return Decimal(0)
    if aggregation == "sum":
        return sum(values, Decimal(0))
    if aggregation == "min":
        return min(values)
    if aggregation == "max":
        return max(values)
    return sum(values, Decimal(0)) / len(values)


def terms_on(contract: dict, moment: date) -> dict:
    """The terms in force on ``moment``: the current ones, less every amendment whose effective date is later
    (its ``previous`` values restored). An amendment never reaches back before its effective date."""
    terms = dict(contract["terms"])
    for amendment in reversed(contract.get("amendments") or []):
        if amendment["effective_date"] > moment.isoformat():
            terms.update({k: v for k, v in amendment["previous"].items() if k in ("hours_per_week", "seats",
                                                                                  "price")})
    return terms


def _fees(contract: dict, sla: dict, terms: dict, window_start: datetime, start: datetime, end: datetime) -> Decimal:
    """The fees of [start, end) inside the window starting at ``window_start``, at ``terms``."""
    price = Decimal(terms["price"]["amount"])
    days = Decimal((end - start).days)
    engagement = terms["engagement_type"]
    if engagement == "hourly":
        return price * Decimal(terms["hours_per_week"] or 0) * days / 7
    if engagement == "retainer":
        if sla["window"] == "monthly":  # a whole monthly window is one month's retainer, whatever its days
            index = window_index(contract, sla, window_start)
            return price * days / (_boundary(contract, sla, index + 1) - _boundary(contract, sla, index)).days
        return price * days / calendar.monthrange(window_start.year, window_start.month)[1]
    if engagement == "fixed":
        if contract["end_date"] is None:
            return Decimal(0)
        total_days = (date.fromisoformat(contract["end_date"]) - date.fromisoformat(contract["start_date"])).days + 1
        return price * days / total_days
    return Decimal(0)


def window_fees(contract: dict, sla: dict, start: datetime, end: datetime, units: int | list[dict]) -> Decimal:
    """The unrounded fees of a window (see the module docstring for the rule per engagement type), each day at the
    terms in force that day: a window an amendment cuts is the sum of its parts. ``units``: the window's
    measurements (per-unit work: each at the price of its day), or a count at today's terms."""
    if contract["terms"]["engagement_type"] == "per_unit":
        if isinstance(units, int):
            return Decimal(contract["terms"]["price"]["amount"]) * units
        return sum((Decimal(terms_on(contract, m["measured_at"].date())["price"]["amount"]) * int(m.get("units") or 0)
                    for m in units), Decimal(0))
    cuts = sorted({datetime.combine(date.fromisoformat(a["effective_date"]), datetime.min.time(), tzinfo=UTC)
                   for a in contract.get("amendments") or []})
    cuts = [cut for cut in cuts if start < cut < end]
    total, first = Decimal(0), start
    for cut in [*cuts, end]:
        total += _fees(contract, sla, terms_on(contract, first.date()), start, first, cut)
        first = cut
    return total


def credit_owed(fees: Decimal, credit_rule: dict, currency: str) -> Decimal:
    """``percent`` % of the fees, rounded once (half up) to the currency's minor unit, and never more than ``cap``
    (a cap finer than the minor unit counts down to it: a cap of 3.005 USD credits 3.00, not 3.01)."""
    owed = round_money(fees * Decimal(credit_rule["percent"]) / 100, currency)
    if credit_rule["cap"] is not None:
        cap = Decimal(credit_rule["cap"]["amount"]).quantize(minor_unit(currency), rounding=ROUND_DOWN)
        owed = min(owed, cap)
    return owed


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize() if value == value.to_integral_value() else value, "f")
    return text


def evaluate(contract: dict, sla: dict, start: datetime, end: datetime, measurements: list[dict],
             now: datetime) -> dict:
    """The outcome of one closed window (the ``events.SLA_MET`` / ``events.SLA_BREACHED`` data)."""
    values = [Decimal(m["value"]) for m in measurements]
    value = aggregate(sla.get("aggregation", "average"), values)
    target = Decimal(sla["target"])
    met = bool(values) and (value <= target if sla["direction"] == "at_most" else value >= target)
    currency = contract["terms"]["price"]["currency"]
    fees = window_fees(contract, sla, start, end, measurements)
    return {
        "contract_id": contract["id"],
        "tenant_id": contract["tenant_id"],
        "provider_id": contract["provider_id"],
        "centre_id": contract["centre_id"],
        "sla": {key: sla[key] for key in ("id", "metric", "target", "direction", "window", "aggregation")},
        "window": {"start": start, "end": end},
        "result": {"value": _decimal_text(value), "measurements": len(values)},
        "met": met,
        "credit": None if met else money(credit_owed(fees, sla["credit"], currency), currency),
        "window_fees": money(fees, currency),
        "evaluated_at": now,
    }


def check_measurement(contract: dict, sla_ids: set[str], measurement: dict, now: datetime,
                      clock_skew: timedelta = timedelta(minutes=5)) -> str | None:
    """Why a measurement cannot be recorded (None when it can)."""
    if measurement["sla_id"] not in sla_ids:
        return "No SLA of this contract has that id."
    if measurement["measured_at"] < _anchor(contract):
        return "Measured before the contract started."
    last = contract_end(contract)
    if last is not None and measurement["measured_at"] >= last:
        return "Measured after the contract ended."
    if measurement["measured_at"] > now + clock_skew:
        return "Measured in the future."
    return None


# -- governance --------------------------------------------------------------------------------------------------


def review_schedule(contract: dict, until: date) -> list[date]:
    """The review dates the plan sets from the start date up to ``until`` (and the contract's end)."""
    cadence = contract["governance"]["review_cadence"]
    start = date.fromisoformat(contract["start_date"])
    last = date.fromisoformat(contract["end_date"]) if contract["end_date"] else None
    dates, index = [], 1
    while True:
        if cadence in CADENCE_DAYS:
            due = start + timedelta(days=CADENCE_DAYS[cadence] * index)
        else:
            due = _add_months(datetime.combine(start, datetime.min.time()), CADENCE_MONTHS[cadence] * index).date()
        if due > until or (last is not None and due > last):
            return dates
        dates.append(due)
        index += 1


def next_review_due(contract: dict, reviews_recorded: int) -> date | None:
    """The review the plan expects next: the (n+1)-th scheduled date after n recorded reviews."""
    horizon = date.fromisoformat(contract["end_date"]) if contract["end_date"] else date.max - timedelta(days=400)
    cadence = contract["governance"]["review_cadence"]
    step = CADENCE_DAYS.get(cadence, 31 * CADENCE_MONTHS.get(cadence, 1))
    start = date.fromisoformat(contract["start_date"])
    schedule = review_schedule(contract, min(horizon, start + timedelta(days=step * (reviews_recorded + 2))))
    return schedule[reviews_recorded] if len(schedule) > reviews_recorded else None


def new_review(contract: dict, fields: dict, *, review_id: str, reviews_recorded: int, now: datetime) -> dict:
    require(contract, "review", now.date())
    scores = fields["scores"]
    due = next_review_due(contract, reviews_recorded)
    return {
        "id": review_id, "contract_id": contract["id"], "tenant_id": contract["tenant_id"],
        "provider_id": contract["provider_id"], "due_date": due.isoformat() if due else None,
        "scores": scores, "overall": _decimal_text(sum(Decimal(v) for v in scores.values()) / len(scores)),
        "notes": fields.get("notes"), "recorded_at": now,
    }


def new_issue(contract: dict, party: Party, fields: dict, *, issue_id: str, now: datetime) -> dict:
    require(contract, "raise_issue", now.date())
    if fields["due_at"] <= now:
        raise ValidationFailed("The issue's due time is in the past.", details={"due_at": ["In the future."]})
    level = contract["governance"]["escalation_levels"][0]
    return {
        "id": issue_id, "contract_id": contract["id"], "tenant_id": contract["tenant_id"],
        "provider_id": contract["provider_id"], "raised_by": party.value, "title": fields["title"],
        "description": fields.get("description") or "", "severity": fields["severity"], "owner": fields["owner"],
        "due_at": fields["due_at"], "level": 1, "status": "open", "raised_at": now,
        "escalations": [{"level": 1, "at": now, "client_contact": level["client_contact"],
                         "provider_contact": level["provider_contact"]}],
        "escalation_due_at": fields["due_at"], "resolution": None, "resolved_at": None, "resolved_by": None,
    }


def escalate(issue: dict, contract: dict, *, now: datetime) -> dict:
    """An open issue past its due time climbs one level; at the top level it stays there, overdue."""
    levels = contract["governance"]["escalation_levels"]
    if issue["level"] >= len(levels):
        return {**issue, "escalation_due_at": None}
    level = levels[issue["level"]]  # the next one (levels are numbered from 1)
    return {
        **issue, "level": level["level"],
        "escalation_due_at": now + timedelta(hours=level["response_hours"]),
        "escalations": [*issue["escalations"], {"level": level["level"], "at": now,
                                                "client_contact": level["client_contact"],
                                                "provider_contact": level["provider_contact"]}],
    }


def resolve_issue(issue: dict, party: Party, resolution: str, *, now: datetime) -> tuple[dict, bool]:
    if issue["status"] == "resolved":
        return issue, False
    return {**issue, "status": "resolved", "resolution": resolution, "resolved_at": now,
            "resolved_by": party.value, "escalation_due_at": None}, True


def measured_late(contract: dict, sla_id: str, start: datetime, measured_at: datetime) -> bool:
    """A measurement of a window already closed, or before the SLA's evaluation cursor (every window before it was
    evaluated, whatever boundaries it had then): recorded, but it changes no outcome. (A window evaluated is late
    too; the handler knows that from its record.)"""
    cursor = contract["sla_cursor"].get(sla_id)
    return (cursor is not None and measured_at < cursor) or window_closed_at(contract, sla_id, start) is not None


def sla_compliance(contract: dict, windows: list[dict]) -> list[dict]:
    """Each SLA's record over its evaluated ``windows``: met, breached, the compliance percentage, the credits and
    the windows one by one."""
    currency = contract["terms"]["price"]["currency"]
    compliance = []
    for sla in contract["slas"]:
        rows = [w for w in windows if w["sla_id"] == sla["id"]]
        met = sum(1 for w in rows if w["outcome"]["met"])
        credits = sum((Decimal(w["outcome"]["credit"]["amount"]) for w in rows if w["outcome"]["credit"]), Decimal(0))
        compliance.append({
            "sla_id": sla["id"], "metric": sla["metric"], "target": sla["target"],
            "direction": sla["direction"], "window": sla["window"],
            "windows_evaluated": len(rows), "met": met, "breached": len(rows) - met,
            "compliance_percent": (format((Decimal(met) * 100 / len(rows)).quantize(Decimal("0.1")), "f")
                                   if rows else None),
            "credits": money(credits, currency),
            "windows": [{"start": w["start"], "end": w["end"], "met": w["outcome"]["met"],
                         "value": w["outcome"]["result"]["value"],
                         "measurements": w["outcome"]["result"]["measurements"],
                         "late_measurements": w.get("late_measurements", 0),
                         "credit": w["outcome"]["credit"]} for w in rows],
        })
    return compliance
