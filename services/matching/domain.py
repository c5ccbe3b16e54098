"""Matching's rules: who may take a posting (hard constraints) and how well each fits (soft components).

Everything here is pure and evaluates ONE candidate row against ONE posting; ``ranking.MatchIndex`` applies the
very same rules to every row at once with numpy. The arithmetic of each score is written identically in both
(same operations, same order), so the two agree to the last bit; a unit test holds them to it, and the explanation
of a decision is this module's scalar evaluation of it.

A candidate row is an individual provider, or one delivery centre of a firm: a firm with centres in Manila and
Bogotá competes twice, with each centre's country, time zone, seats and shifts.

Track record (contracts active and completed, committed hours, SLA compliance, ratings) is recomputed from the
facts contracting reports (``contract_fact``, ``sla_result``, ``track_record_document``); until a provider has
any, the neutral defaults of ``TrackRecord`` apply. A firm's committed hours are held per delivery centre, as each
centre competes on its own capacity.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from services.matching import currency, geography
from services.matching.geography import SHORING_ORDER, Shift
from shared.vocabulary.money import Money
from shared.vocabulary.terms import Shoring, canonical_category

# Weights of the soft components; they add up to 1. The total is 0.95 × the weighted sum + the new-provider
# boost (at most 0.05), so a score stays within [0, 1].
WEIGHTS: dict[str, float] = {
    "required_skills": 0.30,
    "nice_to_have_skills": 0.10,
    "rate": 0.20,
    "overlap": 0.10,
    "track_record": 0.15,
    "load": 0.10,
    "shoring": 0.05,
}
FIT_SHARE = 0.95
MAX_NEW_PROVIDER_BOOST = 0.05
NEW_PROVIDER_DAYS = 90.0
UNKNOWN_RATE_SCORE = 0.3
NO_BUDGET_SCORE = 0.5
NEUTRAL_TRACK_RECORD = 0.5
SCORE_UNITS = 10_000  # scores are compared and published with 4 decimal places
WEEKS_PER_MONTH_NUMERATOR, WEEKS_PER_MONTH_DENOMINATOR = 52, 12

# Hard constraints, in the order they are checked and reported.
EXCLUSIONS: dict[str, str] = {
    "model_not_served": "does not offer the outsourcing model",
    "category_not_served": "does not serve the category",
    "not_verified": "not verified",
    "unavailable": "not available when the work starts",
    "no_nda": "will not sign an NDA for confidential work",
    "languages_missing": "does not speak a required language",
    "insufficient_capacity": "not enough free capacity",
    "coverage_not_met": "working hours do not give the coverage asked",
    "shoring_mismatch": "outside the required shoring",
    "insufficient_overlap": "too little overlap with the client's business hours",
}

Schedule = tuple[tuple[str, tuple[Shift, ...]], ...]  # ((time zone, shifts), ...)


# --- the model -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """What contracting tells matching about a provider; neutral until it does.

    Load: ``committed_hours_per_week`` is the hours a week of the provider's active contracts and of terminated
    ones still serving their notice, ``committed_seats`` the seats of those that commit seats instead of hours
    (firms); ``committed_by_centre`` holds, per
    delivery centre, the (hours, seats) of the contracts that name it. A candidate row carries the record with its
    own load in ``committed_hours_per_week`` (see ``candidate_rows`` and ``centre_loads``).
    """

    active_contracts: int = 0
    completed_contracts: int = 0
    committed_hours_per_week: float = 0.0
    sla_compliance: float | None = None  # share of evaluated SLA windows met, 0..1
    rating: float | None = None  # mean completion rating, 1..5
    committed_seats: int = 0
    committed_by_centre: tuple[tuple[str, float, int], ...] = ()  # (centre id, hours a week, seats)
    sla_windows: int = 0  # evaluated SLA windows behind ``sla_compliance``

    @classmethod
    def from_document(cls, document: dict | None) -> TrackRecord:
        document = document or {}
        return cls(
            active_contracts=int(document.get("active_contracts", 0)),
            completed_contracts=int(document.get("completed_contracts", 0)),
            committed_hours_per_week=float(document.get("committed_hours_per_week", 0.0)),
            sla_compliance=_optional_float(document.get("sla_compliance")),
            rating=_optional_float(document.get("rating")),
            committed_seats=int(document.get("committed_seats", 0)),
            committed_by_centre=tuple(sorted((entry["centre_id"], float(entry["hours_per_week"]),
                                              int(entry.get("seats", 0)))
                                             for entry in document.get("committed_by_centre") or ())),
            sla_windows=int(document.get("sla_windows_evaluated", 0)),
        )


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


@dataclass(slots=True)
class CandidateRow:
    provider_id: str
    centre_id: str | None
    display_name: str
    centre_name: str | None
    models: frozenset[str]
    categories: frozenset[str]
    languages: frozenset[str]
    skills: dict[str, int]
    country: str
    time_zone: str
    schedule: Schedule
    firm_schedule: Schedule
    capacity_hours: float
    verified: bool
    availability_status: str
    available_from: date | None
    nda_willing: bool
    currency: str
    hourly_units: int | None
    retainer_units: int | None
    per_unit_units: dict[str, int]
    registered_days: float  # days since the Unix epoch, for the new-provider boost
    track: TrackRecord = field(default_factory=TrackRecord)

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider_id, self.centre_id or "")


@dataclass(frozen=True, slots=True)
class PostingNeeds:
    posting_id: str
    tenant_id: str
    model: str
    category: str
    languages: tuple[str, ...]
    required_skills: tuple[tuple[str, int], ...]
    nice_to_have_skills: tuple[tuple[str, int], ...]
    engagement: str | None
    unit: str | None
    budget: Money | None
    hours_per_week: int | None  # per seat
    duration_weeks: int | None
    start_date: date | None
    shoring_preference: str
    shoring_accepted: tuple[str, ...]  # the classes a candidate may be in; () when any class will do
    min_overlap_hours: int
    coverage: str
    nda_required: bool
    client_country: str
    client_time_zone: str
    published_days: float
    business_hours: geography.BusinessHours = geography.DEFAULT_BUSINESS_HOURS  # the client's, in its zone
    seats: int = 1
    # Worked out once from the fields above (so not compared), as every row evaluated for the posting reads them
    # (fields, not properties or look-ups: 5 % of the instructions explaining a shortlist took):
    # - the client's business hours as week slots, the length of its business day and the hours as a person writes
    #   them, and the week slots the coverage asked must cover (0: none beyond business hours);
    # - seat-hours a week: hours a week per seat × seats (None when the hours are unknown), and for fixed-price work
    #   the estimated hours: seat-hours a week × weeks (None when either is unknown).
    client_mask: int = field(init=False, repr=False, compare=False)
    day_hours: float = field(init=False, repr=False, compare=False)
    hours_text: str = field(init=False, repr=False, compare=False)
    coverage_mask: int = field(init=False, repr=False, compare=False)
    weekly_hours: int | None = field(init=False, repr=False, compare=False)
    estimated_hours: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weekly = self.hours_per_week * self.seats if self.hours_per_week else None
        derived = {"client_mask": geography.business_hours_mask(self.client_time_zone, self.business_hours),
                   "day_hours": geography.business_day_hours(self.business_hours),
                   "hours_text": geography.describe_hours(self.business_hours),
                   "coverage_mask": required_coverage_mask(self),
                   "weekly_hours": weekly,
                   "estimated_hours": weekly * self.duration_weeks if self.hours_per_week and self.duration_weeks
                   else None}
        for name, value in derived.items():
            object.__setattr__(self, name, value)


@dataclass(slots=True)
class Evaluation:
    row: CandidateRow
    exclusions: list[tuple[str, str]]
    components: dict[str, float]
    score: float
    units: int
    reasons: list[str]
    shoring: Shoring
    overlap_per_day: float

    @property
    def eligible(self) -> bool:
        return not self.exclusions


# --- from events to the model ----------------------------------------------------------------------------------


def _days(moment: str | datetime | None) -> float:
    if moment is None:
        return 0.0
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() / 86400.0


def _date(value) -> date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _units(money: dict | None) -> int | None:
    return None if not money else currency.to_units(Money.parse(money).amount)


def _shifts(entries: list[dict]) -> tuple[Shift, ...]:
    return tuple((tuple(s["days"]), s["start"], s["end"]) for s in entries)


@functools.lru_cache(maxsize=4096)
def schedule_mask(schedule: Schedule) -> int:
    """Kept per schedule (a market has a few hundred): every row evaluated asks its own."""
    mask = 0
    for time_zone, shifts in schedule:
        mask |= geography.schedule_mask(time_zone, shifts)
    return mask


def candidate_rows(profile: dict, track: TrackRecord | None = None) -> list[CandidateRow]:
    """The rows a provider competes with: itself, or each of its delivery centres."""
    track = track or TrackRecord()
    rates = profile.get("rates") or {}
    availability = profile.get("availability") or {"status": "available", "available_from": None}
    common = dict(
        provider_id=profile["id"],
        display_name=profile.get("display_name", ""),
        models=frozenset(profile.get("models") or ()),
        categories=frozenset(canonical_category(c) for c in profile.get("categories") or ()),
        languages=frozenset(profile.get("languages") or ()),
        skills={s["name"].strip().lower(): int(s["level"]) for s in profile.get("skills") or ()},
        verified=bool(profile.get("verified") or profile.get("verification")),
        availability_status=availability.get("status", "available"),
        available_from=_date(availability.get("available_from")),
        nda_willing=bool(profile.get("nda_willing")),
        currency=profile.get("currency") or "USD",
        hourly_units=_units(rates.get("hourly")),
        retainer_units=_units(rates.get("monthly_retainer")),
        per_unit_units={p["unit"].strip().lower(): _units(p["price"]) for p in rates.get("per_unit") or ()},
        registered_days=_days(profile.get("created_at")),
        track=track,
    )
    centres = profile.get("delivery_centres") or []
    if not centres:
        hours = profile.get("working_hours") or {"days": [], "start": "09:00", "end": "17:00"}
        schedule: Schedule = ((profile["time_zone"], ((tuple(hours["days"]), hours["start"], hours["end"]),)),)
        return [
            CandidateRow(
                centre_id=None, centre_name=None, country=profile["country"], time_zone=profile["time_zone"],
                schedule=schedule, firm_schedule=schedule,
                capacity_hours=float(profile.get("capacity_hours_per_week") or 0), **common,
            )
        ]
    firm_schedule: Schedule = tuple((c["time_zone"], _shifts(c["shifts"])) for c in centres)
    schedules = {centre["id"]: ((centre["time_zone"], _shifts(centre["shifts"])),) for centre in centres}
    # A seat is a workstation staffed on every shift: a centre offers seats × its weekly shift hours.
    seat_hours = {key: geography.hours(schedule_mask(schedule)) for key, schedule in schedules.items()}
    seats = {centre["id"]: int(centre["seats"]) for centre in centres}
    loads = centre_loads(track, seats, seat_hours)
    rows = []
    for centre in centres:
        key = centre["id"]
        rows.append(
            CandidateRow(
                centre_id=key, centre_name=centre.get("name"), country=centre["country"],
                time_zone=centre["time_zone"], schedule=schedules[key], firm_schedule=firm_schedule,
                capacity_hours=seats[key] * seat_hours[key],
                **{**common, "track": replace(track, committed_hours_per_week=loads[key])},
            )
        )
    return rows


def centre_loads(track: TrackRecord, seats: dict[str, int], seat_hours: dict[str, float]) -> dict[str, float]:
    """Committed hours a week per delivery centre of a firm.

    A centre carries the hours of the contracts that name it, and their seats × its weekly shift hours. What no
    current centre holds (a contract naming no centre, or a centre since closed) is shared among the centres in
    proportion to their capacity, a seat counting the firm's average seat hours.
    """
    capacities = {key: seats[key] * seat_hours[key] for key in seats}
    loads = dict.fromkeys(seats, 0.0)
    held_hours, held_seats = 0.0, 0
    for key, hours, committed_seats in track.committed_by_centre:
        if key in loads:
            loads[key] += hours + committed_seats * seat_hours[key]
            held_hours, held_seats = held_hours + hours, held_seats + committed_seats
    total_capacity, total_seats = sum(capacities.values()), sum(seats.values())
    average_seat_hours = total_capacity / total_seats if total_seats else 0.0
    unheld = (track.committed_hours_per_week - held_hours) + (track.committed_seats - held_seats) * average_seat_hours
    if unheld > 0 and loads:
        for key, capacity in capacities.items():
            loads[key] += unheld * (capacity / total_capacity if total_capacity > 0 else 1.0 / len(loads))
    return loads


def accepted_shoring(shoring: dict) -> tuple[str, ...]:
    """The shoring classes a posting accepts, in ``SHORING_ORDER``; () when it accepts any.

    A posting written before ``accepted`` existed requires exactly its preference when ``required`` is set.
    """
    accepted = shoring.get("accepted")
    if accepted is None:
        preference = shoring.get("preference", "any")
        accepted = [preference] if shoring.get("required") and preference != "any" else []
    classes = tuple(s.value for s in SHORING_ORDER if s.value in accepted)
    return () if len(classes) == len(SHORING_ORDER) else classes


# A posting's status as matching keeps it: only open postings are ranked and re-ranked.
OPEN = "open"
TERMINAL = ("awarded", "cancelled", "closed", "expired")


def posting_status(current: dict | None, posting: dict) -> str:
    """The status to keep for a new snapshot of a posting: one that was awarded, cancelled or closed here stays so,
    whatever a late snapshot says."""
    if current is not None and current.get("status") in TERMINAL:
        return current["status"]
    return posting.get("status", OPEN)


def posting_needs(posting: dict) -> PostingNeeds:
    engagement = posting.get("engagement") or {}
    shoring = posting.get("shoring") or {"preference": "any", "required": False}
    confidentiality = posting.get("confidentiality") or {}
    client = posting.get("client") or {"country": "US", "time_zone": "UTC"}
    budget = posting.get("budget")
    return PostingNeeds(
        posting_id=posting["id"],
        tenant_id=posting["tenant_id"],
        model=posting["model"],
        category=canonical_category(posting["category"]),
        languages=tuple(posting.get("languages") or ()),
        required_skills=tuple((s["name"].strip().lower(), int(s["min_level"]))
                              for s in posting.get("required_skills") or ()),
        nice_to_have_skills=tuple((s["name"].strip().lower(), int(s["min_level"]))
                                  for s in posting.get("nice_to_have_skills") or ()),
        engagement=engagement.get("type"),
        unit=(engagement.get("unit") or "").strip().lower() or None,
        budget=Money.parse(budget) if budget else None,
        hours_per_week=posting.get("hours_per_week"),
        seats=int(posting.get("seats") or 1),
        duration_weeks=posting.get("duration_weeks"),
        start_date=_date(posting.get("start_date")),
        shoring_preference=shoring.get("preference", "any"),
        shoring_accepted=accepted_shoring(shoring),
        min_overlap_hours=int(posting.get("min_overlap_hours") or 0),
        coverage=posting.get("coverage") or "business_hours",
        nda_required=bool(confidentiality.get("confidential") or confidentiality.get("nda_required")),
        client_country=client["country"],
        client_time_zone=client["time_zone"],
        published_days=_days(posting.get("published_at") or posting.get("updated_at")),
        business_hours=business_hours_of(posting),
    )


def business_hours_of(posting: dict) -> geography.BusinessHours:
    """The posting's own business hours, else the client's when the posting was written, else 09:00–17:00
    Mon–Fri."""
    hours = posting.get("business_hours") or (posting.get("client") or {}).get("business_hours")
    if not hours:
        return geography.DEFAULT_BUSINESS_HOURS
    days = tuple(day for day in geography.WEEKDAYS if day in hours["days"])
    return (days, hours["start"], hours["end"])


# --- the track record, recomputed from contracting's facts -------------------------------------------------------
#
# Matching keeps one fact per contract (keyed by its id) and one per evaluated SLA window, each merged so that an
# event applied twice, or late, changes nothing; a provider's track record is then recomputed from all of its
# facts. Arriving in any order, the same events give the same record (for the same day: a terminated contract's
# hours stay committed through its notice period, until its effective date).

ENDED = ("completed", "terminated")
_CONTRACT_TERMS = ("provider_id", "centre_id", "tenant_id", "posting_id", "version", "hours_per_week", "seats")


def contract_fact(contract: dict, status: str, *, rating: float | None = None, ended_at: str | None = None,
                  releases_on: str | None = None) -> dict:
    """What matching keeps of a contract snapshot that arrived in a ``status`` event (active, completed,
    terminated). ``releases_on``: a terminated contract's effective date (ISO date); its hours and seats stay
    committed until that day."""
    terms = contract.get("terms") or {}
    hours = terms.get("hours_per_week")
    return {
        "id": contract["id"],
        "provider_id": contract["provider_id"],
        "centre_id": contract.get("centre_id"),
        "tenant_id": contract.get("tenant_id"),
        "posting_id": contract.get("posting_id"),
        "version": int(contract.get("version") or 1),
        "status": status,
        "hours_per_week": None if hours is None else float(hours),
        "seats": terms.get("seats"),
        "rating": None if rating is None else float(rating),
        "ended_at": ended_at,
        "releases_on": releases_on,
    }


def merge_contract(stored: dict | None, incoming: dict) -> dict | None:
    """``stored`` with ``incoming`` applied, or None when it adds nothing (a duplicate, or an older version).

    The terms come from the highest version (an amendment arriving before the activation does not go back);
    an ended contract stays ended (a late amendment does not make it active again); the completion rating,
    once known, stays.
    """
    if stored is None:
        return dict(incoming)
    merged = dict(stored)
    if incoming["version"] > stored["version"]:
        merged.update({name: incoming[name] for name in _CONTRACT_TERMS})
    if stored["status"] not in ENDED and incoming["status"] in ENDED:
        merged.update(status=incoming["status"], ended_at=incoming["ended_at"],
                      releases_on=incoming.get("releases_on"))
    if merged.get("rating") is None and incoming.get("rating") is not None:
        merged["rating"] = incoming["rating"]
    return None if merged == stored else merged


def sla_result(data: dict) -> dict:
    """One evaluated SLA window (``sla.met.v1`` / ``sla.breached.v1`` data), keyed by contract, SLA and window."""
    sla, window = data["sla"], data["window"]
    sla_key = str(sla.get("id") or sla.get("metric"))
    return {
        "id": "|".join((data["contract_id"], sla_key, window["start"], window["end"])),
        "contract_id": data["contract_id"],
        "provider_id": data["provider_id"],
        "centre_id": data.get("centre_id"),
        "met": bool(data["met"]),
        "evaluated_at": data["evaluated_at"],
    }


def merge_sla_result(stored: dict | None, incoming: dict) -> dict | None:
    """A later evaluation of the same window (a correction) replaces the earlier one; an older one changes
    nothing; of two made at the same instant the breach stands, whichever arrived first."""
    if stored is None:
        return dict(incoming)
    if _evaluation_order(incoming) <= _evaluation_order(stored):
        return None
    return dict(incoming)


def _evaluation_order(result: dict) -> tuple[datetime, bool]:
    return _instant(result["evaluated_at"]), not result["met"]


def _instant(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _hours(contract: dict) -> float:
    """A contract commits its hours a week (per seat, × its seats); one without them commits its seats instead
    (``_seats``), or nothing (fixed-price or per-unit work with neither)."""
    return (contract.get("hours_per_week") or 0.0) * (contract.get("seats") or 1)


def _seats(contract: dict) -> int:
    return 0 if contract.get("hours_per_week") else int(contract.get("seats") or 0)


def serving_notice(contract: dict, today: str) -> bool:
    """A terminated contract whose effective date (``releases_on``) is after ``today`` (ISO dates): the provider
    still works it."""
    return contract["status"] == "terminated" and (contract.get("releases_on") or "") > today


def track_record_document(contracts: Iterable[dict], sla_results: Iterable[dict], today: str) -> dict:
    """A provider's track record from all its contract facts and evaluated SLA windows on ``today`` (an ISO date):
    order-independent. The load counts active contracts and terminated ones still serving their notice."""
    contracts = sorted(contracts, key=lambda c: c["id"])
    active = [c for c in contracts if c["status"] not in ENDED]
    on_notice = [c for c in contracts if serving_notice(c, today)]
    committed = active + on_notice
    completed = [c for c in contracts if c["status"] == "completed"]
    by_centre: dict[str, tuple[float, int]] = {}
    for contract in committed:
        if contract.get("centre_id"):
            hours, seats = by_centre.get(contract["centre_id"], (0.0, 0))
            by_centre[contract["centre_id"]] = (hours + _hours(contract), seats + _seats(contract))
    ratings = [c["rating"] for c in completed if c.get("rating") is not None]
    windows = list(sla_results)
    met = sum(1 for window in windows if window["met"])
    return {
        "active_contracts": len(active),
        "completed_contracts": len(completed),
        "terminated_contracts": sum(1 for c in contracts if c["status"] == "terminated"),
        "contracts_on_notice": len(on_notice),
        "committed_hours_per_week": sum((_hours(c) for c in committed), 0.0),
        "committed_seats": sum(_seats(c) for c in committed),
        "committed_by_centre": [{"centre_id": centre, "hours_per_week": hours, "seats": seats}
                                for centre, (hours, seats) in sorted(by_centre.items())],
        "sla_windows_evaluated": len(windows),
        "sla_windows_met": met,
        "sla_compliance": met / len(windows) if windows else None,
        "ratings": len(ratings),
        "rating": sum(ratings) / len(ratings) if ratings else None,
    }


# --- scores: scalar forms (ranking.py has the same arithmetic on arrays) ----------------------------------------


def skill_score(level: int, min_level: int) -> float:
    """0 without the skill; below the asked level up to 0.8; at it 0.8, rising to 1.0 at level 5."""
    if level <= 0:
        return 0.0
    if level < min_level:
        return 0.8 * level / min_level
    if min_level >= 5:
        return 1.0
    return 0.8 + 0.2 * (level - min_level) / (5 - min_level)


def skills_score(skills: dict[str, int], requirements: tuple[tuple[str, int], ...]) -> float:
    if not requirements:
        return 1.0
    total = 0.0
    for name, min_level in requirements:
        total = total + skill_score(skills.get(name, 0), min_level)
    return total / len(requirements)


def rate_score(ratio: float) -> float:
    """Cost / budget → score: within budget 0.8–1.0 (cheaper is better, saturating at 60 %), above it falling
    to 0 at 40 % over."""
    if ratio <= 1.0:
        return 0.8 + 0.2 * min(1.0, (1.0 - ratio) / 0.4)
    return max(0.0, 0.8 - 2.0 * (ratio - 1.0))


def overlap_per_day(overlap_slots: int, business_days: int = 5) -> float:
    return overlap_slots * 0.5 / float(business_days)


def overlap_score(per_day: float, day_hours: float = 8.0) -> float:
    """Overlap per business day against the length of the client's business day (a full day scores 1)."""
    return min(1.0, per_day / day_hours)


