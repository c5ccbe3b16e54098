"""The rules of client organisations and their postings, free of I/O.

A posting here is a plain dict in the service's Python form (``Money`` budget, ``date`` start, aware
``datetime`` timestamps). Every operation returns a new dict and leaves its input untouched, so the service
can compare the two versions and store the new one only if the old one is still current.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.postings import competencies
from shared.vocabulary.errors import Conflict, ValidationFailed
from shared.vocabulary.fields import LAST_YEAR
from shared.vocabulary.money import Money
from shared.vocabulary.terms import (
    CATEGORIES,
    CATEGORY_IDS,
    DEFAULT_BUSINESS_HOURS,
    CoreAssessment,
    canonical_category,
)


class Status(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    AWARDED = "awarded"
    CANCELLED = "cancelled"


STATUSES = tuple(status.value for status in Status)


class Engagement(StrEnum):
    HOURLY = "hourly"
    FIXED = "fixed"
    RETAINER = "retainer"
    PER_UNIT = "per_unit"


ANY_SHORING = "any"
SHORING_CLASSES = ("onshore", "nearshore", "offshore")
SHORING_PREFERENCES = (ANY_SHORING, *SHORING_CLASSES)
MAX_SEATS = 1000
SLA_DIRECTIONS = ("at_most", "at_least")
SLA_WINDOWS = ("daily", "weekly", "monthly")
COVERAGES = ("business_hours", "extended", "24x7")

# What a client may set and change; everything else on a posting is derived or owned by the lifecycle.
EDITABLE_FIELDS = (
    "title", "description", "category", "model", "required_skills", "nice_to_have_skills", "languages",
    "engagement", "budget", "hours_per_week", "start_date", "duration_weeks", "shoring", "min_overlap_hours",
    "coverage", "sla_requirements", "confidentiality", "seats", "business_hours",
)

# A draft may be saved early and completed later; these stand for whatever the client has not said yet.
DRAFT_DEFAULTS: dict[str, Any] = {
    "description": "",
    "required_skills": [],
    "nice_to_have_skills": [],
    "languages": [],
    "engagement": None,
    "budget": None,
    "hours_per_week": None,
    # Several people at once (a 3-seat desk staffed 24/7 is 3 seats × 168 hours): hours_per_week is per seat.
    "seats": 1,
    "start_date": None,
    "duration_weeks": None,
    "shoring": {"preference": ANY_SHORING, "required": False, "accepted": list(SHORING_CLASSES)},
    "min_overlap_hours": 0,
    "coverage": "business_hours",
    "sla_requirements": [],
    "confidentiality": {"confidential": False, "nda_required": False},
    # None: the client's own business hours (``client.business_hours``, copied from the tenant).
    "business_hours": None,
}


def shoring_requirement(preference: str, required: bool | None, accepted: list[str] | None) -> dict:
    """A posting's shoring: the classes it accepts (in onshore → offshore order), whether that is a restriction,
    and the class the score prefers. Without ``accepted`` a required shoring accepts exactly its preference."""
    if accepted is None:
        accepted = [preference] if required else list(SHORING_CLASSES)
    classes = [name for name in SHORING_CLASSES if name in accepted]
    return {"preference": preference, "required": len(classes) < len(SHORING_CLASSES), "accepted": classes}


# -- lifecycle -----------------------------------------------------------------------------------------------

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.DRAFT: frozenset({Status.OPEN, Status.CANCELLED}),
    Status.OPEN: frozenset({Status.CANCELLED, Status.AWARDED}),
    # Awarded work belongs to contracting from here on; the posting is a record of what was agreed.
    Status.AWARDED: frozenset(),
    Status.CANCELLED: frozenset(),
}
EDITABLE_STATUSES = frozenset({Status.DRAFT, Status.OPEN})

_ENTERING = {Status.DRAFT: "returned to draft", Status.OPEN: "published", Status.AWARDED: "awarded",
             Status.CANCELLED: "cancelled"}


def ensure_transition(current: str, target: str) -> None:
    """Raises ``Conflict`` unless a posting in ``current`` may move to ``target``."""
    current, target = Status(current), Status(target)
    if target in TRANSITIONS[current]:
        return
    sources = [status.value for status in Status if target in TRANSITIONS[status]]
    verb = _ENTERING[target]
    if current == target:
        message = f"The posting is already {current.value}."
    elif sources:
        message = f"The posting is {current.value}; a posting can be {verb} only from {' or '.join(sources)}."
    else:
        message = f"The posting is {current.value}; a posting can never be {verb}."
    raise Conflict(message, details={"status": [f"The posting is {current.value}."]})


def ensure_editable(current: str) -> None:
    if Status(current) not in EDITABLE_STATUSES:
        raise Conflict(
            f"The posting is {current}; only draft and open postings can be edited.",
            details={"status": [f"The posting is {current}."]},
        )


# -- budget and publish requirements -------------------------------------------------------------------------


def budget_meaning(engagement: dict | None) -> str:
    """What the budget amount stands for under an engagement."""
    if engagement is None:
        return "the budget, whose meaning follows the engagement type"
    kind = Engagement(engagement["type"])
    if kind is Engagement.HOURLY:
        return "the maximum hourly rate"
    if kind is Engagement.FIXED:
        return "the total price of the whole engagement"
    if kind is Engagement.RETAINER:
        return "the retainer per month"
    return f"the price per {engagement.get('unit') or 'unit'}"


def needs_hours_per_week(engagement: dict | None) -> bool:
    # Time-based engagements are sized in hours; fixed-price and per-unit work is sized by its output.
    if engagement is None:
        return False
    return Engagement(engagement["type"]) in (Engagement.HOURLY, Engagement.RETAINER)


def publish_problems(posting: dict) -> dict[str, list[str]]:
    """What stops a posting from being published, per field (empty when nothing does)."""
    problems: dict[str, list[str]] = {}
    engagement = posting.get("engagement")
    if engagement is None:
        problems["engagement"] = ["Required to publish: hourly, fixed, retainer or per_unit."]
    budget: Money | None = posting.get("budget")
    if budget is None:
        problems["budget"] = [f"Required to publish: {budget_meaning(engagement)}."]
    elif budget.amount <= 0:
        problems["budget"] = [f"Must be more than zero: it is {budget_meaning(engagement)}."]
    if needs_hours_per_week(engagement) and posting.get("hours_per_week") is None:
        problems["hours_per_week"] = [f"Required to publish {engagement['type']} work."]
    if posting.get("start_date") is None:
        problems["start_date"] = ["Required to publish."]
    return problems


def ensure_publishable(posting: dict, refusal: type[ValidationFailed | Conflict] = ValidationFailed) -> None:
    """Refuses a posting that is not complete: an edit that would leave it so is invalid (422); publishing a
    stored draft that is not complete is a conflict with its state (409), whatever the request says."""
    problems = publish_problems(posting)
    if problems:
        raise refusal(
            f"Complete these fields before publishing: {', '.join(problems)}.", details=problems
        )


# -- core / non-core -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    classification: CoreAssessment
    reason: str
    confirmed_core: bool = False

    def to_dict(self) -> dict:
        return {
            "classification": self.classification.value,
            "reason": self.reason,
            "confirmed_core": self.confirmed_core,
        }


def normalise_competencies(competencies: Iterable[str]) -> list[str]:
    """Category ids in their canonical spelling, free text trimmed; duplicates (ignoring case) dropped."""
    seen: set[str] = set()
    result: list[str] = []
    for competency in competencies:
        text = " ".join(competency.split())
        if text.lower() in CATEGORIES:
            text = text.lower()
        if text.lower() not in seen:
            seen.add(text.lower())
            result.append(text)
    return result


def _whole_words(phrase: str) -> re.Pattern[str]:
    # "care" must not match "careers"; any run of spaces between the words of a phrase still matches.
    words = [re.escape(word) for word in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def assess(
    *, title: str, category: str, required_skills: Iterable[str], core_competencies: Iterable[str]
) -> Assessment:
    """Core when the posting means what the tenant declared as core, borderline when it touches it; otherwise the
    category's default.

    A competency is found in the title or a required skill by exact phrase, or by meaning (``competencies``: word
    stems and a synonym table). A category competency makes the posting core by its category; a title or skill
    meaning its label in another category makes it borderline (worth a look, but the client chose the category).
    """
    skills = list(required_skills)
    label, default, why = CATEGORIES[category]
    matches: list[str] = []
    touches: list[str] = []
    for competency in core_competencies:
        if competency in CATEGORY_IDS:
            if canonical_category(competency) == canonical_category(category):
                matches.append(f"its category, {label}, is one of your core competencies")
                continue
            phrase, named = CATEGORIES[competency][0], f"{CATEGORIES[competency][0]} (a category)"
        else:
            phrase = named = competency
            pattern = _whole_words(competency)
            exact = [f"the title mentions your core competency “{competency}”"] if pattern.search(title) else []
            exact.extend(f"the required skill “{skill}” matches your core competency “{competency}”"
                         for skill in skills if pattern.search(skill))
            if exact:
                matches.extend(exact)
                continue
        for where, text in (("the title", title), *((f"the required skill “{skill}”", skill) for skill in skills)):
            found = competencies.match(phrase, text)
            if found is None:
                continue
            words = ", ".join(f"“{word}”" for word in found.words)
            if found.complete and competency not in CATEGORY_IDS:
                matches.append(f"{where} means your core competency “{named}” ({words})")
            elif found.complete:
                touches.append(f"{where} means your core competency “{named}” ({words}), though you chose {label}")
            else:
                touches.append(f"{where} touches your core competency “{named}” ({words}), though not all of it")
    if matches:
        return Assessment(CoreAssessment.CORE, f"Core work: {'; '.join(matches)}.")
    if touches:
        return Assessment(CoreAssessment.BORDERLINE,
                          f"Possibly core: {'; '.join(touches)}; {label} is "
                          f"{'non-core' if default is CoreAssessment.NON_CORE else default.value} by default.")
    kind = "non-core" if default is CoreAssessment.NON_CORE else default.value
    return Assessment(
        default,
        f"{label} is {kind} by default ({why}), and none of your core competencies appear in this posting.",
    )


def assess_posting(posting: dict, tenant: dict) -> Assessment:
    return assess(
        title=posting["title"],
        category=posting["category"],
        required_skills=[skill["name"] for skill in posting["required_skills"]],
        core_competencies=tenant["core_competencies"],
    )


def confirm_assessment(assessment: Assessment, confirm_core: bool) -> Assessment:
    """Core work is published only when the client says so explicitly."""
    if assessment.classification is not CoreAssessment.CORE:
        return assessment
    if not confirm_core:
        raise Conflict(
            f"This looks like core work you keep in-house. {assessment.reason} "
            "Publish again with confirm_core set to true to outsource it anyway.",
            details={"confirm_core": [assessment.reason]},
        )
    return Assessment(assessment.classification, assessment.reason, confirmed_core=True)


# -- changes -------------------------------------------------------------------------------------------------


def changed_fields(
    before: dict, after: dict, names: Iterable[str] = (*EDITABLE_FIELDS, "assessment")
) -> list[str]:
    """The names whose values differ between two versions of a posting, in a stable order."""
    return [name for name in names if before.get(name) != after.get(name)]


def request_fingerprint(payload: Any) -> str:
    """Identifies a create request's content, to tell a retry from a different request under the same key."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- operations ----------------------------------------------------------------------------------------------


