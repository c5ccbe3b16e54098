"""Who is in the demo's world: two clients, individuals in several countries, and firms with delivery centres on
several continents. Plain request bodies for the public API; ``tag`` names the world, so a second run makes a new
one beside the first."""

from __future__ import annotations

from datetime import date, timedelta

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def _money(amount: str, currency: str) -> dict:
    return {"amount": amount, "currency": currency}


def _hours(start: str, end: str, days: list[str] | None = None) -> dict:
    return {"days": days or WEEKDAYS, "start": start, "end": end}


def clients(tag: str) -> dict[str, dict]:
    return {
        "small_business": {
            "name": f"Harbour Dental Group ({tag})", "country": "US", "time_zone": "America/Chicago",
            "segment": "smb", "core_competencies": ["dental care", "patient experience"]},
        "enterprise": {
            "name": f"Nordwind Logistik AG ({tag})", "country": "DE", "time_zone": "Europe/Berlin",
            "segment": "enterprise", "core_competencies": ["freight network planning", "key account management"]},
    }


def _individual(name: str, headline: str, model: str, categories: list[str], skills: dict[str, int],
                languages: list[str], country: str, time_zone: str, hours: dict, hourly: dict) -> dict:
    return {
        "kind": "individual", "display_name": name, "headline": headline, "models": [model],
        "categories": categories, "skills": [{"name": s, "level": level} for s, level in skills.items()],
        "languages": languages, "country": country, "time_zone": time_zone, "working_hours": hours,
        "delivery_centres": [], "currency": hourly["currency"],
        "rates": {"hourly": {"amount": hourly["amount"]}, "monthly_retainer": None, "per_unit": []},
        "capacity_hours_per_week": 40, "certifications": [], "nda_willing": True,
    }


def _centre(name: str, country: str, time_zone: str, seats: int, start: str, end: str) -> dict:
    return {"name": name, "country": country, "time_zone": time_zone, "seats": seats,
            "shifts": [{"name": "day", "days": WEEKDAYS, "start": start, "end": end}]}


def _firm(name: str, headline: str, model: str, categories: list[str], skills: dict[str, int],
          languages: list[str], country: str, time_zone: str, centres: list[dict], hourly: dict,
          certifications: list[str]) -> dict:
    return {
        "kind": "firm", "display_name": name, "headline": headline, "models": [model], "categories": categories,
        "skills": [{"name": s, "level": level} for s, level in skills.items()], "languages": languages,
        "country": country, "time_zone": time_zone, "working_hours": None, "delivery_centres": centres,
        "currency": hourly["currency"],
        "rates": {"hourly": {"amount": hourly["amount"]}, "monthly_retainer": None, "per_unit": []},
        "capacity_hours_per_week": None, "certifications": certifications, "nda_willing": True,
    }


# The individual the small business's walk goes through: nearshore to Chicago, sharing its business hours.
CHOSEN = "Lucía Gómez"


def providers() -> list[dict]:
    admin = ["administrative_support", "scheduling"]
    return [
        _individual(CHOSEN, "Bilingual virtual assistant for clinics and practices", "virtual_assistant", admin,
                    {"calendar management": 5, "email triage": 4}, ["en", "es"], "MX", "America/Mexico_City",
                    _hours("09:00", "17:00"), _money("14.00", "USD")),
        _individual("Maria Santos", "Executive virtual assistant, 8 years with US clinics", "virtual_assistant",
                    admin, {"calendar management": 5, "email triage": 4}, ["en", "tl"], "PH", "Asia/Manila",
                    _hours("08:00", "17:00"), _money("12.00", "USD")),
        _individual("Jordan Blake", "Medical office assistant, HIPAA-trained", "virtual_assistant", admin,
                    {"calendar management": 4, "patient intake": 4}, ["en"], "US", "America/Denver",
                    _hours("08:00", "16:00"), _money("32.00", "USD")),
        _individual("Camila Rojas", "Scheduling and inbox support for small teams", "virtual_assistant", admin,
                    {"calendar management": 3, "email triage": 5}, ["en", "es"], "CO", "America/Bogota",
                    _hours("08:00", "16:00"), _money("13.50", "USD")),
        _individual("Ana Ferreira", "Freelance bookkeeper, Xero and DATEV", "freelance",
                    ["bookkeeping", "finance_accounting"], {"bookkeeping": 5, "datev": 4}, ["pt", "en", "de"],
                    "PT", "Europe/Lisbon", _hours("09:00", "18:00"), _money("28.00", "EUR")),
        _individual("Kwame Mensah", "Freelance data analyst (SQL, Power BI)", "freelance",
                    ["research_analytics", "data_entry"], {"sql": 5, "power bi": 4}, ["en"], "GH", "Africa/Accra",
                    _hours("08:00", "17:00"), _money("24.00", "EUR")),
        _firm("Vistula Contact Services", "Multilingual customer service, 24/5", "bpo",
              ["customer_inquiries", "data_entry"], {"customer service": 5, "ticketing": 4}, ["de", "en", "pl"],
              "PL", "Europe/Warsaw",
              [_centre("Kraków", "PL", "Europe/Warsaw", 60, "07:00", "19:00"),
               _centre("Manila", "PH", "Asia/Manila", 120, "14:00", "23:00")],
              _money("21.00", "EUR"), ["ISO 27001"]),
        _firm("Porto Connect", "German-, French- and English-speaking customer care", "bpo",
              ["customer_inquiries", "hr_administration"], {"customer service": 4, "ticketing": 5},
              ["de", "en", "fr", "pt"], "PT", "Europe/Lisbon",
              [_centre("Porto", "PT", "Europe/Lisbon", 90, "08:00", "18:00"),
               _centre("Casablanca", "MA", "Africa/Casablanca", 70, "08:00", "18:00")],
              _money("19.50", "EUR"), ["ISO 27001", "COPC"]),
        _firm("Andes Contact Center", "Bilingual contact centre for North American brands", "bpo",
              ["customer_inquiries", "administrative_support"], {"customer service": 4, "ticketing": 4},
              ["es", "en"], "CO", "America/Bogota",
              [_centre("Bogotá", "CO", "America/Bogota", 80, "07:00", "19:00"),
               _centre("Ciudad de Guatemala", "GT", "America/Guatemala", 40, "07:00", "17:00")],
              _money("16.00", "USD"), ["PCI DSS"]),
        _firm("Deccan Systems", "Managed helpdesk and cloud operations", "ito",
              ["helpdesk", "infrastructure_management"], {"itil": 5, "azure": 4}, ["en", "de"], "IN",
              "Asia/Kolkata",
              [_centre("Pune", "IN", "Asia/Kolkata", 150, "11:00", "21:00"),
               _centre("Cluj-Napoca", "RO", "Europe/Bucharest", 45, "08:00", "18:00")],
              _money("26.00", "EUR"), ["ISO 27001", "ISO 20000"]),
        _firm("Cape Insight Analytics", "Market research and financial analysis", "kpo",
              ["research_analytics", "finance_accounting"], {"market research": 5, "financial modelling": 4},
              ["en", "de"], "ZA", "Africa/Johannesburg",
              [_centre("Cape Town", "ZA", "Africa/Johannesburg", 35, "08:00", "17:00"),
               _centre("Bengaluru", "IN", "Asia/Kolkata", 50, "10:00", "19:00")],
              _money("38.00", "EUR"), ["ISO 9001"]),
    ]


