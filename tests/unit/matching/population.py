"""Realistic, reproducible providers and postings for matching's tests and benchmark.

Profiles have the shape of the providers service's events (``data.provider``): individuals (virtual assistants,
freelancers) and firms with one to three delivery centres, spread over the countries outsourcing really comes
from, with local time zones, languages, currencies, working hours (including night shifts serving the Americas),
rates by market, capacity, verification, availability and — for some — a track record.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

# country: (time zone, local currency, local languages, hourly rate band in USD, weight)
MARKETS = {
    "PH": ("Asia/Manila", "PHP", ["tl"], (6, 18), 18),
    "IN": ("Asia/Kolkata", "INR", ["hi"], (8, 30), 18),
    "US": ("America/New_York", "USD", [], (25, 90), 8),
    "MX": ("America/Mexico_City", "MXN", ["es"], (12, 40), 6),
    "CO": ("America/Bogota", "COP", ["es"], (10, 35), 5),
    "BR": ("America/Sao_Paulo", "BRL", ["pt"], (12, 40), 4),
    "AR": ("America/Argentina/Buenos_Aires", "ARS", ["es"], (10, 35), 3),
    "PL": ("Europe/Warsaw", "PLN", ["pl"], (20, 55), 5),
    "RO": ("Europe/Bucharest", "RON", ["ro"], (18, 50), 3),
    "UA": ("Europe/Kyiv", "UAH", ["uk", "ru"], (15, 45), 4),
    "GB": ("Europe/London", "GBP", [], (30, 95), 4),
    "DE": ("Europe/Berlin", "EUR", ["de"], (35, 100), 3),
    "ES": ("Europe/Madrid", "EUR", ["es"], (25, 70), 3),
    "ZA": ("Africa/Johannesburg", "ZAR", ["af"], (10, 35), 3),
    "KE": ("Africa/Nairobi", "KES", ["sw"], (6, 20), 3),
    "EG": ("Africa/Cairo", "EGP", ["ar"], (6, 22), 2),
    "PK": ("Asia/Karachi", "PKR", ["ur"], (6, 22), 4),
    "VN": ("Asia/Ho_Chi_Minh", "VND", ["vi"], (8, 28), 2),
    "CA": ("America/Toronto", "CAD", ["fr"], (30, 85), 2),
    "AU": ("Australia/Sydney", "AUD", [], (35, 95), 1),
}
COUNTRIES = list(MARKETS)
WEIGHTS = [MARKETS[c][4] for c in COUNTRIES]

SKILLS = {
    "administrative_support": ["calendar management", "email triage", "travel booking", "document formatting"],
    "data_entry": ["data entry", "excel", "ocr cleanup", "crm updates"],
    "scheduling": ["calendar management", "appointment booking", "shift rostering"],
    "customer_inquiries": ["live chat", "phone support", "zendesk", "email support"],
    "bookkeeping": ["quickbooks", "xero", "reconciliation", "accounts payable"],
    "helpdesk": ["it support", "active directory", "jira service management", "windows"],
    "infrastructure_management": ["aws", "linux", "kubernetes", "monitoring"],
    "hr_administration": ["payroll", "onboarding", "hris", "benefits administration"],
    "finance_accounting": ["financial reporting", "ifrs", "month-end close", "fp&a"],
    "research_analytics": ["market research", "sql", "python", "tableau"],
    "digital_marketing": ["seo", "google ads", "social media", "copywriting"],
    "software_development": ["python", "javascript", "react", "java"],
}
# The categories of the release the benchmarks were first measured on (legacy ids now, each mapped to a taxonomy
# category by matching): the same population keeps the benchmark comparable.
CATEGORY_IDS = tuple(SKILLS)
INDIVIDUAL_CATEGORIES = ["administrative_support", "data_entry", "scheduling", "customer_inquiries", "bookkeeping",
                         "digital_marketing", "research_analytics", "software_development", "hr_administration"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
EPOCH = datetime(2026, 6, 1, tzinfo=UTC)


def _id(rng: random.Random, prefix: str) -> str:
    return prefix + uuid.UUID(int=rng.getrandbits(128)).hex


def _money(amount: float, currency: str) -> dict:
    return {"amount": f"{amount:.2f}", "currency": currency}


def _rate_in(rng: random.Random, country: str) -> tuple[str, float]:
    zone, local, _, (low, high), _ = MARKETS[country]
    usd = rng.uniform(low, high)
    if local == "USD" or rng.random() < 0.6:  # most providers on the platform quote in USD
        return "USD", usd
    from services.matching.currency import rates
    return local, usd * float(rates()[local])


def _hours(rng: random.Random, country: str) -> dict:
    roll = rng.random()
    if country in ("PH", "IN", "PK") and roll < 0.4:  # night shift serving the Americas
        return {"days": WEEKDAYS, "start": "21:00", "end": "06:00"}
    if roll < 0.7:
        return {"days": WEEKDAYS, "start": "09:00", "end": "17:00"}
    if roll < 0.9:
        return {"days": WEEKDAYS, "start": "08:00", "end": "18:00"}
    return {"days": [*WEEKDAYS, "sat"], "start": "10:00", "end": "16:00"}


def _skills(rng: random.Random, categories: list[str]) -> list[dict]:
    names = {name for c in categories for name in SKILLS[c] if rng.random() < 0.7}
    return [{"name": name, "level": rng.choice([2, 3, 3, 4, 4, 5])} for name in sorted(names)]


def _common(rng: random.Random, country: str) -> dict:
    zone, _, local_languages, _, _ = MARKETS[country]
    created = EPOCH + timedelta(days=rng.uniform(0, 180))
    status = rng.choices(["available", "limited", "unavailable"], [80, 12, 8])[0]
    verified = rng.random() < 0.85
    return {
        "country": country,
        "time_zone": zone,
        "languages": sorted({"en", *local_languages} if rng.random() < 0.92 else set(local_languages or ["en"])),
        "availability": {"status": status, "available_from": None},
        "certifications": [],
        "nda_willing": rng.random() < 0.7,
        "verified": verified,
        "verified_at": created.isoformat().replace("+00:00", "Z") if verified else None,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "updated_at": created.isoformat().replace("+00:00", "Z"),
        "version": 1,
    }


def individual(rng: random.Random) -> dict:
    country = rng.choices(COUNTRIES, WEIGHTS)[0]
    categories = rng.sample(INDIVIDUAL_CATEGORIES, rng.choice([1, 2, 2, 3]))
    currency, hourly = _rate_in(rng, country)
    return {
        "id": _id(rng, "prv_"),
        "kind": "individual",
        "display_name": f"Provider {rng.randrange(10**6)}",
        "headline": "",
        "models": ["virtual_assistant"] if rng.random() < 0.6 else ["freelance", "virtual_assistant"],
        "categories": categories,
        "skills": _skills(rng, categories),
        "working_hours": _hours(rng, country),
        "delivery_centres": [],
        "currency": currency,
        "rates": {"hourly": _money(hourly, currency), "monthly_retainer": None, "per_unit": []},
        "capacity_hours_per_week": rng.choice([10, 20, 20, 30, 40, 40]),
        **_common(rng, country),
    }


def firm(rng: random.Random) -> dict:
    home = rng.choices(COUNTRIES, WEIGHTS)[0]
    categories = rng.sample(CATEGORY_IDS, rng.choice([2, 3, 4]))
    currency, hourly = _rate_in(rng, home)
    centres = []
    for n in range(rng.choice([1, 1, 2, 3])):
        country = home if n == 0 else rng.choices(COUNTRIES, WEIGHTS)[0]
        roll = rng.random()
        if roll < 0.25:
            shifts = [{"name": "day", "days": [*WEEKDAYS, "sat", "sun"], "start": "06:00", "end": "14:00"},
                      {"name": "swing", "days": [*WEEKDAYS, "sat", "sun"], "start": "14:00", "end": "22:00"},
                      {"name": "night", "days": [*WEEKDAYS, "sat", "sun"], "start": "22:00", "end": "06:00"}]
        elif roll < 0.6:
            shifts = [{"name": "night", "days": WEEKDAYS, "start": "20:00", "end": "05:00"}]
        else:
            shifts = [{"name": "day", "days": WEEKDAYS, "start": "08:00", "end": "17:00"}]
        centres.append({"id": f"dc_{rng.getrandbits(48):012x}", "name": f"{country} centre {n + 1}",
                        "country": country, "time_zone": MARKETS[country][0],
                        "seats": rng.choice([10, 25, 50, 120, 300]), "shifts": shifts})
    per_unit = [{"unit": "ticket", "price": _money(hourly / 8, currency)}] if rng.random() < 0.4 else []
    profile = {
        "id": _id(rng, "prv_"),
        "kind": "firm",
        "display_name": f"Firm {rng.randrange(10**6)}",
        "headline": "",
        "models": rng.sample(["bpo", "ito", "kpo"], rng.choice([1, 2])),
        "categories": categories,
        "skills": _skills(rng, categories),
        "working_hours": None,
        "delivery_centres": centres,
        "currency": currency,
        "rates": {"hourly": _money(hourly, currency),
                  "monthly_retainer": _money(hourly * 160 * 0.9, currency) if rng.random() < 0.5 else None,
                  "per_unit": per_unit},
        "capacity_hours_per_week": None,
        **_common(rng, home),
    }
    return profile


def track_record(rng: random.Random) -> dict | None:
    if rng.random() < 0.5:
        return None
    return {"active_contracts": rng.randrange(0, 3), "completed_contracts": rng.randrange(1, 20),
            "committed_hours_per_week": float(rng.choice([0, 0, 10, 20])),
            "sla_compliance": round(rng.uniform(0.7, 1.0), 3), "rating": round(rng.uniform(3.0, 5.0), 2)}


def providers(count: int, seed: int = 7) -> list[tuple[dict, dict | None]]:
    """``count`` (profile, track record) pairs; one in five is a firm."""
    rng = random.Random(seed)
    return [((firm(rng) if rng.random() < 0.2 else individual(rng)), track_record(rng)) for _ in range(count)]


CLIENTS = [("US", "America/Chicago"), ("US", "America/New_York"), ("GB", "Europe/London"),
           ("DE", "Europe/Berlin"), ("AU", "Australia/Sydney"), ("CA", "America/Toronto")]


def posting(rng: random.Random, tenant_id: str = "ten_" + "0" * 32) -> dict:
    """A published posting in the shape of ``posting.published.v1``'s ``data.posting``."""
    individual_work = rng.random() < 0.7
    if individual_work:
        model = "virtual_assistant"
        category = rng.choice(INDIVIDUAL_CATEGORIES)
    else:
        model = rng.choice(["bpo", "ito", "kpo"])
        category = rng.choice(CATEGORY_IDS)
    pool = SKILLS[category]
    required = [{"name": n, "min_level": rng.choice([2, 3, 4])} for n in rng.sample(pool, 2)]
    nice = [{"name": n, "min_level": 2} for n in rng.sample([s for s in pool if s not in
                                                               {r["name"] for r in required}], 1)]
    engagement = rng.choice(["hourly", "hourly", "fixed", "retainer"] + ([] if individual_work else ["per_unit"]))
    country, zone = rng.choice(CLIENTS)
    budget = {"hourly": "30.00", "fixed": "12000.00", "retainer": "3500.00", "per_unit": "2.50"}[engagement]
    now = EPOCH + timedelta(days=200)
    stamp = now.isoformat().replace("+00:00", "Z")
    return {
        "id": _id(rng, "pst_"), "tenant_id": tenant_id, "status": "open",
        "title": f"{category} work", "description": "", "category": category, "model": model,
        "required_skills": required, "nice_to_have_skills": nice, "languages": ["en"],
        "engagement": {"type": engagement, "unit": "ticket" if engagement == "per_unit" else None},
        "budget": {"amount": budget, "currency": "USD"},
        "hours_per_week": rng.choice([10, 20, 40]) if individual_work else rng.choice([40, 80, 160]),
        "start_date": "2027-01-04", "duration_weeks": 26,
        "shoring": {"preference": rng.choice(["any", "any", "nearshore", "offshore"]), "required": False},
        "min_overlap_hours": rng.choice([0, 2, 4]),
        "coverage": "business_hours" if individual_work or rng.random() < 0.7 else "24x7",
        "sla_requirements": [], "confidentiality": {"confidential": rng.random() < 0.3, "nda_required": False},
        "assessment": None, "client": {"country": country, "time_zone": zone},
        "created_at": stamp, "updated_at": stamp, "published_at": stamp, "cancelled_at": None,
        "cancellation_reason": None, "version": 2,
    }


def open_market(providers_count: int, provider_seed: int, postings_count: int, posting_seed: int, k: int,
                now: datetime, *, stored: bool = False):
    """A ranking index of ``providers_count`` providers and ``postings_count`` open postings, each with the
    shortlist of its top ``k``, in the service's view of the open postings: (index, view, postings by id).
    ``stored``: the view is fed the shortlists as the database keeps them (``shortlists.stored``), as the service's
    view is after a start or through the change stream."""
    from services.matching import domain, shortlists
    from services.matching.open_postings import OpenPostings
    from services.matching.ranking import MatchIndex

    index = MatchIndex()
    for profile, track in providers(providers_count, seed=provider_seed):
        index.upsert(profile["id"], domain.candidate_rows(profile, domain.TrackRecord.from_document(track)))
    view, postings = OpenPostings(), {}
    for n in range(postings_count):
        document = posting(random.Random(posting_seed + n))
        shortlist, _ = shortlists.build(index, domain.posting_needs(document), k, version=1, now=now)
        postings[document["id"]] = {**document, "shortlist": shortlist}
        fed = {**document, "shortlist": shortlists.stored(shortlist)} if stored else postings[document["id"]]
        view.apply(document["id"], fed)
    return index, view, postings