def track_record_score(track: TrackRecord) -> float:
    if track.sla_compliance is None and track.rating is None:
        return NEUTRAL_TRACK_RECORD
    if track.rating is None:
        return track.sla_compliance
    if track.sla_compliance is None:
        return (track.rating - 1.0) / 4.0
    return (track.sla_compliance + (track.rating - 1.0) / 4.0) / 2.0


def load_score(committed: float, capacity: float) -> float:
    if capacity <= 0:
        return 0.0
    return max(0.0, 1.0 - committed / capacity)


def shoring_score(shoring: Shoring, preference: str) -> float:
    if preference == "any":
        return 1.0
    # a class equals its value: the preference is found among them as it is, without making a ``Shoring`` of it
    distance = abs(SHORING_ORDER.index(shoring) - SHORING_ORDER.index(preference))
    return 1.0 - 0.5 * distance


def new_provider_boost(completed_contracts: int, registered_days: float, published_days: float) -> float:
    """A bounded lift for providers without completed work, fading over their first 90 days."""
    if completed_contracts > 0:
        return 0.0
    freshness = 1.0 - (published_days - registered_days) / NEW_PROVIDER_DAYS
    return MAX_NEW_PROVIDER_BOOST * max(0.0, min(1.0, freshness))


def combine(components: dict, boost):
    """FIT_SHARE × the weighted sum + boost; works on floats and on numpy arrays alike."""
    total = None
    for name, weight in WEIGHTS.items():
        term = weight * components[name]
        total = term if total is None else total + term
    return FIT_SHARE * total + boost


