"""Realistic request bodies for the HTTP API (see docs/design/interfaces.md)."""

from __future__ import annotations

import copy

TENANT = {
    "name": "Acme Dental Group",
    "country": "US",
    "time_zone": "America/Chicago",
    "segment": "smb",
    "core_competencies": ["dental care", "patient experience"],
}

INDIVIDUAL_PROVIDER = {
    "kind": "individual",
    "display_name": "Maria Santos",
    "headline": "Executive virtual assistant, 8 years with US clinics",
    "models": ["virtual_assistant"],
    "categories": ["administrative_support", "scheduling"],
    "skills": [{"name": "calendar management", "level": 5}, {"name": "email triage", "level": 4}],
    "languages": ["en", "tl"],
    "country": "PH",
    "time_zone": "Asia/Manila",
    "working_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"},
    "delivery_centres": [],
    "currency": "USD",
    "rates": {"hourly": {"amount": "12.00", "currency": "USD"}, "monthly_retainer": None, "per_unit": []},
    "capacity_hours_per_week": 40,
    "certifications": [],
    "nda_willing": True,
}

POSTING = {
    "title": "Inbox and calendar management for three clinics",
    "description": "Triage the shared inbox, book and confirm patient appointments.",
    "category": "administrative_support",
    "model": "virtual_assistant",
    "required_skills": [{"name": "calendar management", "min_level": 3}],
    "nice_to_have_skills": [],
    "languages": ["en"],
    "engagement": {"type": "hourly", "unit": None},
    "budget": {"amount": "15.00", "currency": "USD"},
    "hours_per_week": 20,
    "start_date": "2027-01-04",
    "duration_weeks": 26,
    "shoring": {"preference": "any", "required": False},
    "min_overlap_hours": 3,
    "coverage": "business_hours",
    "sla_requirements": [
        {"metric": "first_response_minutes", "target": "60", "direction": "at_most", "window": "weekly"}
    ],
    "confidentiality": {"confidential": True, "nda_required": True},
}


def tenant(**changes) -> dict:
    return {**copy.deepcopy(TENANT), **changes}


def individual_provider(**changes) -> dict:
    return {**copy.deepcopy(INDIVIDUAL_PROVIDER), **changes}


def posting(**changes) -> dict:
    return {**copy.deepcopy(POSTING), **changes}
