"""The posting state machine: draft -> open -> cancelled | awarded, and draft -> cancelled; nothing else."""

import pytest

from services.postings import domain, schemas
from services.postings.domain import Status
from shared.vocabulary.errors import Conflict

from .builders import CREATED, LATER, make_posting

LEGAL = [(Status.DRAFT, Status.OPEN), (Status.DRAFT, Status.CANCELLED), (Status.OPEN, Status.CANCELLED),
         (Status.OPEN, Status.AWARDED)]
ILLEGAL = [(current, target) for current in Status for target in Status if (current, target) not in LEGAL]


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_legal_transitions_are_allowed(current, target):
    domain.ensure_transition(current, target)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_every_other_transition_is_a_conflict_naming_the_current_state(current, target):
    with pytest.raises(Conflict) as refused:
        domain.ensure_transition(current, target)
    assert (
        f"is {current.value}" in refused.value.message or f"already {current.value}" in refused.value.message
    )
    assert refused.value.details == {"status": [f"The posting is {current.value}."]}


def test_publishing_a_cancelled_posting_says_only_drafts_can_be_published():
    with pytest.raises(Conflict) as refused:
        domain.ensure_transition("cancelled", "open")
    assert refused.value.message == "The posting is cancelled; a posting can be published only from draft."


def test_cancelling_twice_says_it_is_already_cancelled():
    with pytest.raises(Conflict, match="already cancelled"):
        domain.ensure_transition("cancelled", "cancelled")


def test_no_posting_ever_returns_to_draft():
    with pytest.raises(Conflict, match="can never be returned to draft"):
        domain.ensure_transition("open", "draft")


@pytest.mark.parametrize("status", ["draft", "open"])
def test_drafts_and_open_postings_are_editable(status):
    domain.ensure_editable(status)


def test_a_cancelled_posting_cannot_be_edited():
    with pytest.raises(
        Conflict, match="The posting is cancelled; only draft and open postings can be edited"
    ):
        domain.ensure_editable("cancelled")


def test_a_new_posting_is_a_draft_at_version_one_with_the_clients_location(tenant):
    posting = make_posting(tenant)
    assert posting["status"] == "draft"
    assert posting["version"] == 1
    assert posting["client"] == {"country": "US", "time_zone": "America/Chicago",
                                 "business_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00",
                                                    "end": "17:00"}}
    assert posting["published_at"] is None and posting["cancelled_at"] is None


def test_a_tenants_own_business_hours_are_copied_into_its_postings_and_a_posting_may_override_them():
    fields = schemas.load_new_tenant({"name": "Dubai Dental", "country": "AE", "time_zone": "Asia/Dubai",
                                      "segment": "smb", "business_hours": {"days": ["sun", "mon", "tue", "wed", "thu"],
                                                                           "start": "08:00", "end": "16:00"}})
    tenant = domain.new_tenant(tenant_id="ten_" + "2" * 32, fields=fields, now=CREATED)
    posting = make_posting(tenant)
    assert posting["client"]["business_hours"] == {"days": ["mon", "tue", "wed", "thu", "sun"], "start": "08:00",
                                                   "end": "16:00"}
    assert posting["business_hours"] is None
    evenings = make_posting(tenant, business_hours={"days": ["fri"], "start": "18:00", "end": "22:00"})
    assert evenings["business_hours"] == {"days": ["fri"], "start": "18:00", "end": "22:00"}


def test_publishing_opens_the_posting_stamps_it_and_bumps_the_version(tenant, draft):
    opened = domain.publish(draft, tenant, confirm_core=False, now=LATER)
    assert (opened["status"], opened["published_at"], opened["updated_at"], opened["version"]) == (
        "open",
        LATER,
        LATER,
        2,
    )
    assert draft["status"] == "draft", "the input version is left untouched"


def test_cancelling_records_when_and_why(tenant, draft):
    opened = domain.publish(draft, tenant, confirm_core=False, now=LATER)
    cancelled = domain.cancel(opened, reason="Hired in-house", now=LATER)
    assert (
        cancelled["status"],
        cancelled["cancelled_at"],
        cancelled["cancellation_reason"],
        cancelled["version"],
    ) == ("cancelled", LATER, "Hired in-house", 3)


def test_a_cancelled_posting_cannot_be_published_again(tenant, draft):
    cancelled = domain.cancel(draft, reason="Not needed", now=LATER)
    with pytest.raises(Conflict):
        domain.publish(cancelled, tenant, confirm_core=True, now=LATER)
