"""Labelled, realistic clients, postings and providers for matching's scenarios.

The defaults describe a match that passes every hard constraint: a New York dental group wants a virtual assistant
for inbox and calendar work, 20 hours a week at up to 15 USD an hour, confidential, three hours of overlap a day;
Ana, a verified assistant in Mexico City, works 09:00–17:00 there (seven hours of New York's business day), speaks
English and Spanish, signs NDAs and charges 12 USD. Each scenario changes one thing.
"""

from __future__ import annotations

import copy
import itertools

from services.matching import domain
from services.matching.ranking import MatchIndex

_ids = itertools.count(1)
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
TENANT = "ten_" + "a" * 32


def provider_id(n: int | None = None) -> str:
    return f"prv_{(n if n is not None else next(_ids)):032x}"


ANA = {
    "kind": "individual",
    "display_name": "Ana Torres",
    "headline": "Bilingual executive assistant",
    "models": ["virtual_assistant"],
    "categories": ["administrative_support", "scheduling"],
    "skills": [{"name": "calendar management", "level": 4}, {"name": "email triage", "level": 4}],
    "languages": ["en", "es"],
    "country": "MX",
    "time_zone": "America/Mexico_City",
    "working_hours": {"days": WEEKDAYS, "start": "09:00", "end": "17:00"},
    "delivery_centres": [],
    "currency": "USD",
    "rates": {"hourly": {"amount": "12.00", "currency": "USD"}, "monthly_retainer": None, "per_unit": []},
    "capacity_hours_per_week": 40,
    "availability": {"status": "available", "available_from": None},
    "certifications": [],
    "nda_willing": True,
    "verified": True,
    "verified_at": "2026-01-10T10:00:00.000Z",
    "created_at": "2026-01-01T10:00:00.000Z",
    "updated_at": "2026-01-10T10:00:00.000Z",
    "version": 2,
}

SHIFTS_24X7 = [
    {"name": "morning", "days": [*WEEKDAYS, "sat", "sun"], "start": "06:00", "end": "14:00"},
    {"name": "evening", "days": [*WEEKDAYS, "sat", "sun"], "start": "14:00", "end": "22:00"},
    {"name": "night", "days": [*WEEKDAYS, "sat", "sun"], "start": "22:00", "end": "06:00"},
]

CEBU_BPO = {
    **copy.deepcopy(ANA),
    "kind": "firm",
    "display_name": "Cebu Contact Partners",
    "models": ["bpo"],
    "categories": ["customer_inquiries", "helpdesk"],
    "skills": [{"name": "zendesk", "level": 5}, {"name": "live chat", "level": 4}],
    "languages": ["en", "tl"],
    "country": "PH",
    "time_zone": "Asia/Manila",
    "working_hours": None,
    "capacity_hours_per_week": None,
    "delivery_centres": [
        {"id": "dc_cebu", "name": "Cebu IT Park", "country": "PH", "time_zone": "Asia/Manila", "seats": 120,
         "shifts": SHIFTS_24X7},
    ],
    "rates": {"hourly": {"amount": "9.00", "currency": "USD"},
              "monthly_retainer": {"amount": "6000.00", "currency": "USD"},
              "per_unit": [{"unit": "ticket", "price": {"amount": "1.20", "currency": "USD"}}]},
}

POSTING = {
    "id": "pst_" + "1" * 32,
    "tenant_id": TENANT,
    "status": "open",
    "title": "Inbox and calendar management for three clinics",
    "description": "",
    "category": "administrative_support",
    "model": "virtual_assistant",
    "required_skills": [{"name": "calendar management", "min_level": 3}],
    "nice_to_have_skills": [{"name": "email triage", "min_level": 2}],
    "languages": ["en"],
    "engagement": {"type": "hourly", "unit": None},
    "budget": {"amount": "15.00", "currency": "USD"},
    "hours_per_week": 20,
    "start_date": "2027-01-04",
    "duration_weeks": 26,
    "shoring": {"preference": "any", "required": False},
    "min_overlap_hours": 3,
    "coverage": "business_hours",
    "sla_requirements": [],
    "confidentiality": {"confidential": True, "nda_required": True},
    "assessment": {"classification": "non_core", "reason": "Administrative support is non-core by default.",
                   "confirmed_core": False},
    "client": {"country": "US", "time_zone": "America/New_York"},
    "created_at": "2026-12-01T09:00:00.000Z",
    "updated_at": "2026-12-01T09:30:00.000Z",
    "published_at": "2026-12-01T09:30:00.000Z",
    "cancelled_at": None,
    "cancellation_reason": None,
    "version": 2,
}

HELPDESK_24X7 = {
    **copy.deepcopy(POSTING),
    "id": "pst_" + "2" * 32,
    "title": "Round-the-clock first-line support",
    "category": "customer_inquiries",
    "model": "bpo",
    "required_skills": [{"name": "zendesk", "min_level": 3}],
    "nice_to_have_skills": [],
    "hours_per_week": 168,
    "coverage": "24x7",
    "min_overlap_hours": 0,
}


def profile(base: dict = ANA, n: int | None = None, track: dict | None = None, **changes) -> dict:
    """A provider profile: ``base`` with ``changes`` (top-level keys), a fresh id, an optional track record."""
    result = {**copy.deepcopy(base), **copy.deepcopy(changes), "id": provider_id(n)}
    if track is not None:
        result["track_record"] = track
    return result


def posting(base: dict = POSTING, **changes) -> dict:
    return {**copy.deepcopy(base), **copy.deepcopy(changes)}


def rows(profile_: dict) -> list[domain.CandidateRow]:
    return domain.candidate_rows(profile_, domain.TrackRecord.from_document(profile_.get("track_record")))


def evaluate(profile_: dict, posting_: dict = POSTING) -> domain.Evaluation:
    (row,) = rows(profile_)
    return domain.evaluate(row, domain.posting_needs(posting_))


def index_of(*profiles: dict) -> MatchIndex:
    index = MatchIndex()
    for p in profiles:
        index.upsert(p["id"], rows(p))
    return index


def ranking(posting_: dict, *profiles: dict, k: int = 10) -> list[tuple[str, str | None, int]]:
    """(provider id, centre id, score units) best first, from the index."""
    index = index_of(*profiles)
    ranked = index.rank(domain.posting_needs(posting_), k)
    return [(index.rows[i].provider_id, index.rows[i].centre_id, units) for i, units in ranked.top]