def new_tenant(*, tenant_id: str, fields: dict, now: datetime) -> dict:
    return {
        "id": tenant_id,
        "name": fields["name"],
        "country": fields["country"],
        "time_zone": fields["time_zone"],
        "segment": fields["segment"],
        "core_competencies": normalise_competencies(fields["core_competencies"]),
        "business_hours": fields.get("business_hours") or dict(DEFAULT_BUSINESS_HOURS),
        "created_at": now,
        **{key: fields.get(key) for key in ("legal_name", "address", "tax_id")},
    }


def new_posting(*, posting_id: str, tenant: dict, fields: dict, now: datetime) -> dict:
    posting = {
        "id": posting_id,
        "tenant_id": tenant["id"],
        "status": Status.DRAFT.value,
        **DRAFT_DEFAULTS,
        **fields,
        # Matching compares the client's location with providers' later; the tenant's is copied now so a
        # posting keeps meaning what it meant when it was written.
        "client": {"country": tenant["country"], "time_zone": tenant["time_zone"],
                   "business_hours": tenant.get("business_hours") or dict(DEFAULT_BUSINESS_HOURS)},
        "created_at": now,
        "updated_at": now,
        "published_at": None,
        "cancelled_at": None,
        "cancellation_reason": None,
        "awarded_at": None,
        "awarded_proposal_id": None,
        "version": 1,
    }
    # A draft already shows how it will be assessed, so the client learns before publishing that core work
    # will need a confirmation.
    posting["assessment"] = assess_posting(posting, tenant).to_dict()
    return posting