def to_units(score: float) -> int:
    return math.floor(score * SCORE_UNITS + 0.5)


def score_bound_units(row: CandidateRow, needs: PostingNeeds) -> int:
    """At least ``evaluate(row, needs).units`` whenever the row is eligible, without the costly part of
    ``evaluate``: skills, track record, load and the new-provider boost exactly, rate, overlap and shoring at their
    maximum (1). ``combine`` and ``to_units`` only multiply by positive weights, add and round, each monotone in
    floating point too, so no component at its maximum can give fewer units than the real one."""
    components = {
        "required_skills": skills_score(row.skills, needs.required_skills),
        "nice_to_have_skills": skills_score(row.skills, needs.nice_to_have_skills),
        "rate": 1.0,
        "overlap": 1.0,
        "track_record": track_record_score(row.track),
        "load": load_score(row.track.committed_hours_per_week, row.capacity_hours),
        "shoring": 1.0,
    }
    boost = new_provider_boost(row.track.completed_contracts, row.registered_days, needs.published_days)
    return to_units(combine(components, boost))


@functools.lru_cache(maxsize=16_384)
def score_text(units: int) -> str:
    """Kept per value (a score in [0, 1] has 10,001): every candidate and listed centre writes one."""
    if units >= 0:  # what the Decimal writes, without one (a re-match writes hundreds)
        return f"{units // SCORE_UNITS}.{units % SCORE_UNITS:04d}"
    return format(Decimal(units).scaleb(-4), "f")


