"""A tenant and postings in the service's Python form, built through the real schemas and domain."""

from datetime import UTC, datetime

from services.postings import domain, schemas

CREATED = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

COMPLETE_POSTING = {
    "title": "Inbox and calendar management",
    "category": "administrative_support",
    "model": "virtual_assistant",
    "required_skills": [{"name": "calendar management", "min_level": 3}],
    "engagement": {"type": "hourly", "unit": None},
    "budget": {"amount": "15.00", "currency": "USD"},
    "hours_per_week": 20,
    "start_date": "2027-01-04",
}


def make_tenant(core_competencies=(), segment="smb"):
    fields = schemas.load_new_tenant(
        {
            "name": "Acme Dental Group",
            "country": "US",
            "time_zone": "America/Chicago",
            "segment": segment,
            "core_competencies": list(core_competencies),
        }
    )
    return domain.new_tenant(tenant_id="ten_" + "1" * 32, fields=fields, now=CREATED)


def make_posting(tenant, **overrides):
    """A draft built from a complete posting; an override of ``...`` leaves that field out."""
    payload = {**COMPLETE_POSTING, **overrides}
    payload = {key: value for key, value in payload.items() if value is not ...}
    fields = schemas.load_new_posting(payload)
    return domain.new_posting(posting_id="pst_" + "2" * 32, tenant=tenant, fields=fields, now=CREATED)