def _next_version(posting: dict, now: datetime, **changes: Any) -> dict:
    return {**posting, **changes, "updated_at": now, "version": posting["version"] + 1}


def edit(posting: dict, changes: dict, tenant: dict, now: datetime) -> tuple[dict, list[str]]:
    """Applies an edit: the new version and what changed (an edit that changes nothing returns the input)."""
    ensure_editable(posting["status"])
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("These fields cannot be edited.", details={name: ["Cannot be edited."]
                                                                           for name in sorted(unknown)})
    edited = {**posting, **changes}
    assessment = assess_posting(edited, tenant)
    if posting["status"] == Status.OPEN:
        # An open posting is visible to providers: it must stay publishable, and an edit must not turn it into
        # core work that nobody confirmed.
        ensure_publishable(edited)
        previously_confirmed = bool(posting["assessment"] and posting["assessment"]["confirmed_core"])
        if assessment.classification is CoreAssessment.CORE and not previously_confirmed:
            raise Conflict(
                f"This edit would make the open posting core work. {assessment.reason} "
                "Cancel it and publish a new posting with confirm_core set to true to outsource it anyway.",
                details={"confirm_core": [assessment.reason]},
            )
        assessment = Assessment(assessment.classification, assessment.reason,
                                confirmed_core=assessment.classification is CoreAssessment.CORE)
    edited["assessment"] = assessment.to_dict()
    changed = changed_fields(posting, edited)
    if not changed:
        return posting, []
    return _next_version(edited, now), changed