def budget_units_in(needs: PostingNeeds, currency_code: str) -> int | None:
    """The posting's budget in a provider's currency, in units (None when it cannot be converted)."""
    return budget_in(needs, currency_code)[0]


def budget_in(needs: PostingNeeds, currency_code: str) -> tuple[int | None, str]:
    """The posting's budget in a provider's currency: its units and their text (``currency.cents_text``); (None, "")
    when the posting names none or it cannot be converted."""
    budget = needs.budget
    if budget is None:
        return None, ""
    return _converted(budget.amount, budget.currency, currency_code)


@functools.lru_cache(maxsize=4096)
def _converted(amount: Decimal, budget_currency: str, currency_code: str) -> tuple[int | None, str]:
    """Kept by amount and currency codes, not by the budget's ``Money``: a dataclass hashes in Python, and every row
    evaluated looks its budget up (with its text, for its reason: 5 % of a shortlist's instructions)."""
    converted = currency.convert(Money(amount, budget_currency), currency_code)
    if converted is None:
        return None, ""
    units = currency.to_units(converted.amount)
    return units, currency.cents_text(units)


def cost_units(row: CandidateRow, needs: PostingNeeds) -> float | None:
    """What the provider would charge for the unit the budget is expressed in (None: no comparable rate).

    hourly: the hourly rate; fixed: hourly rate × estimated hours (seat-hours a week × weeks); retainer: the
    monthly retainer, else hourly rate × seat-hours a week × 52 / 12; per_unit: the price of the posting's unit.
    """
    engagement = needs.engagement
    if engagement == "hourly":
        return None if row.hourly_units is None else float(row.hourly_units)
    if engagement == "fixed":
        hours = needs.estimated_hours
        return None if row.hourly_units is None or hours is None else float(row.hourly_units * hours)
    if engagement == "retainer":
        if row.retainer_units is not None:
            return float(row.retainer_units)
        if row.hourly_units is None or not needs.weekly_hours:
            return None
        return float(row.hourly_units * needs.weekly_hours * WEEKS_PER_MONTH_NUMERATOR) / 12.0
    if engagement == "per_unit":
        units = row.per_unit_units.get(needs.unit) if needs.unit else None
        return None if units is None else float(units)
    return None


