"""Contracting's rules without I/O: state machine, signatures, amendments, SLA windows, credits, governance."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.contracting import domain
from services.contracting.domain import Party
from shared.vocabulary.errors import Conflict, ValidationFailed

from .builders import GRACE, NOW, active, draft, sla_id


def edit(contract, changes):
    return domain.edit(contract, changes, new_sla_id=sla_id, now=NOW, max_backdate_days=31)


# -- drafting and signing ----------------------------------------------------------------------------------------


def test_a_draft_carries_the_awarded_terms_and_its_hash_is_of_the_signable_terms_only():
    contract = draft()
    assert contract["terms"]["price"] == {"amount": "13.25", "currency": "USD"}
    assert (contract["start_date"], contract["end_date"]) == ("2027-01-04", "2027-07-04")  # 26 weeks, last day
    assert contract["terms_hash"] == domain.terms_hash({**contract, "status": "active", "updated_at": None})


def test_a_multi_seat_award_carries_its_seats_into_the_contract_terms():
    desk = draft(hours_per_week=168, seats=3)  # a 24/7 desk of three seats: 504 seat-hours a week
    assert (desk["terms"]["hours_per_week"], desk["terms"]["seats"]) == (168, 3)
    assert draft()["terms"]["seats"] is None  # an award made before seats existed
    assert draft(engagement_type="fixed", hours_per_week=None, seats=1,
                 price={"amount": "4000", "currency": "USD"})["terms"]["seats"] is None  # no seat dedicated


def test_a_fixed_price_award_gets_a_completion_milestone_for_the_whole_price():
    contract = draft(engagement_type="fixed", hours_per_week=None, price={"amount": "4000", "currency": "USD"})
    assert contract["milestones"] == [{"title": "Completion of the scope", "due_date": "2027-07-04",
                                       "amount": {"amount": "4000", "currency": "USD"}}]


def test_an_edit_after_one_signature_voids_it_and_returns_the_contract_to_draft():
    contract = draft()
    signed, _ = domain.sign(contract, Party.CLIENT, contract["terms_hash"], now=NOW, grace=GRACE)
    assert signed["status"] == "pending_signatures"
    edited, changed = edit(signed, {"terms": {"payment_due_days": 14}})
    assert changed and edited["status"] == "draft" and edited["signatures"] == []
    assert edited["terms_hash"] != contract["terms_hash"]


def test_an_edit_that_changes_nothing_keeps_the_signature():
    contract = draft()
    signed, _ = domain.sign(contract, Party.CLIENT, contract["terms_hash"], now=NOW, grace=GRACE)
    same, changed = edit(signed, {"title": contract["title"]})
    assert not changed and same is signed


def test_signing_other_terms_than_the_current_ones_is_a_conflict():
    contract = draft()
    with pytest.raises(Conflict):
        domain.sign(contract, Party.PROVIDER, "0" * 64, now=NOW, grace=GRACE)


def test_signing_twice_is_one_signature_and_the_second_party_activates():
    contract = draft()
    once, _ = domain.sign(contract, Party.CLIENT, contract["terms_hash"], now=NOW, grace=GRACE)
    twice, changed = domain.sign(once, Party.CLIENT, contract["terms_hash"], now=NOW, grace=GRACE)
    assert not changed and twice is once
    activated, _ = domain.sign(once, Party.PROVIDER, contract["terms_hash"], now=NOW, grace=GRACE)
    assert (activated["status"], activated["activated_at"], len(activated["history"])) == ("active", NOW, 1)


@pytest.mark.parametrize("action", [
    lambda c: domain.complete(c, {"score": 5, "comment": None}, now=NOW),
    lambda c: domain.terminate(c, Party.CLIENT, "why", None, now=NOW),
    lambda c: domain.rate_client(c, {"score": 5, "comment": None}, now=NOW),
    lambda c: domain.propose_amendment(c, Party.CLIENT, {"hours_per_week": 30}, reason="more", amendment_id="amd_1",
                                       new_sla_id=sla_id, now=NOW),
])
def test_illegal_transitions_of_a_draft_are_conflicts(action):
    with pytest.raises(Conflict):
        action(draft())


def test_an_active_contract_cannot_be_edited_or_signed_again():
    contract = active()
    with pytest.raises(Conflict):
        edit(contract, {"title": "New"})
    with pytest.raises(Conflict):
        domain.sign(contract, Party.CLIENT, contract["terms_hash"], now=NOW, grace=GRACE)


def test_a_start_date_too_far_back_or_an_end_before_the_start_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        edit(draft(), {"start_date": (NOW.date() - timedelta(days=32)).isoformat()})
    assert "start_date" in refused.value.details
    with pytest.raises(ValidationFailed) as refused:
        edit(draft(), {"end_date": "2026-12-31"})
    assert "end_date" in refused.value.details


# -- amendments --------------------------------------------------------------------------------------------------


def test_an_amendment_applies_only_when_both_parties_signed_it():
    contract = active()
    proposed = domain.propose_amendment(contract, Party.CLIENT, {"hours_per_week": 30}, reason="More work",
                                        amendment_id="amd_1", new_sla_id=sla_id, now=NOW)
    pending = proposed["pending_amendment"]
    half, applied = domain.sign_amendment(proposed, Party.CLIENT, "amd_1", pending["terms_hash"], now=NOW,
                                          grace=GRACE)
    assert applied is None and half["terms"]["hours_per_week"] == 20
    done, applied = domain.sign_amendment(half, Party.PROVIDER, "amd_1", pending["terms_hash"], now=NOW,
                                          grace=GRACE)
    assert (done["version"], done["terms"]["hours_per_week"], done["terms_hash"]) == (2, 30, pending["terms_hash"])
    assert applied["previous"] == {"hours_per_week": 20} and len(applied["signatures"]) == 2
    assert done["terms_hash"] == domain.terms_hash(done)


def test_an_amendment_that_changes_nothing_is_refused():
    with pytest.raises(ValidationFailed):
        domain.propose_amendment(active(), Party.PROVIDER, {"hours_per_week": 20}, reason="Same", amendment_id="a",
                                 new_sla_id=sla_id, now=NOW)


def test_termination_needs_at_least_the_agreed_notice():
    with pytest.raises(ValidationFailed):
        domain.terminate(active(), Party.PROVIDER, "Overbooked", 3, now=NOW)
    ended = domain.terminate(active(), Party.PROVIDER, "Overbooked", None, now=NOW)
    assert ended["termination"] == {"reason": "Overbooked", "terminated_by": "provider", "notice_days": 14,
                                    "effective_date": "2027-01-24"}


# -- SLA windows -------------------------------------------------------------------------------------------------


def _sla(window):
    return {"id": "sla_x", "window": window}


def test_windows_are_anchored_at_the_start_date_and_the_last_one_ends_with_the_contract():
    contract = {"start_date": "2027-01-31", "end_date": "2027-04-15"}
    starts = [domain.window_bounds(contract, _sla("monthly"), i) for i in range(3)]
    assert [(s.date().isoformat(), e.date().isoformat()) for s, e in starts] == [
        ("2027-01-31", "2027-02-28"), ("2027-02-28", "2027-03-31"), ("2027-03-31", "2027-04-16")]
    weekly = domain.window_containing(contract, _sla("weekly"), datetime(2027, 2, 8, 5, tzinfo=UTC))
    assert [w.date().isoformat() for w in weekly] == ["2027-02-07", "2027-02-14"]


def test_a_window_is_due_a_grace_period_after_its_end_or_after_activation_if_later():
    contract = active(start_date="2027-01-08")  # backdated two days before activation (NOW = Jan 10 12:00)
    contract["slas"][0]["window"] = "daily"
    assert domain.due_windows(contract, NOW + GRACE - timedelta(seconds=1), GRACE) == []
    due = domain.due_windows(contract, NOW + GRACE, GRACE)
    assert [(start.day, end.day) for _, start, end in due] == [(8, 9), (9, 10)]
    later = domain.advance_cursor(contract, contract["slas"][0]["id"], due[-1][2], GRACE)
    assert later["next_evaluation_at"] == datetime(2027, 1, 11, 1, tzinfo=UTC)


# -- evaluation and credits --------------------------------------------------------------------------------------


def _window(days=1):
    start = datetime(2027, 1, 4, tzinfo=UTC)
    return start, start + timedelta(days=days)


def _measure(*values):
    return [{"value": v, "units": 0} for v in values]


def test_a_breach_credits_its_percentage_of_the_window_fees_rounded_once_to_the_cent():
    contract = active()
    sla = {**contract["slas"][0], "credit": {"percent": "10", "cap": None}}  # at most 60 minutes, average
    outcome = domain.evaluate(contract, sla, *_window(7), _measure("75", "62"), NOW)
    # 13.25 x 20 h x 7/7 = 265.00; 10 % = 26.50
    assert (outcome["met"], outcome["result"]["value"], outcome["credit"]["amount"]) == (False, "68.5", "26.50")
    daily = domain.evaluate(contract, sla, *_window(1), _measure("75"), NOW)
    assert daily["credit"]["amount"] == "3.79"  # 265 / 7 = 37.857142...; 10 % = 3.7857... -> 3.79


def test_a_credit_is_capped_and_a_met_window_owes_nothing():
    contract = active()
    sla = {**contract["slas"][0], "credit": {"percent": "50", "cap": {"amount": "20.00", "currency": "USD"}}}
    assert domain.evaluate(contract, sla, *_window(7), _measure("90"), NOW)["credit"]["amount"] == "20.00"
    met = domain.evaluate(contract, sla, *_window(7), _measure("30", "60"), NOW)
    assert (met["met"], met["credit"]) == (True, None)


def test_a_window_without_measurements_is_a_breach():
    contract = active()
    outcome = domain.evaluate(contract, contract["slas"][0], *_window(1), [], NOW)
    assert (outcome["met"], outcome["result"]) == (False, {"value": "0", "measurements": 0})


@pytest.mark.parametrize(("engagement", "price", "days", "units", "fees"), [
    ("retainer", "3100", 7, 0, Decimal("700")),  # 3100 x 7 / 31 days of January
    ("fixed", "18200", 7, 0, Decimal("18200") * 7 / 182),
    ("per_unit", "0.75", 7, 40, Decimal("30.00")),
])
def test_window_fees_per_engagement_type(engagement, price, days, units, fees):
    contract = active(engagement_type=engagement, unit="ticket" if engagement == "per_unit" else None,
                      price={"amount": price, "currency": "USD"})
    assert domain.window_fees(contract, contract["slas"][0], *_window(days), units) == fees


def test_a_whole_monthly_window_of_a_retainer_is_exactly_the_price_even_from_the_31st():
    contract = active(engagement_type="retainer", price={"amount": "3000.00", "currency": "EUR"},
                      start_date="2027-01-31")
    monthly = {**contract["slas"][0], "window": "monthly"}
    fees = [domain.window_fees(contract, monthly, *domain.window_bounds(contract, monthly, i), 0) for i in range(4)]
    assert fees == [Decimal("3000.00")] * 4
    half = domain.window_bounds(contract, monthly, 1)  # Feb 28 - Mar 31: 31 days; the first 15 of them
    assert domain.window_fees(contract, monthly, half[0], half[0] + timedelta(days=15), 0) == \
        Decimal("3000.00") * 15 / 31


def test_a_credit_never_exceeds_its_cap_even_a_cap_finer_than_the_currency():
    assert domain.credit_owed(Decimal("100"), {"percent": "10", "cap": {"amount": "3.005"}}, "USD") == Decimal("3.00")
    assert domain.credit_owed(Decimal("100"), {"percent": "10", "cap": {"amount": "2.5"}}, "JPY") == Decimal("2")
    assert domain.credit_owed(Decimal("100"), {"percent": "1", "cap": {"amount": "5"}}, "USD") == Decimal("1.00")


def test_an_sla_added_before_the_contract_starts_is_measured_from_the_start():
    contract = draft(start_date="2027-02-01")
    signed_at = datetime(2027, 1, 10, 9, tzinfo=UTC)
    contract, _ = domain.sign(contract, Party.CLIENT, contract["terms_hash"], now=signed_at, grace=GRACE)
    contract, _ = domain.sign(contract, Party.PROVIDER, contract["terms_hash"], now=signed_at, grace=GRACE)
    daily = {key: value for key, value in contract["slas"][0].items() if key != "id"}
    amended = _amend(contract, {"slas": [*contract["slas"], {**daily, "window": "daily"}]},
                     datetime(2027, 1, 12, tzinfo=UTC))
    added = amended["slas"][1]
    assert amended["sla_cursor"][added["id"]] == datetime(2027, 2, 1, tzinfo=UTC)
    due = domain.due_windows(amended, datetime(2027, 2, 2, 2, tzinfo=UTC), GRACE)
    assert [(s["id"], start.date().isoformat()) for s, start, _ in due if s["id"] == added["id"]] == \
        [(added["id"], "2027-02-01")]


def test_two_slas_with_one_id_are_refused():
    contract = draft()
    twice = [contract["slas"][0], {**contract["slas"][0], "window": "daily"}]
    with pytest.raises(ValidationFailed) as refused:
        edit(contract, {"slas": twice})
    assert "slas" in refused.value.details


def test_credits_round_half_up_to_the_currencys_minor_unit():
    assert domain.credit_owed(Decimal("1000"), {"percent": "0.05", "cap": None}, "JPY") == Decimal("1")
    assert domain.credit_owed(Decimal("10.0005"), {"percent": "100", "cap": None}, "KWD") == Decimal("10.001")
    assert domain.credit_owed(Decimal("0.125"), {"percent": "100", "cap": None}, "EUR") == Decimal("0.13")


def test_aggregations():
    values = [Decimal("2"), Decimal("4"), Decimal("9")]
    assert [domain.aggregate(a, values) for a in ("average", "sum", "min", "max")] == [5, 15, 2, 9]


# -- governance --------------------------------------------------------------------------------------------------


def test_the_review_schedule_follows_the_plan_within_the_contract():
    contract = active()
    assert domain.review_schedule(contract, date(2027, 4, 10)) == [date(2027, 2, 4), date(2027, 3, 4),
                                                                   date(2027, 4, 4)]
    assert domain.next_review_due(contract, 0) == date(2027, 2, 4)
    assert domain.next_review_due(contract, 6) is None  # the contract ends on July 4th


def test_an_issue_climbs_one_level_per_missed_deadline_and_stays_at_the_top():
    contract = active()
    issue = domain.new_issue(contract, Party.PROVIDER, {"title": "Access", "severity": "high", "owner": "client",
                                                        "due_at": NOW + timedelta(hours=1)}, issue_id="iss_1", now=NOW)
    later = NOW + timedelta(hours=2)
    second = domain.escalate(issue, contract, now=later)
    assert (second["level"], second["escalation_due_at"]) == (2, later + timedelta(hours=72))
    top = domain.escalate(second, contract, now=later)
    assert (top["level"], top["escalation_due_at"]) == (2, None)
    resolved, changed = domain.resolve_issue(top, Party.CLIENT, "Fixed", now=later)
    assert changed and resolved["status"] == "resolved"


def test_windows_that_ended_before_completion_are_still_evaluated_and_the_open_one_is_not():
    contract = active(start_date="2027-01-08")
    contract["slas"][0]["window"] = "daily"
    completed = domain.complete(contract, {"score": 4, "comment": None}, now=NOW)  # Jan 10, 12:00
    due = domain.due_windows(completed, NOW + timedelta(days=3), GRACE)
    assert [(start.day, end.day) for _, start, end in due] == [(8, 9), (9, 10)]
    last = domain.advance_cursor(completed, contract["slas"][0]["id"], due[-1][2], GRACE)
    assert last["next_evaluation_at"] is None


def _amend(contract, changes, now):
    proposed = domain.propose_amendment(contract, Party.CLIENT, changes, reason="Adjust", amendment_id="amd_w",
                                        new_sla_id=sla_id, now=now)
    pending = proposed["pending_amendment"]
    half, _ = domain.sign_amendment(proposed, Party.CLIENT, "amd_w", pending["terms_hash"], now=now, grace=GRACE)
    done, applied = domain.sign_amendment(half, Party.PROVIDER, "amd_w", pending["terms_hash"], now=now,
                                          grace=GRACE)
    assert applied is not None
    return done


def _evaluate_all(contract, now):
    """Every window due by ``now`` evaluated, in order: the windows, and the contract after them."""
    windows = []
    for sla, start, end in domain.due_windows(contract, now, GRACE):
        windows.append((start, end))
        contract = domain.advance_cursor(contract, sla["id"], end, GRACE)
    return windows, contract


def _days(windows):
    return [(start.date().isoformat(), end.date().isoformat()) for start, end in windows]


def test_after_an_amendment_to_a_longer_window_the_next_window_starts_where_the_last_evaluated_one_ended():
    contract = active(start_date="2027-01-04")  # a Monday; activated Jan 10 12:00
    contract["slas"][0]["window"] = "daily"
    daily, contract = _evaluate_all(contract, NOW + GRACE)
    assert _days(daily)[-1] == ("2027-01-09", "2027-01-10")

    weekly = _amend(contract, {"slas": [{**contract["slas"][0], "window": "weekly"}]}, NOW + GRACE)
    assert weekly["slas"][0]["id"] == contract["slas"][0]["id"]
    after, _ = _evaluate_all(weekly, datetime(2027, 1, 25, 2, tzinfo=UTC))
    # Jan 4-10 was evaluated day by day; the week it falls in is not evaluated (or credited) again.
    assert _days(after) == [("2027-01-10", "2027-01-11"), ("2027-01-11", "2027-01-18"), ("2027-01-18", "2027-01-25")]


def test_after_an_extension_the_clipped_last_window_is_not_evaluated_again():
    contract = active(start_date="2027-01-04")
    contract["end_date"] = "2027-01-13"  # weekly windows: Jan 4-11, then Jan 11-14 (the contract's end)
    before, contract = _evaluate_all(contract, datetime(2027, 1, 14, 2, tzinfo=UTC))
    assert _days(before) == [("2027-01-04", "2027-01-11"), ("2027-01-11", "2027-01-14")]

    extended = _amend(contract, {"end_date": "2027-01-31"}, datetime(2027, 1, 14, 3, tzinfo=UTC))
    after, _ = _evaluate_all(extended, datetime(2027, 1, 26, tzinfo=UTC))
    assert _days(after) == [("2027-01-14", "2027-01-18"), ("2027-01-18", "2027-01-25")]


def test_a_measurement_counts_in_the_window_its_time_falls_in_after_the_boundaries_moved():
    contract = active(start_date="2027-01-04")
    contract["slas"][0]["window"] = "daily"
    _, contract = _evaluate_all(contract, NOW + GRACE)
    weekly = _amend(contract, {"slas": [{**contract["slas"][0], "window": "weekly"}]}, NOW + GRACE)
    sla = weekly["slas"][0]
    at = datetime(2027, 1, 10, 15, tzinfo=UTC)
    assert domain.evaluation_window(weekly, sla, at) == (datetime(2027, 1, 10, tzinfo=UTC),
                                                         datetime(2027, 1, 11, tzinfo=UTC))
    assert domain.evaluation_window(weekly, sla, at + timedelta(days=2)) == (datetime(2027, 1, 11, tzinfo=UTC),
                                                                             datetime(2027, 1, 18, tzinfo=UTC))


# -- contract to cash: terms in force on the day, declined amendments, notice periods ---------------------------


def test_an_sla_credit_uses_the_terms_in_force_on_each_day_of_its_window_not_at_evaluation():
    contract = active()  # 13.25 USD/h, 20 h/week, weekly windows from Monday 2027-01-04
    sla = {**contract["slas"][0], "credit": {"percent": "10", "cap": None}}
    week = (datetime(2027, 1, 11, tzinfo=UTC), datetime(2027, 1, 18, tzinfo=UTC))
    wednesday = datetime(2027, 1, 13, 9, tzinfo=UTC)
    amended = _amend(contract, {"price": {"amount": "20.00", "currency": "USD"}}, wednesday)
    assert amended["amendments"][-1]["effective_date"] == "2027-01-13"
    # Monday and Tuesday at 13.25, Wednesday to Sunday at 20.00; evaluated after the amendment all the same.
    fees = Decimal("13.25") * 20 * 2 / 7 + Decimal("20.00") * 20 * 5 / 7
    assert domain.window_fees(amended, sla, *week, []) == fees
    outcome = domain.evaluate(amended, sla, *week, [], NOW + timedelta(days=8))
    assert outcome["credit"]["amount"] == format((fees / 10).quantize(Decimal("0.01")), "f") == "36.14"
    # The week before the amendment is all at the old rate.
    assert domain.window_fees(amended, sla, week[0] - timedelta(days=7), week[0], []) == Decimal("265.00")


def test_an_amendment_takes_effect_on_its_agreed_day_and_never_reaches_back():
    contract = active()
    with pytest.raises(ValidationFailed, match="never reaches back"):
        domain.propose_amendment(contract, Party.CLIENT, {"hours_per_week": 30}, reason="Back", amendment_id="a",
                                 new_sla_id=sla_id, now=NOW, effective_date="2027-01-09")
    later = domain.propose_amendment(contract, Party.CLIENT, {"hours_per_week": 30}, reason="From February",
                                     amendment_id="amd_f", new_sla_id=sla_id, now=NOW, effective_date="2027-02-01")
    pending = later["pending_amendment"]
    half, _ = domain.sign_amendment(later, Party.CLIENT, "amd_f", pending["terms_hash"], now=NOW, grace=GRACE)
    done, applied = domain.sign_amendment(half, Party.PROVIDER, "amd_f", pending["terms_hash"], now=NOW, grace=GRACE)
    assert applied["effective_date"] == "2027-02-01"
    assert domain.terms_on(done, date(2027, 1, 31))["hours_per_week"] == 20
    assert domain.terms_on(done, date(2027, 2, 1))["hours_per_week"] == 30


def test_a_declined_amendment_stays_in_the_contracts_history():
    contract = active()
    proposed = domain.propose_amendment(contract, Party.CLIENT, {"hours_per_week": 30}, reason="More work",
                                        amendment_id="amd_d", new_sla_id=sla_id, now=NOW)
    declined = domain.withdraw_amendment(proposed, "amd_d", now=NOW + timedelta(hours=1), party=Party.PROVIDER)
    assert declined["pending_amendment"] is None and declined["terms"]["hours_per_week"] == 20
    row = declined["history"][-1]
    assert (row["amendment_id"], row["outcome"], row["ended_by"], row["proposed_by"], row["changes"]) == (
        "amd_d", "declined", "provider", "client", {"hours_per_week": 30})
    assert len(declined["history"]) == len(contract["history"]) + 1
    again = domain.propose_amendment(declined, Party.CLIENT, {"seats": 2}, reason="Other", amendment_id="amd_w2",
                                     new_sla_id=sla_id, now=NOW)
    withdrawn = domain.withdraw_amendment(again, "amd_w2", now=NOW, party=Party.CLIENT)
    assert withdrawn["history"][-1]["outcome"] == "withdrawn"


def test_during_the_notice_period_the_contract_is_in_force_and_the_window_open_at_termination_is_evaluated():
    contract = active()  # weekly windows from Monday 2027-01-04; 14 days' notice
    contract["slas"][0]["window"] = "weekly"
    ended = domain.terminate(contract, Party.CLIENT, "Moving in-house", None, now=NOW, grace=GRACE)
    assert ended["termination"]["effective_date"] == "2027-01-24"
    during = NOW + timedelta(days=5)
    for action in ("measure", "review", "raise_issue"):
        domain.require(ended, action, during.date())  # still in force for both sides
    review = domain.new_review(ended, {"scores": {"quality": 4}}, review_id="rev_1", reviews_recorded=0, now=during)
    assert review["contract_id"] == ended["id"]
    issue = domain.new_issue(ended, Party.PROVIDER, {"title": "Access", "severity": "high", "owner": "client",
                                                     "due_at": during + timedelta(days=1)}, issue_id="iss_1",
                             now=during)
    assert issue["status"] == "open"
    measurement = {"sla_id": ended["slas"][0]["id"], "measured_at": datetime(2027, 1, 24, 20, tzinfo=UTC)}
    assert domain.check_measurement(ended, {ended["slas"][0]["id"]}, measurement, measurement["measured_at"]) is None
    after_notice = {**measurement, "measured_at": datetime(2027, 1, 25, 1, tzinfo=UTC)}
    assert domain.check_measurement(ended, {ended["slas"][0]["id"]}, after_notice, after_notice["measured_at"]) == \
        "Measured after the contract ended."
    with pytest.raises(Conflict):
        domain.require(ended, "measure", date(2027, 1, 25))
    # The window open at termination (Jan 4-11) and those of the notice period are evaluated, the last one cut
    # at the effective date; nothing after it.
    windows, last = _evaluate_all(ended, datetime(2027, 2, 15, tzinfo=UTC))
    assert _days(windows) == [("2027-01-04", "2027-01-11"), ("2027-01-11", "2027-01-18"),
                              ("2027-01-18", "2027-01-25")]
    assert last["next_evaluation_at"] is None


def test_a_fixed_price_contract_past_its_end_date_moves_on_to_completion_pending_and_only_completes():
    contract = active(engagement_type="fixed", duration_weeks=1)  # 2027-01-04 to 2027-01-10
    assert domain.await_completion(contract, now=NOW) is contract  # its last day: still active
    moved = domain.await_completion(contract, now=NOW + timedelta(days=1))
    assert moved["status"] == "completion_pending"
    with pytest.raises(Conflict):
        domain.propose_amendment(moved, Party.CLIENT, {"seats": 2}, reason="More", amendment_id="a",
                                 new_sla_id=sla_id, now=NOW)
    assert domain.complete(moved, {"score": 5, "comment": None}, now=NOW)["status"] == "completed"
    hourly = active(duration_weeks=1)
    assert domain.await_completion(hourly, now=NOW + timedelta(days=1)) is hourly  # hourly work ends by its dates


# -- closing a window early by agreement ---------------------------------------------------------------------------


def _backdated_daily():
    contract = active(start_date="2027-01-08")  # activated Jan 10 12:00: the windows of Jan 8 and 9 are past
    contract["slas"][0]["window"] = "daily"
    return contract, contract["slas"][0]["id"], datetime(2027, 1, 8, tzinfo=UTC)


def test_a_window_closed_by_both_parties_is_due_at_once_and_by_one_only_it_waits_for_the_grace():
    contract, sla, jan8 = _backdated_daily()
    later = NOW + timedelta(minutes=5)
    one = domain.confirm_window_closed(contract, Party.PROVIDER, sla, jan8, now=NOW, grace=GRACE)
    assert domain.window_closed_at(one, sla, jan8) is None
    assert domain.due_windows(one, later, GRACE) == []
    assert one["next_evaluation_at"] == NOW + GRACE
    both = domain.confirm_window_closed(one, Party.CLIENT, sla, jan8, now=later, grace=GRACE)
    assert domain.window_closed_at(both, sla, jan8) == later
    assert both["next_evaluation_at"] == later
    assert [(start.day, end.day) for _, start, end in domain.due_windows(both, later, GRACE)] == [(8, 9)]


def test_confirming_twice_or_an_evaluated_window_changes_nothing():
    contract, sla, jan8 = _backdated_daily()
    once = domain.confirm_window_closed(contract, Party.CLIENT, sla, jan8, now=NOW, grace=GRACE)
    assert domain.confirm_window_closed(once, Party.CLIENT, sla, jan8, now=NOW, grace=GRACE) is once
    evaluated = domain.advance_cursor(contract, sla, datetime(2027, 1, 9, tzinfo=UTC), GRACE)
    assert domain.confirm_window_closed(evaluated, Party.CLIENT, sla, jan8, now=NOW, grace=GRACE) is evaluated


def test_closing_waits_for_the_earlier_windows_of_the_sla():
    contract, sla, jan8 = _backdated_daily()
    jan9 = jan8 + timedelta(days=1)
    closed = domain.confirm_window_closed(contract, Party.CLIENT, sla, jan9, now=NOW, grace=GRACE)
    closed = domain.confirm_window_closed(closed, Party.PROVIDER, sla, jan9, now=NOW, grace=GRACE)
    assert domain.due_windows(closed, NOW, GRACE) == []  # Jan 8 is still in its grace, and goes first
    both = domain.confirm_window_closed(closed, Party.CLIENT, sla, jan8, now=NOW, grace=GRACE)
    both = domain.confirm_window_closed(both, Party.PROVIDER, sla, jan8, now=NOW, grace=GRACE)
    assert [start.day for _, start, _ in domain.due_windows(both, NOW, GRACE)] == [8, 9]


def test_a_window_still_open_cannot_be_closed_and_a_start_must_be_a_window_start():
    contract, sla, jan8 = _backdated_daily()
    with pytest.raises(Conflict):
        domain.confirm_window_closed(contract, Party.CLIENT, sla, datetime(2027, 1, 10, tzinfo=UTC), now=NOW,
                                     grace=GRACE)
    for start in (jan8 + timedelta(hours=3), jan8 - timedelta(days=1)):
        with pytest.raises(ValidationFailed):
            domain.confirm_window_closed(contract, Party.CLIENT, sla, start, now=NOW, grace=GRACE)
    with pytest.raises(ValidationFailed):
        domain.confirm_window_closed(contract, Party.CLIENT, "sla_unknown", jan8, now=NOW, grace=GRACE)
    with pytest.raises(Conflict):
        domain.confirm_window_closed(draft(), Party.CLIENT, sla, jan8, now=NOW, grace=GRACE)