def publish(posting: dict, tenant: dict, *, confirm_core: bool, now: datetime) -> dict:
    ensure_transition(posting["status"], Status.OPEN)
    ensure_publishable(posting, Conflict)
    assessment = confirm_assessment(assess_posting(posting, tenant), confirm_core)
    return _next_version(
        posting, now, status=Status.OPEN.value, assessment=assessment.to_dict(), published_at=now
    )


def cancel(posting: dict, *, reason: str, now: datetime) -> dict:
    ensure_transition(posting["status"], Status.CANCELLED)
    return _next_version(
        posting, now, status=Status.CANCELLED.value, cancelled_at=now, cancellation_reason=reason
    )


# -- shortlist, invitations and negotiation -----------------------------------------------------------------
#
# Matching owns shortlists; postings keeps the latest one per posting (a projection of matching's events) so an
# invitation can be checked against it without asking matching. A client invites providers from that shortlist;
# an invited provider accepts or declines; one that accepted submits a proposal, and the two sides take turns:
# whoever did not make the offer on the table either accepts it or counters it. The client awards the posting to
# a proposal whose latest terms both sides agreed to.


class Party(StrEnum):
    CLIENT = "client"
    PROVIDER = "provider"

    @property
    def other(self) -> Party:
        return Party.PROVIDER if self is Party.CLIENT else Party.CLIENT


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    # The posting was awarded or cancelled before the provider answered.
    CLOSED = "closed"