def ratio_of(cost: float, budget: float) -> float:
    if budget <= 0.0:
        return math.inf if cost > 0.0 else 1.0
    return cost / budget


_COST_NAMES = {"hourly": "hourly rate", "fixed": "estimated price", "retainer": "monthly cost"}  # a reason's words


def rate_component(row: CandidateRow, needs: PostingNeeds, explain: bool = True) -> tuple[float, str]:
    if needs.budget is None or needs.engagement is None:
        return NO_BUDGET_SCORE, "the posting names no budget (neutral)"
    budget, budget_text = budget_in(needs, row.currency)
    if budget is None:
        return UNKNOWN_RATE_SCORE, f"no exchange rate for {row.currency} (rate unknown)"
    cost = cost_units(row, needs)
    if cost is None:
        return UNKNOWN_RATE_SCORE, f"no {needs.engagement.replace('_', '-')} rate comparable with the budget"
    ratio = ratio_of(cost, float(budget))
    if not explain:
        return rate_score(ratio), ""
    what = f"price per {needs.unit}" if needs.engagement == "per_unit" else _COST_NAMES[needs.engagement]
    return rate_score(ratio), (f"{what} {currency.cents_text(int(round(cost)))} {row.currency} is {ratio:.0%} of "
                               f"the budget ({budget_text} {row.currency})")