def small_business_posting(start: date) -> dict:
    return {
        "title": "Inbox and calendar management for the front office",
        "description": "Triage the shared inbox, book, confirm and reschedule appointments.",
        "category": "administrative_support", "model": "virtual_assistant",
        "required_skills": [{"name": "calendar management", "min_level": 3}],
        "nice_to_have_skills": [{"name": "email triage", "min_level": 3}], "languages": ["en"],
        "engagement": {"type": "hourly", "unit": None}, "budget": _money("15.00", "USD"),
        "hours_per_week": 20, "start_date": start.isoformat(), "duration_weeks": 26,
        "shoring": {"preference": "any", "required": False}, "min_overlap_hours": 3, "coverage": "business_hours",
        "sla_requirements": [{"metric": "first_response_minutes", "target": "60", "direction": "at_most",
                              "window": "weekly"}],
        "confidentiality": {"confidential": True, "nda_required": True},
    }


def enterprise_posting(start: date) -> dict:
    return {
        "title": "First-line customer inquiries in German and English",
        "description": "Shipment status, delivery slots and claims intake for B2B customers, by phone and e-mail.",
        "category": "customer_inquiries", "model": "bpo",
        "required_skills": [{"name": "customer service", "min_level": 4}],
        "nice_to_have_skills": [{"name": "ticketing", "min_level": 3}], "languages": ["de", "en"],
        "engagement": {"type": "hourly", "unit": None}, "budget": _money("24.00", "EUR"),
        "hours_per_week": 160, "start_date": start.isoformat(), "duration_weeks": 52,
        "shoring": {"preference": "nearshore", "required": False}, "min_overlap_hours": 6,
        "coverage": "business_hours", "sla_requirements": [],
        "confidentiality": {"confidential": True, "nda_required": True},
    }


# The small business's agreement: what the provider asks, what the client counters with.
ASKED = _money("14.50", "USD")
COUNTERED = _money("12.75", "USD")
HOURS_PER_WEEK = 20

SLAS = [
    {"metric": "first_response_minutes", "target": "60", "direction": "at_most", "window": "weekly",
     "credit": {"percent": "10", "cap": _money("50.00", "USD")}},
    {"metric": "booking_accuracy_percent", "target": "98", "direction": "at_least", "window": "weekly",
     "credit": {"percent": "5", "cap": _money("25.00", "USD")}},
]
# Last week's measurements: first responses averaged 71 minutes (breached); bookings 99.2 % accurate (met).
MEASUREMENTS = {"first_response_minutes": ["95", "70", "48"], "booking_accuracy_percent": ["99.0", "99.4"]}
# Last week's time, Monday to Friday.
TIME = [("4", "Inbox triage and appointment confirmations"), ("4", "Rescheduling after the holiday closure"),
        ("4", "Inbox triage"), ("4", "Recall reminders for the hygiene clinic"), ("3.5", "Weekly inbox report")]
# What the small business says the same work would cost in-house a month (a part-time office assistant, with
# payroll taxes, benefits, desk and software).
IN_HOUSE_MONTHLY = {"administrative_support": _money("3400.00", "USD")}


def last_weeks_monday(today: date) -> date:
    return today - timedelta(days=today.weekday() + 7)