class ProposalStatus(StrEnum):
    AWAITING_CLIENT = "awaiting_client"
    AWAITING_PROVIDER = "awaiting_provider"
    AGREED = "agreed"
    AWARDED = "awarded"
    CLOSED = "closed"


PROPOSAL_STATUSES = tuple(status.value for status in ProposalStatus)
INVITATION_STATUSES = tuple(status.value for status in InvitationStatus)
OPEN_PROPOSAL_STATUSES = frozenset(
    {ProposalStatus.AWAITING_CLIENT, ProposalStatus.AWAITING_PROVIDER, ProposalStatus.AGREED}
)


class Action(StrEnum):
    PROPOSED = "proposed"
    COUNTERED = "countered"
    ACCEPTED = "accepted"


_WAITING_FOR = {Party.CLIENT: ProposalStatus.AWAITING_CLIENT, Party.PROVIDER: ProposalStatus.AWAITING_PROVIDER}
TERM_FIELDS = ("price", "hours_per_week", "available_from")


def shortlist_is_newer(current: dict | None, incoming_version: int) -> bool:
    """Shortlist events may arrive out of order (retries, redeliveries): only a newer version replaces."""
    return current is None or incoming_version > current["version"]


def shortlist_candidate(shortlist: dict | None, provider_id: str) -> dict | None:
    if shortlist is None:
        return None
    return next((c for c in shortlist["candidates"] if c["provider_id"] == provider_id), None)


def _ensure_open(posting: dict, doing: str) -> None:
    if posting["status"] != Status.OPEN:
        raise Conflict(
            f"The posting is {posting['status']}; {doing} only while it is open.",
            details={"status": [f"The posting is {posting['status']}."]},
        )


def posting_summary(posting: dict) -> dict:
    """What an invited provider sees of the posting (it cannot read the client's posting itself)."""
    return {
        "title": posting["title"],
        "category": posting["category"],
        "model": posting["model"],
        "engagement": posting["engagement"],
        "budget": posting["budget"],
        "hours_per_week": posting["hours_per_week"],
        "seats": posting.get("seats", 1),
        "start_date": posting["start_date"],
        "duration_weeks": posting["duration_weeks"],
        "confidentiality": posting["confidentiality"],
    }


def invite(posting: dict, shortlist: dict | None, provider_id: str, *, invitation_id: str,
           now: datetime) -> dict:
    """A new invitation of a shortlisted provider; refused for a posting not open or a provider not shortlisted."""
    _ensure_open(posting, "providers can be invited")
    if shortlist is None:
        raise Conflict(
            "This posting has no shortlist yet; invite providers once matching has proposed some.",
            details={"shortlist": ["No shortlist yet."]},
        )
    candidate = shortlist_candidate(shortlist, provider_id)
    if candidate is None:
        raise ValidationFailed(
            f"Provider {provider_id} is not on the posting's current shortlist (version {shortlist['version']}).",
            details={"provider_id": [f"Not on the current shortlist (version {shortlist['version']})."]},
        )
    return {
        "id": invitation_id,
        "posting_id": posting["id"],
        "tenant_id": posting["tenant_id"],
        "provider_id": provider_id,
        "centre_id": candidate.get("centre_id"),
        "status": InvitationStatus.PENDING.value,
        "shortlist_version": shortlist["version"],
        "rank": candidate["rank"],
        "posting": posting_summary(posting),
        "decline_reason": None,
        "proposal_id": None,
        "invited_at": now,
        "responded_at": None,
        "version": 1,
    }