# --- evaluating one row ----------------------------------------------------------------------------------------


def required_coverage_mask(needs: PostingNeeds) -> int:
    if needs.coverage == "24x7":
        return geography.FULL_WEEK
    if needs.coverage == "extended":
        return geography.extended_hours_mask(needs.client_time_zone, needs.business_hours[0])
    return 0


def covers(row: CandidateRow, needs: PostingNeeds) -> tuple[bool, str]:
    required = needs.coverage_mask
    if not required:
        return True, ""
    if required & ~schedule_mask(row.schedule) == 0:
        return True, "its shifts cover the hours asked"
    if needs.coverage == "24x7" and required & ~schedule_mask(row.firm_schedule) == 0:
        return True, "follow-the-sun: the firm's centres together cover 24/7"
    return False, ""


def coverage_gap(row: CandidateRow, needs: PostingNeeds) -> str:
    """Why a row does not give the coverage asked, in hours of the week in the client's time: what its shifts
    cover and what is missing, and for 24/7 the same for the firm's centres together."""
    zone = needs.client_time_zone
    required = needs.coverage_mask
    asked = "24/7" if needs.coverage == "24x7" else "extended hours"
    own = schedule_mask(row.schedule) & required

    def cover_and_miss(mask: int) -> str:
        return (f"cover {geography.describe_week(mask, zone)}; missing "
                f"{geography.describe_week(required & ~mask, zone)}")

    text = (f"its shifts do not cover {asked} ({geography.describe_week(required, zone)}, client time {zone}): "
            f"they {cover_and_miss(own)}")
    if needs.coverage == "24x7" and row.firm_schedule != row.schedule:
        text += f"; the firm's centres together {cover_and_miss(schedule_mask(row.firm_schedule) & required)}"
    return text


