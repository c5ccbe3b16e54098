"""What a posting needs before it is published, what its budget means, and confirming core work."""

from decimal import Decimal

import pytest

from services.postings import domain
from shared.vocabulary.errors import Conflict, ValidationFailed
from shared.vocabulary.money import Money

from .builders import LATER, make_posting, make_tenant


def test_a_complete_posting_has_nothing_stopping_its_publication(draft):
    assert domain.publish_problems(draft) == {}


def test_a_bare_draft_lists_every_missing_field(tenant):
    bare = make_posting(tenant, engagement=..., budget=..., hours_per_week=..., start_date=...)
    with pytest.raises(ValidationFailed) as refused:
        domain.ensure_publishable(bare)
    assert set(refused.value.details) == {"engagement", "budget", "start_date"}
    assert refused.value.message == "Complete these fields before publishing: engagement, budget, start_date."


@pytest.mark.parametrize("engagement", ["hourly", "retainer"])
def test_time_based_work_needs_hours_per_week(tenant, engagement):
    posting = make_posting(tenant, engagement={"type": engagement, "unit": None}, hours_per_week=None)
    assert domain.publish_problems(posting) == {"hours_per_week": [f"Required to publish {engagement} work."]}


@pytest.mark.parametrize(("engagement", "unit"), [("fixed", None), ("per_unit", "ticket")])
def test_output_based_work_does_not_need_hours_per_week(tenant, engagement, unit):
    posting = make_posting(tenant, engagement={"type": engagement, "unit": unit}, hours_per_week=None)
    assert domain.publish_problems(posting) == {}


def test_a_zero_budget_cannot_be_published_and_the_message_says_what_the_budget_is(tenant):
    posting = make_posting(tenant, budget={"amount": "0", "currency": "USD"})
    assert domain.publish_problems(posting) == {
        "budget": ["Must be more than zero: it is the maximum hourly rate."]
    }


def test_a_missing_budget_is_explained_through_the_engagement(tenant):
    posting = make_posting(tenant, engagement={"type": "per_unit", "unit": "ticket"}, budget=None)
    assert domain.publish_problems(posting)["budget"] == ["Required to publish: the price per ticket."]


@pytest.mark.parametrize(
    ("engagement", "meaning"),
    [
        ({"type": "hourly", "unit": None}, "the maximum hourly rate"),
        ({"type": "fixed", "unit": None}, "the total price of the whole engagement"),
        ({"type": "retainer", "unit": None}, "the retainer per month"),
        ({"type": "per_unit", "unit": "invoice"}, "the price per invoice"),
        (None, "the budget, whose meaning follows the engagement type"),
    ],
)
def test_the_budget_means_what_the_engagement_says(engagement, meaning):
    assert domain.budget_meaning(engagement) == meaning


def test_publishing_an_incomplete_draft_is_refused_before_anything_changes(tenant):
    bare = make_posting(tenant, start_date=None)
    with pytest.raises(Conflict):  # the draft's state, not the request: 409
        domain.publish(bare, tenant, confirm_core=False, now=LATER)
    assert bare["status"] == "draft"


def test_non_core_work_is_published_without_confirmation(tenant, draft):
    opened = domain.publish(draft, tenant, confirm_core=False, now=LATER)
    assert opened["assessment"]["classification"] == "non_core"
    assert opened["assessment"]["confirmed_core"] is False


def test_core_work_without_confirmation_is_a_conflict_carrying_the_reason(tenant):
    core = make_posting(tenant, title="Dental care billing follow-up")
    with pytest.raises(Conflict) as refused:
        domain.publish(core, tenant, confirm_core=False, now=LATER)
    reason = "Core work: the title mentions your core competency “dental care”."
    assert refused.value.details == {"confirm_core": [reason]}
    assert "confirm_core" in refused.value.message


def test_confirmed_core_work_is_published_and_remembers_the_confirmation(tenant):
    core = make_posting(tenant, title="Dental care billing follow-up")
    opened = domain.publish(core, tenant, confirm_core=True, now=LATER)
    assert opened["status"] == "open"
    assert opened["assessment"] == {
        "classification": "core",
        "reason": "Core work: the title mentions your core competency “dental care”.",
        "confirmed_core": True,
    }


def test_confirming_non_core_work_does_not_mark_it_as_confirmed_core(tenant, draft):
    opened = domain.publish(draft, tenant, confirm_core=True, now=LATER)
    assert opened["assessment"]["confirmed_core"] is False


def test_publishing_reassesses_against_the_tenants_competencies_at_that_moment(draft):
    tenant_now_core_in_admin = make_tenant(["administrative_support"])
    with pytest.raises(Conflict):
        domain.publish(draft, tenant_now_core_in_admin, confirm_core=False, now=LATER)


def test_the_budget_stays_exact_money(draft):
    assert draft["budget"] == Money(Decimal("15.00"), "USD")