def answer_invitation(invitation: dict, posting: dict, *, accept: bool, reason: str | None,
                      now: datetime) -> tuple[dict, bool]:
    """The invitation after the provider's answer, and whether it changed (the same answer again is a no-op)."""
    wanted = InvitationStatus.ACCEPTED if accept else InvitationStatus.DECLINED
    if invitation["status"] == wanted:
        return invitation, False
    if invitation["status"] != InvitationStatus.PENDING:
        raise Conflict(
            f"The invitation is already {invitation['status']}; it cannot be {wanted.value} now.",
            details={"status": [f"The invitation is {invitation['status']}."]},
        )
    if accept:
        _ensure_open(posting, "an invitation can be accepted")
    answered = {**invitation, "status": wanted.value, "responded_at": now,
                "decline_reason": None if accept else reason, "version": invitation["version"] + 1}
    return answered, True


def close_invitation(invitation: dict, now: datetime) -> dict:
    return {**invitation, "status": InvitationStatus.CLOSED.value, "responded_at": now,
            "version": invitation["version"] + 1}


def terms_problems(posting: dict, terms: dict) -> dict[str, list[str]]:
    """Why terms cannot be offered on this posting, per field (empty when they can)."""
    problems: dict[str, list[str]] = {}
    budget: Money | None = posting["budget"]
    price: Money = terms["price"]
    if budget is not None and price.currency != budget.currency:
        problems["price"] = [f"Quote in the posting's currency, {budget.currency}."]
    elif price.amount <= 0:
        problems["price"] = [f"Must be more than zero: it is {budget_meaning(posting['engagement'])}."]
    if needs_hours_per_week(posting["engagement"]) and terms.get("hours_per_week") is None:
        problems["hours_per_week"] = [f"Required for {posting['engagement']['type']} work."]
    return problems


def ensure_within_capacity(terms: dict, free_hours: float | None, seats: int = 1) -> None:
    """Terms may not ask more hours a week than the provider has free (matching's count of its capacity less the
    hours its current contracts hold); hours are per seat, so a multi-seat posting asks hours x seats. ``None``:
    matching could not tell; the terms are taken unchecked."""
    hours = terms.get("hours_per_week")
    if free_hours is None or not hours or hours * seats <= free_hours:
        return
    asked = f"{hours}" if seats == 1 else f"{hours} per seat x {seats} seats = {hours * seats:g}"
    raise ValidationFailed(
        "The provider does not have that many free hours a week.",
        details={"hours_per_week": [f"The provider has {free_hours:g} free hours a week; these terms ask for "
                                    f"{asked}."]},
    )


def ensure_terms_fit(posting: dict, terms: dict) -> None:
    problems = terms_problems(posting, terms)
    if problems:
        raise ValidationFailed("These terms do not fit the posting.", details=problems)


def _step(proposal_history: list[dict], action: Action, by: Party, actor: str, terms: dict, note: str | None,
          now: datetime) -> dict:
    return {"step": len(proposal_history) + 1, "action": action.value, "by": by.value, "actor": actor,
            "at": now, "terms": dict(terms), "note": note}


