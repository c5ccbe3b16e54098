"""Invitations from the shortlist and the turn-taking negotiation that ends in an award, free of I/O."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.postings import domain
from services.postings.domain import Party, ProposalStatus
from shared.vocabulary.errors import Conflict, ValidationFailed
from shared.vocabulary.money import Money

from .builders import LATER, make_posting

PROVIDER = "prv_" + "a" * 32
OTHER_PROVIDER = "prv_" + "b" * 32
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def terms(amount="14.00", hours=20, available=date(2027, 1, 11)):
    return {"price": usd(amount), "hours_per_week": hours, "available_from": available}


SHORTLIST = {
    "posting_id": "pst_" + "2" * 32,
    "tenant_id": "ten_" + "1" * 32,
    "version": 3,
    "candidates": [
        {"provider_id": PROVIDER, "centre_id": None, "rank": 1, "score": "0.91"},
        {"provider_id": OTHER_PROVIDER, "centre_id": "dc_1", "rank": 2, "score": "0.80"},
    ],
}


@pytest.fixture
def open_posting(tenant):
    return domain.publish(make_posting(tenant), tenant, confirm_core=False, now=LATER)


@pytest.fixture
def invitation(open_posting):
    invited = domain.invite(open_posting, SHORTLIST, PROVIDER, invitation_id="inv_1", now=T0)
    accepted, _ = domain.answer_invitation(invited, open_posting, accept=True, reason=None, now=T0)
    return accepted


@pytest.fixture
def proposal(invitation, open_posting):
    return domain.open_proposal(invitation, open_posting, terms=terms(), note="Can start early",
                                proposal_id="prp_1", now=T0)


def step(moment_minutes: int) -> datetime:
    return T0 + timedelta(minutes=moment_minutes)


# -- shortlist and invitations ----------------------------------------------------------------------------------


def test_only_a_newer_shortlist_version_replaces_the_kept_one():
    assert domain.shortlist_is_newer(None, 1)
    assert domain.shortlist_is_newer(SHORTLIST, 4)
    assert not domain.shortlist_is_newer(SHORTLIST, 3)
    assert not domain.shortlist_is_newer(SHORTLIST, 2)


def test_a_shortlisted_provider_is_invited_with_its_centre_rank_and_a_summary_of_the_posting(open_posting):
    invited = domain.invite(open_posting, SHORTLIST, OTHER_PROVIDER, invitation_id="inv_2", now=T0)
    assert (invited["status"], invited["centre_id"], invited["rank"], invited["shortlist_version"]) == (
        "pending", "dc_1", 2, 3)
    assert invited["posting"]["budget"] == usd("15.00")


def test_a_provider_not_on_the_shortlist_is_refused_naming_the_shortlist_version(open_posting):
    with pytest.raises(ValidationFailed) as refused:
        domain.invite(open_posting, SHORTLIST, "prv_" + "c" * 32, invitation_id="inv_3", now=T0)
    assert refused.value.details == {"provider_id": ["Not on the current shortlist (version 3)."]}


def test_inviting_before_matching_proposed_a_shortlist_is_a_conflict(open_posting):
    with pytest.raises(Conflict, match="no shortlist yet"):
        domain.invite(open_posting, None, PROVIDER, invitation_id="inv_4", now=T0)


@pytest.mark.parametrize("status", ["draft", "cancelled", "awarded"])
def test_only_an_open_posting_takes_invitations(open_posting, status):
    with pytest.raises(Conflict, match=f"The posting is {status}"):
        domain.invite({**open_posting, "status": status}, SHORTLIST, PROVIDER, invitation_id="inv_5", now=T0)


def test_a_provider_declines_with_a_reason_and_the_same_answer_again_changes_nothing(open_posting):
    invited = domain.invite(open_posting, SHORTLIST, PROVIDER, invitation_id="inv_1", now=T0)
    declined, changed = domain.answer_invitation(invited, open_posting, accept=False, reason="Fully booked",
                                                 now=T0)
    assert changed and declined["status"] == "declined" and declined["decline_reason"] == "Fully booked"
    again, changed_again = domain.answer_invitation(declined, open_posting, accept=False, reason=None, now=T0)
    assert again is declined and not changed_again
    with pytest.raises(Conflict, match="already declined"):
        domain.answer_invitation(declined, open_posting, accept=True, reason=None, now=T0)


# -- proposals --------------------------------------------------------------------------------------------------


def test_a_proposal_needs_an_accepted_invitation(open_posting):
    invited = domain.invite(open_posting, SHORTLIST, PROVIDER, invitation_id="inv_1", now=T0)
    with pytest.raises(Conflict, match="accept it before"):
        domain.open_proposal(invited, open_posting, terms=terms(), note=None, proposal_id="prp_1", now=T0)


def test_terms_are_quoted_in_the_postings_currency_with_hours_for_hourly_work(invitation, open_posting):
    wrong = {**terms(), "price": Money(Decimal("14.00"), "EUR"), "hours_per_week": None}
    with pytest.raises(ValidationFailed) as refused:
        domain.open_proposal(invitation, open_posting, terms=wrong, note=None, proposal_id="prp_1", now=T0)
    assert refused.value.details == {"price": ["Quote in the posting's currency, USD."],
                                     "hours_per_week": ["Required for hourly work."]}


def test_the_first_proposal_waits_for_the_client_and_starts_the_history(proposal):
    assert proposal["status"] == ProposalStatus.AWAITING_CLIENT
    assert domain.whose_turn(proposal) is Party.CLIENT
    [first] = proposal["history"]
    assert (first["step"], first["action"], first["by"], first["actor"], first["note"]) == (
        1, "proposed", "provider", f"provider:{PROVIDER}", "Can start early")
    assert not domain.terms_agreed(proposal)


def test_a_second_proposal_on_one_invitation_is_a_conflict(invitation, open_posting, proposal):
    with pytest.raises(Conflict, match="counter it instead"):
        domain.open_proposal({**invitation, "proposal_id": proposal["id"]}, open_posting, terms=terms(),
                             note=None, proposal_id="prp_2", now=T0)


def test_sides_take_turns_countering_and_every_step_is_kept(proposal, open_posting):
    countered = domain.counter(proposal, open_posting, Party.CLIENT, terms=terms("12.50"), note="Budget is tight",
                               actor="client:ten_1", now=step(1))
    assert countered["status"] == ProposalStatus.AWAITING_PROVIDER
    assert countered["terms"]["price"] == usd("12.50")
    again = domain.counter(countered, open_posting, Party.PROVIDER, terms=terms("13.25"), note=None,
                           actor=f"provider:{PROVIDER}", now=step(2))
    assert again["status"] == ProposalStatus.AWAITING_CLIENT
    assert [(s["step"], s["action"], s["by"], s["terms"]["price"].amount) for s in again["history"]] == [
        (1, "proposed", "provider", Decimal("14.00")),
        (2, "countered", "client", Decimal("12.50")),
        (3, "countered", "provider", Decimal("13.25")),
    ]
    assert proposal["history"] != again["history"]  # the input is left untouched


@pytest.mark.parametrize("move", ["counter", "accept"])
def test_moving_out_of_turn_is_a_conflict_that_names_whose_turn_it_is(proposal, open_posting, move):
    with pytest.raises(Conflict, match="It is the client's turn"):
        if move == "counter":
            domain.counter(proposal, open_posting, Party.PROVIDER, terms=terms("15.00"), note=None,
                           actor="p", now=step(1))
        else:
            domain.accept(proposal, open_posting, Party.PROVIDER, actor="p", now=step(1))


def test_a_counter_that_changes_nothing_is_refused_as_it_would_be_an_acceptance(proposal, open_posting):
    with pytest.raises(ValidationFailed, match="accept them"):
        domain.counter(proposal, open_posting, Party.CLIENT, terms=terms(), note=None, actor="c", now=step(1))


def test_accepting_the_other_sides_latest_terms_agrees_them(proposal, open_posting):
    countered = domain.counter(proposal, open_posting, Party.CLIENT, terms=terms("13.00"), note=None,
                               actor="client:ten_1", now=step(1))
    agreed, changed = domain.accept(countered, open_posting, Party.PROVIDER, actor=f"provider:{PROVIDER}",
                                    now=step(2))
    assert changed and agreed["status"] == ProposalStatus.AGREED and agreed["agreed_at"] == step(2)
    assert domain.terms_agreed(agreed)
    assert agreed["history"][-1]["terms"] == countered["terms"]
    assert domain.whose_turn(agreed) is None
    retried, changed_again = domain.accept(agreed, open_posting, Party.PROVIDER, actor="p", now=step(3))
    assert retried is agreed and not changed_again
    with pytest.raises(Conflict, match="already agreed"):
        domain.counter(agreed, open_posting, Party.CLIENT, terms=terms("12.00"), note=None, actor="c",
                       now=step(3))
    with pytest.raises(Conflict, match="already agreed"):
        domain.accept(agreed, open_posting, Party.CLIENT, actor="c", now=step(3))


def test_terms_are_not_agreed_when_the_acceptance_differs_from_the_offer(proposal, open_posting):
    agreed, _ = domain.accept(proposal, open_posting, Party.CLIENT, actor="c", now=step(1))
    tampered = {**agreed, "history": [*agreed["history"][:-1],
                                      {**agreed["history"][-1], "terms": terms("1.00")}]}
    assert domain.terms_agreed(agreed) and not domain.terms_agreed(tampered)


# -- award ------------------------------------------------------------------------------------------------------


def test_awarding_an_agreed_proposal_awards_the_posting_and_the_proposal(proposal, open_posting):
    agreed, _ = domain.accept(proposal, open_posting, Party.CLIENT, actor="c", now=step(1))
    posting, winner = domain.award(open_posting, agreed, now=step(2), max_backdate_days=31)
    assert (posting["status"], posting["awarded_at"], posting["awarded_proposal_id"]) == (
        "awarded", step(2), "prp_1")
    assert posting["version"] == open_posting["version"] + 1
    assert winner["status"] == ProposalStatus.AWARDED and domain.terms_agreed(winner)
    with pytest.raises(Conflict):
        domain.edit(posting, {"title": "Changed"}, {"core_competencies": []}, step(3))
    with pytest.raises(Conflict, match="cancelled only from draft or open"):
        domain.cancel(posting, reason="Changed our mind", now=step(3))


def test_terms_agreed_for_hourly_work_in_usd_are_not_awarded_once_the_posting_means_something_else(
        proposal, open_posting):
    agreed, _ = domain.accept(proposal, open_posting, Party.CLIENT, actor="c", now=step(1))
    fixed = {**open_posting, "engagement": {"type": "fixed", "unit": None}, "budget": Money(Decimal("9000"), "EUR")}
    assert domain.changes_what_terms_mean(open_posting, fixed) == ["engagement", "budget"]
    assert domain.changes_what_terms_mean(open_posting, {**open_posting, "title": "Other"}) == []
    with pytest.raises(Conflict, match="no longer fit") as refused:
        domain.award(fixed, agreed, now=step(2), max_backdate_days=31)
    assert set(refused.value.details) == {"engagement", "price"}


def test_an_award_whose_contract_would_start_past_contractings_backdate_window_is_refused(proposal, open_posting):
    """Contracting accepts a start at most CONTRACTING_MAX_BACKDATE_DAYS in the past: an award is refused rather than
    drafted into a contract its own API would refuse (1900-01-01 once made such a draft)."""
    agreed, _ = domain.accept(proposal, open_posting, Party.CLIENT, actor="c", now=step(1))
    agreed_start = domain.agreed_start_date(open_posting, agreed["terms"])
    within = datetime.combine(agreed_start + timedelta(days=31), T0.timetz())
    domain.award(open_posting, agreed, now=within, max_backdate_days=31)
    with pytest.raises(Conflict, match="more than 31 days in the past") as refused:
        domain.award(open_posting, agreed, now=within + timedelta(days=1), max_backdate_days=31)
    assert "start_date" in refused.value.details


def test_an_award_whose_contract_would_end_past_the_platforms_last_year_is_refused(proposal, open_posting):
    late = {**open_posting, "start_date": date(2999, 6, 1), "duration_weeks": 52}
    agreed, _ = domain.accept(proposal, late, Party.CLIENT, actor="c", now=step(1))
    with pytest.raises(Conflict, match="after 2999"):
        domain.award(late, agreed, now=step(2), max_backdate_days=31)
    domain.award({**late, "duration_weeks": 20}, agreed, now=step(2), max_backdate_days=31)


def test_a_proposal_still_under_negotiation_cannot_be_awarded(proposal, open_posting):
    with pytest.raises(Conflict, match="award it once both sides have agreed"):
        domain.award(open_posting, proposal, now=step(1), max_backdate_days=31)


def test_no_move_is_possible_on_a_closed_negotiation(proposal, open_posting):
    closed = domain.close_proposal(proposal, reason="Awarded to another provider", now=step(1))
    with pytest.raises(Conflict, match="is closed"):
        domain.accept(closed, open_posting, Party.CLIENT, actor="c", now=step(2))


def test_work_starts_on_the_postings_date_unless_the_provider_is_available_only_later(open_posting):
    assert domain.agreed_start_date(open_posting, terms(available=date(2026, 12, 1))) == date(2027, 1, 4)
    assert domain.agreed_start_date(open_posting, terms(available=date(2027, 2, 1))) == date(2027, 2, 1)


def test_terms_asking_more_hours_than_the_provider_has_free_are_refused_with_the_reason():
    domain.ensure_within_capacity({"hours_per_week": 12}, 12.0)
    domain.ensure_within_capacity({"hours_per_week": 40}, None)  # matching could not tell: unchecked
    with pytest.raises(ValidationFailed) as refused:
        domain.ensure_within_capacity({"hours_per_week": 20}, 12.5)
    assert refused.value.details == {"hours_per_week": ["The provider has 12.5 free hours a week; these terms ask "
                                                        "for 20."]}


def test_a_multi_seat_postings_terms_ask_their_hours_once_per_seat_of_the_providers_free_capacity():
    domain.ensure_within_capacity({"hours_per_week": 40}, 120.0, seats=3)
    with pytest.raises(ValidationFailed) as refused:
        domain.ensure_within_capacity({"hours_per_week": 40}, 100.0, seats=3)
    assert refused.value.details == {"hours_per_week": ["The provider has 100 free hours a week; these terms ask "
                                                        "for 40 per seat x 3 seats = 120."]}
