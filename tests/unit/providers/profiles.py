"""Realistic provider profiles as callers send them: an individual VA and a BPO firm."""

from __future__ import annotations

import copy

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]

INDIVIDUAL = {
    "kind": "individual",
    "display_name": "Maria Santos",
    "headline": "Executive virtual assistant, 8 years",
    "models": ["virtual_assistant"],
    "categories": ["administrative_support", "scheduling"],
    "skills": [{"name": "Calendar Management ", "level": 5}, {"name": "email triage", "level": 4}],
    "languages": ["en", "tl"],
    "country": "PH",
    "time_zone": "Asia/Manila",
    "working_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"},
    "delivery_centres": [],
    "currency": "USD",
    "rates": {
        "hourly": {"amount": "12.00", "currency": "USD"},
        "monthly_retainer": None,
        "per_unit": [{"unit": "ticket", "price": {"amount": "1.50", "currency": "USD"}}],
    },
    "capacity_hours_per_week": 40,
    "certifications": ["Google Workspace Administrator"],
    "nda_willing": True,
}

FIRM = {
    "kind": "firm",
    "display_name": "Northwind Support Services",
    "headline": "Multilingual helpdesk and back office",
    "models": ["bpo", "ito"],
    "categories": ["helpdesk", "customer_inquiries"],
    "skills": [{"name": "zendesk", "level": 4}],
    "languages": ["en", "es"],
    "country": "CR",
    "time_zone": "America/Costa_Rica",
    "working_hours": None,
    "delivery_centres": [
        {
            "name": "San José",
            "country": "CR",
            "time_zone": "America/Costa_Rica",
            "seats": 400,
            "shifts": [
                {"name": "day", "days": WEEKDAYS, "start": "07:00", "end": "16:00"},
                {"name": "night", "days": WEEKDAYS, "start": "22:00", "end": "06:00"},
            ],
        },
        {
            "name": "Bogotá",
            "country": "CO",
            "time_zone": "America/Bogota",
            "seats": 200,
            "shifts": [{"name": "day", "days": WEEKDAYS, "start": "08:00", "end": "17:00"}],
        },
    ],
    "currency": "USD",
    "rates": {"hourly": {"amount": "18.50", "currency": "USD"}, "monthly_retainer": None, "per_unit": []},
    "capacity_hours_per_week": None,
    "certifications": ["ISO 27001"],
    "nda_willing": True,
}


def individual(**changes) -> dict:
    return {**copy.deepcopy(INDIVIDUAL), **changes}


def firm(**changes) -> dict:
    return {**copy.deepcopy(FIRM), **changes}
