"""Edits: what changed between two versions, and what an edit of a draft or an open posting may do."""

from decimal import Decimal

import pytest

from services.postings import domain
from shared.vocabulary.errors import Conflict, ValidationFailed
from shared.vocabulary.money import Money

from .builders import LATER


def test_nothing_changed_between_equal_versions(draft):
    assert domain.changed_fields(draft, dict(draft)) == []


def test_changed_fields_are_named_in_a_stable_order(draft):
    after = {**draft, "start_date": None, "title": "New title", "budget": Money(Decimal("15.0"), "USD")}
    assert domain.changed_fields(draft, after) == ["title", "start_date"], "15.0 USD equals 15.00 USD"


def test_a_nested_change_counts_as_a_change_of_its_field(draft):
    after = {**draft, "required_skills": [{"name": "calendar management", "min_level": 4}]}
    assert domain.changed_fields(draft, after) == ["required_skills"]


def test_lifecycle_fields_are_not_reported_as_edits(draft):
    after = {**draft, "version": 9, "updated_at": LATER, "status": "open"}
    assert domain.changed_fields(draft, after) == []


def test_editing_a_draft_bumps_the_version_and_reports_the_change(tenant, draft):
    edited, changed = domain.edit(draft, {"hours_per_week": 30}, tenant, LATER)
    assert changed == ["hours_per_week"]
    assert (edited["hours_per_week"], edited["version"], edited["updated_at"]) == (30, 2, LATER)


def test_an_edit_that_changes_nothing_returns_the_same_version(tenant, draft):
    edited, changed = domain.edit(draft, {"hours_per_week": 20}, tenant, LATER)
    assert changed == []
    assert edited is draft


def test_an_edit_that_touches_a_competency_reassesses_and_reports_the_assessment(tenant, draft):
    edited, changed = domain.edit(draft, {"title": "Dental care inbox"}, tenant, LATER)
    assert changed == ["title", "assessment"]
    assert edited["assessment"]["classification"] == "core"


def test_a_draft_may_be_left_incomplete(tenant, draft):
    edited, _ = domain.edit(draft, {"budget": None}, tenant, LATER)
    assert edited["budget"] is None


def test_an_open_posting_must_stay_publishable(tenant, draft):
    opened = domain.publish(draft, tenant, confirm_core=False, now=LATER)
    with pytest.raises(ValidationFailed) as refused:
        domain.edit(opened, {"budget": None}, tenant, LATER)
    assert set(refused.value.details) == {"budget"}


def test_an_open_posting_cannot_be_edited_into_unconfirmed_core_work(tenant, draft):
    opened = domain.publish(draft, tenant, confirm_core=False, now=LATER)
    with pytest.raises(Conflict) as refused:
        domain.edit(opened, {"category": "digital_marketing"}, tenant, LATER)
    assert list(refused.value.details) == ["confirm_core"]


def test_confirmed_core_work_stays_confirmed_through_an_edit(tenant, draft):
    core = domain.edit(draft, {"title": "Dental care inbox"}, tenant, LATER)[0]
    opened = domain.publish(core, tenant, confirm_core=True, now=LATER)
    edited, changed = domain.edit(opened, {"hours_per_week": 10}, tenant, LATER)
    assert changed == ["hours_per_week"]
    assert edited["assessment"]["confirmed_core"] is True


def test_a_cancelled_posting_cannot_be_edited(tenant, draft):
    cancelled = domain.cancel(draft, reason="Not needed", now=LATER)
    with pytest.raises(Conflict):
        domain.edit(cancelled, {"title": "Again"}, tenant, LATER)