def row_overlap_per_day(row: CandidateRow, needs: PostingNeeds) -> float:
    """Hours a business day, on average, the row's shifts share with the client's business hours."""
    return overlap_per_day((schedule_mask(row.schedule) & needs.client_mask).bit_count(), len(needs.business_hours[0]))


class _Excluded(Exception):
    pass


def evaluate(row: CandidateRow, needs: PostingNeeds, *, explain: bool = True) -> Evaluation:
    """Check every hard constraint and compute every soft component of ``row`` for ``needs``.

    ``explain=False`` is the ranking loop's form: it stops at the first exclusion and writes no reasons.
    """
    exclusions: list[tuple[str, str]] = []

    def exclude(code: str, why: str) -> None:
        exclusions.append((code, why))
        if not explain:
            raise _Excluded

    shoring = Shoring.OFFSHORE
    per_day = 0.0
    try:
        if needs.model not in row.models:
            exclude("model_not_served",
                    f"does not offer {needs.model} work (offers {', '.join(sorted(row.models))})")
        if needs.category not in row.categories:
            exclude("category_not_served", f"does not serve {needs.category}")
        if not row.verified:
            exclude("not_verified", "has not been verified by an operator yet")
        if row.availability_status == "unavailable":
            exclude("unavailable", "is marked unavailable")
        elif row.available_from and needs.start_date and row.available_from > needs.start_date:
            exclude("unavailable", f"available only from {row.available_from}, the work starts {needs.start_date}")
        if needs.nda_required and not row.nda_willing:
            exclude("no_nda", "will not sign an NDA and the work is confidential")
        if not row.languages.issuperset(needs.languages):
            missing = [code for code in needs.languages if code not in row.languages]
            exclude("languages_missing", f"does not speak {', '.join(missing)}")
        free = row.capacity_hours - row.track.committed_hours_per_week
        if needs.weekly_hours and free < needs.weekly_hours:
            per_seat = f" ({needs.seats} seats × {needs.hours_per_week})" if needs.seats > 1 else ""
            exclude("insufficient_capacity",
                    f"has {free:g} free hours a week, the work needs {needs.weekly_hours}{per_seat}")
        covered, coverage_note = covers(row, needs)
        if not covered:
            exclude("coverage_not_met", coverage_gap(row, needs) if explain else "")
        shoring = geography.shoring_class(needs.client_country, needs.client_time_zone, row.country, row.time_zone)
        if needs.shoring_accepted and shoring not in needs.shoring_accepted:
            exclude("shoring_mismatch", f"is {shoring} for this client ({row.country}), the posting accepts "
                                        f"{' or '.join(needs.shoring_accepted)}")
        per_day = row_overlap_per_day(row, needs)
        if needs.min_overlap_hours and per_day < needs.min_overlap_hours:
            exclude("insufficient_overlap", f"overlaps {per_day:g} h per business day on average with the "
                                            f"client's {needs.hours_text}, the posting needs "
                                            f"{needs.min_overlap_hours} h")
    except _Excluded:
        return Evaluation(row, exclusions, {}, 0.0, 0, [], shoring, per_day)

    rate, rate_reason = rate_component(row, needs, explain)
    components = {
        "required_skills": skills_score(row.skills, needs.required_skills),
        "nice_to_have_skills": skills_score(row.skills, needs.nice_to_have_skills),
        "rate": rate,
        "overlap": overlap_score(per_day, needs.day_hours),
        "track_record": track_record_score(row.track),
        "load": load_score(row.track.committed_hours_per_week, row.capacity_hours),
        "shoring": shoring_score(shoring, needs.shoring_preference),
    }
    boost = new_provider_boost(row.track.completed_contracts, row.registered_days, needs.published_days)
    score = combine(components, boost)
    components["new_provider_boost"] = boost
    reasons = _reasons(row, needs, components, rate_reason, shoring, per_day, coverage_note) if explain else []
    return Evaluation(row, exclusions, components, score, to_units(score), reasons, shoring, per_day)