def open_proposal(invitation: dict, posting: dict, *, terms: dict, note: str | None, proposal_id: str,
                  now: datetime) -> dict:
    """The provider's first proposal on an invitation it accepted; the client answers next."""
    _ensure_open(posting, "proposals can be submitted")
    if invitation["status"] != InvitationStatus.ACCEPTED:
        raise Conflict(
            f"The invitation is {invitation['status']}; accept it before submitting a proposal.",
            details={"status": [f"The invitation is {invitation['status']}."]},
        )
    if invitation["proposal_id"] is not None:
        raise Conflict(
            "A proposal was already submitted for this invitation; counter it instead.",
            details={"proposal_id": [invitation["proposal_id"]]},
        )
    ensure_terms_fit(posting, terms)
    history = [_step([], Action.PROPOSED, Party.PROVIDER, f"provider:{invitation['provider_id']}", terms, note, now)]
    return {
        "id": proposal_id,
        "posting_id": posting["id"],
        "tenant_id": posting["tenant_id"],
        "invitation_id": invitation["id"],
        "provider_id": invitation["provider_id"],
        "centre_id": invitation["centre_id"],
        "engagement": posting["engagement"],
        "status": ProposalStatus.AWAITING_CLIENT.value,
        "terms": dict(terms),
        "history": history,
        "agreed_at": None,
        "closed_reason": None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def whose_turn(proposal: dict) -> Party | None:
    """The party that must answer the terms on the table; None once negotiation is over."""
    status = ProposalStatus(proposal["status"])
    if status is ProposalStatus.AWAITING_CLIENT:
        return Party.CLIENT
    if status is ProposalStatus.AWAITING_PROVIDER:
        return Party.PROVIDER
    return None


def _ensure_turn(proposal: dict, party: Party, doing: str) -> None:
    status = ProposalStatus(proposal["status"])
    if status is ProposalStatus.AGREED:
        raise Conflict(
            f"Both sides already agreed to these terms; nothing can be {doing} now (the client may award).",
            details={"status": [status.value]},
        )
    if status in (ProposalStatus.AWARDED, ProposalStatus.CLOSED):
        raise Conflict(f"The negotiation is {status.value}; nothing can be {doing} any more.",
                       details={"status": [status.value]})
    turn = whose_turn(proposal)
    if turn is not party:
        latest = proposal["history"][-1]
        raise Conflict(
            f"It is the {turn.value}'s turn: your terms of step {latest['step']} await their answer.",
            details={"status": [status.value]},
        )


def counter(proposal: dict, posting: dict, party: Party, *, terms: dict, note: str | None, actor: str,
            now: datetime) -> dict:
    """New terms from the party whose turn it is; the other party answers next."""
    _ensure_turn(proposal, party, "countered")
    _ensure_open(posting, "offers can be countered")
    ensure_terms_fit(posting, terms)
    if terms == proposal["terms"]:
        raise ValidationFailed(
            "A counter-offer changes at least one term; to agree to these terms, accept them.",
            details={"terms": ["Same as the terms on the table."]},
        )
    history = [*proposal["history"], _step(proposal["history"], Action.COUNTERED, party, actor, terms, note, now)]
    return {**proposal, "status": _WAITING_FOR[party.other].value, "terms": dict(terms), "history": history,
            "updated_at": now, "version": proposal["version"] + 1}


def accept(proposal: dict, posting: dict, party: Party, *, actor: str, now: datetime) -> tuple[dict, bool]:
    """The proposal once ``party`` accepted the other side's latest terms, and whether that changed anything.

    Accepting again what this party already accepted (a retried request) changes nothing.
    """
    latest = proposal["history"][-1]
    if proposal["status"] == ProposalStatus.AGREED and latest["by"] == party:
        return proposal, False
    _ensure_turn(proposal, party, "accepted")
    _ensure_open(posting, "terms can be accepted")
    history = [*proposal["history"],
               _step(proposal["history"], Action.ACCEPTED, party, actor, proposal["terms"], None, now)]
    return {**proposal, "status": ProposalStatus.AGREED.value, "history": history, "agreed_at": now,
            "updated_at": now, "version": proposal["version"] + 1}, True


def terms_agreed(proposal: dict) -> bool:
    """Both sides agreed to the same latest terms: the last step accepts, by the other side, the offer before it."""
    history = proposal["history"]
    if proposal["status"] not in (ProposalStatus.AGREED, ProposalStatus.AWARDED) or len(history) < 2:
        return False
    offer, acceptance = history[-2], history[-1]
    return (
        acceptance["action"] == Action.ACCEPTED
        and offer["action"] in (Action.PROPOSED, Action.COUNTERED)
        and offer["by"] != acceptance["by"]
        and offer["terms"] == acceptance["terms"] == proposal["terms"]
    )


def close_proposal(proposal: dict, *, reason: str, now: datetime) -> dict:
    return {**proposal, "status": ProposalStatus.CLOSED.value, "closed_reason": reason, "updated_at": now,
            "version": proposal["version"] + 1}


def changes_what_terms_mean(before: dict, after: dict) -> list[str]:
    """The edited fields that change what an offered price means: the engagement (hourly, fixed, retainer, per
    unit) or the budget's currency."""
    changed = []
    if before["engagement"] != after["engagement"]:
        changed.append("engagement")
    if (before["budget"] and after["budget"]) and before["budget"].currency != after["budget"].currency:
        changed.append("budget")
    return changed


def ensure_terms_still_mean_the_same(posting: dict, proposal: dict) -> None:
    """Terms were offered for the posting's engagement at the time, in its currency; they are not awarded for
    another."""
    problems = terms_problems(posting, proposal["terms"])
    if proposal["engagement"] != posting["engagement"]:
        problems["engagement"] = [f"Offered for {proposal['engagement']['type']} work; the posting is now "
                                  f"{posting['engagement']['type']}."]
    if problems:
        raise Conflict("The posting changed since these terms were offered; they no longer fit it.",
                       details=problems)


def award(posting: dict, proposal: dict, *, now: datetime, max_backdate_days: int) -> tuple[dict, dict]:
    """The awarded posting and the winning proposal; the proposal's terms must be agreed by both sides, for the
    posting as it is, and make a contract contracting can draft and its parties can edit."""
    ensure_transition(posting["status"], Status.AWARDED)
    if proposal["posting_id"] != posting["id"]:
        raise ValidationFailed("The proposal is not for this posting.",
                               details={"proposal_id": ["Not a proposal for this posting."]})
    ensure_terms_still_mean_the_same(posting, proposal)
    if not terms_agreed(proposal):
        raise Conflict(
            f"The proposal is {proposal['status']}; award it once both sides have agreed to its latest terms.",
            details={"proposal_id": [f"The proposal is {proposal['status']}."]},
        )
    ensure_contract_dates(posting, proposal["terms"], today=now.date(), max_backdate_days=max_backdate_days)
    awarded_posting = _next_version(posting, now, status=Status.AWARDED.value, awarded_at=now,
                                    awarded_proposal_id=proposal["id"])
    awarded_proposal = {**proposal, "status": ProposalStatus.AWARDED.value, "updated_at": now,
                        "version": proposal["version"] + 1}
    return awarded_posting, awarded_proposal


def ensure_contract_dates(posting: dict, terms: dict, *, today: date, max_backdate_days: int) -> None:
    """409 unless the contract the award becomes has dates contracting accepts: a start at most
    ``max_backdate_days`` in the past (contracting's ``CONTRACTING_MAX_BACKDATE_DAYS``: a backdated contract
    formalises work already under way) and a start and an end within the platform's range of dates."""
    start = agreed_start_date(posting, terms)
    earliest = today - timedelta(days=max_backdate_days)
    if start < earliest:
        raise Conflict(f"The agreed start {start.isoformat()} is more than {max_backdate_days} days in the past: "
                       "move the posting's start date or agree a later available_from first.",
                       details={"start_date": [f"Not before {earliest.isoformat()}."]})
    end = start + timedelta(weeks=posting["duration_weeks"] or 0)
    if end.year > LAST_YEAR:
        raise Conflict(f"The contract would end in {end.year}, after {LAST_YEAR}: start earlier or for shorter.",
                       details={"start_date": [f"The contract ends by {LAST_YEAR}-12-31."]})


def agreed_start_date(posting: dict, terms: dict) -> date:
    """Work starts when the client wants it to, unless the agreed provider is only available later."""
    wanted: date = posting["start_date"]
    available: date = terms["available_from"]
    return max(wanted, available) if wanted is not None else available