def skills_reason(row: CandidateRow, requirements: tuple[tuple[str, int], ...], label: str) -> str:
    if not requirements:
        return f"no {label} skills asked"
    skills, met, details = row.skills, 0, []
    for name, level in requirements:  # one loop, not a count and a join (0.8 against 2.0 µs measured)
        has = skills.get(name, 0)
        met += has >= level
        details.append(_skill_detail(name, has, level))
    return f"{label} skills: {met} of {len(requirements)} at the asked level ({', '.join(details)})"


@functools.lru_cache(maxsize=4096)
def _skill_detail(name: str, has: int, level: int) -> str:
    """Kept by what it says: a skill, the level held and the level asked (a few of each)."""
    return f"{name} {has}/{level}"


def overlap_reason(row: CandidateRow, needs: PostingNeeds, per_day: float) -> str:
    return _overlap_reason(per_day, needs.hours_text, row.time_zone)


@functools.lru_cache(maxsize=4096)
def _overlap_reason(per_day: float, hours: str, time_zone: str) -> str:
    """Kept by what it says: a few overlaps, business hours and zones make most of them."""
    return f"{per_day:g} h overlap per business day on average with the client's {hours} ({time_zone})"


def shoring_reason(row: CandidateRow, needs: PostingNeeds, shoring: str) -> str:
    where = f"{row.centre_name} centre, {row.country}" if row.centre_id else row.country
    return f"{shoring} ({where})" + ("" if needs.shoring_preference in ("any", shoring)
                                     else f"; the client prefers {needs.shoring_preference}")


def standing_reasons(row: CandidateRow) -> tuple[str, str]:
    """What the row says of itself whatever the posting: its track record and its load."""
    track = row.track
    if track.sla_compliance is None and track.rating is None:
        record = "no track record yet (neutral)"
    else:
        record = _record_reason(track.completed_contracts, track.active_contracts, track.sla_compliance,
                                track.sla_windows, track.rating)
    return record, _load_reason(track.committed_hours_per_week, row.capacity_hours)


# A row's standing reasons kept by what they say (the numbers, not the record: a dataclass hashes in Python): a row
# listed on many shortlists, and rows of equal load, are written once. Equal numbers write equal texts: no -0.0
# reaches a record or a load.


@functools.lru_cache(maxsize=4096)
def _record_reason(completed: int, active: int, sla_compliance: float | None, sla_windows: int,
                   rating: float | None) -> str:
    parts = [f"{completed} completed contracts"]
    if active:
        parts.append(f"{active} active")
    if sla_compliance is not None:
        windows = f" in {sla_windows} windows" if sla_windows else ""
        parts.append(f"SLA met {sla_compliance:.0%}{windows}")
    if rating is not None:
        parts.append(f"rated {rating:.1f}/5")
    return "track record: " + ", ".join(parts)


@functools.lru_cache(maxsize=4096)
def _load_reason(committed: float, capacity: float) -> str:
    return f"load: {committed:g} of {capacity:g} h a week committed"


def reasons_of(required: str, nice_to_have: str, rate: str, overlap: str, shoring: str, standing: tuple[str, str],
               coverage_note: str, boost: float) -> list[str]:
    """A row's reasons, in their order, from their parts (``_reasons``; ``rematching`` reuses parts across
    postings)."""
    reasons = [required, nice_to_have, rate, overlap, shoring, *standing]
    if coverage_note:
        reasons.append(coverage_note)
    if boost > 0:
        reasons.append(f"new on the platform: +{boost:.4f}")
    return reasons


def _reasons(row, needs, components, rate_reason, shoring, per_day, coverage_note) -> list[str]:
    return reasons_of(skills_reason(row, needs.required_skills, "required"),
                      skills_reason(row, needs.nice_to_have_skills, "nice-to-have"), rate_reason,
                      overlap_reason(row, needs, per_day), shoring_reason(row, needs, shoring), standing_reasons(row),
                      coverage_note, components["new_provider_boost"])


def sort_key(units: int, row: CandidateRow) -> tuple:
    """Best first; equal scores ordered by provider id, then centre id (stable across runs and processes)."""
    return (-units, row.provider_id, row.centre_id or "")
