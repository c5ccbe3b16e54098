"""The contracting service over real RPC, a real broker and a real database: drafts from awards, signatures,
SLA windows evaluated by the timer, amendments, governance and completion.

Awards arrive as postings publishes them; every event contracting emits is read from its outbox (written in the
same transaction as the change) and checked against its contract.
"""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.contracting import domain
from services.contracting.service import ContractingService
from shared.runtime.outbox import outbox_events
from shared.vocabulary.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.support.emitted import outbox
from tests.support.waiting import wait_for

from . import awards

pytestmark = pytest.mark.integration

STRANGER = {"kind": "provider", "provider_id": "prv_" + "9" * 32}
OTHER_CLIENT = {"kind": "client", "tenant_id": "ten_" + "9" * 32}


@pytest.fixture
def contracting(container_factory, service_config, amqp_uri):
    config = {**service_config, "CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS": 0.2,
              "CONTRACTING_SLA_GRACE_SECONDS": 2.5, "CONTRACTING_ESCALATION_INTERVAL_SECONDS": 0.2}
    container_factory(ContractingService, config).start()
    with ServiceRpcProxy("contracting", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as proxy:
        yield proxy


@pytest.fixture
def evaluation_held(monkeypatch):
    """``with evaluation_held():`` the SLA timer finds no window due, so what a test sends goes in before the windows
    it belongs to are evaluated however slow the machine (they fall due 2.5 s after activation); after the block
    the timer evaluates them as usual. Only the timer's view of "due" is held: nothing is written differently."""
    real = domain.due_windows
    held = {"on": False}
    monkeypatch.setattr(domain, "due_windows",
                        lambda contract, now, grace: [] if held["on"] else real(contract, now, grace))

    @contextmanager
    def hold():
        held["on"] = True
        try:
            yield
        finally:
            held["on"] = False

    return hold


def parties(event):
    data = event["data"]
    return ({"kind": "client", "tenant_id": data["client"]["tenant_id"]},
            {"kind": "provider", "provider_id": data["provider"]["provider_id"]})


def drafted(contracting, database, amqp_uri, **award):
    event = awards.award_event(**{"start": datetime.now(UTC).date() + timedelta(days=7), **award})
    awards.publish(amqp_uri, event)
    assert wait_for(lambda: database.contracts.find_one({"posting_id": event["subject"]}) is not None)
    client, provider = parties(event)
    contract_id = database.contracts.find_one({"posting_id": event["subject"]})["_id"]
    return event, client, provider, contracting.get_contract(client, contract_id)


def activated(contracting, database, amqp_uri, **award):
    event, client, provider, draft = drafted(contracting, database, amqp_uri, **award)
    contracting.sign_contract(client, draft["id"], {"terms_hash": draft["terms_hash"]})
    active = contracting.sign_contract(provider, draft["id"], {"terms_hash": draft["terms_hash"]})
    assert active["status"] == "active"
    return client, provider, active


def test_an_award_becomes_one_draft_contract_even_when_delivered_twice(contracting, database, amqp_uri):
    event, client, provider, draft = drafted(contracting, database, amqp_uri)
    awards.publish(amqp_uri, {**event, "id": "0f0e0d0c-0b0a-4908-8706-050403020100"})  # same award, new event id
    assert wait_for(lambda: database.applied_events.count_documents({}) == 2)

    assert database.contracts.count_documents({}) == 1
    assert (draft["status"], draft["version"], draft["signatures"]) == ("draft", 1, [])
    assert draft["terms"]["price"] == {"amount": "13.25", "currency": "USD"}
    assert draft["terms"]["hours_per_week"] == 20 and draft["confidentiality"]["nda_required"] is True
    assert [s["metric"] for s in draft["slas"]] == ["first_response_minutes"]
    assert contracting.get_contract(provider, draft["id"]) == draft


def test_only_the_two_parties_see_a_contract_and_only_the_client_edits_it(contracting, database, amqp_uri):
    _, client, provider, draft = drafted(contracting, database, amqp_uri)
    for stranger in (STRANGER, OTHER_CLIENT):
        with pytest.raises(NotFound):
            contracting.get_contract(stranger, draft["id"])
        with pytest.raises(NotFound):
            contracting.sign_contract(stranger, draft["id"], {"terms_hash": draft["terms_hash"]})
    with pytest.raises(Forbidden):
        contracting.update_contract(provider, draft["id"], {"title": "Mine now"})
    assert contracting.get_contract(client, draft["id"]) == draft
    assert contracting.list_contracts(provider)["items"] == [draft]
    assert contracting.list_contracts(STRANGER)["items"] == []


def test_an_edit_after_one_signature_voids_it_and_both_must_sign_the_same_terms(contracting, database, amqp_uri):
    _, client, provider, draft = drafted(contracting, database, amqp_uri)
    signed = contracting.sign_contract(client, draft["id"], {"terms_hash": draft["terms_hash"]})
    assert signed["status"] == "pending_signatures" and signed["signatures"][0]["party"] == "client"

    edited = contracting.update_contract(client, draft["id"], {"terms": {"payment_due_days": 14}})
    assert (edited["status"], edited["signatures"]) == ("draft", [])
    assert edited["terms_hash"] != draft["terms_hash"]
    with pytest.raises(Conflict):  # the provider read the old terms
        contracting.sign_contract(provider, draft["id"], {"terms_hash": draft["terms_hash"]})

    contracting.sign_contract(provider, draft["id"], {"terms_hash": edited["terms_hash"]})
    active = contracting.sign_contract(client, draft["id"], {"terms_hash": edited["terms_hash"]})
    assert (active["status"], active["version"]) == ("active", 1)
    assert [h["terms_hash"] for h in active["history"]] == [edited["terms_hash"]]
    [activation] = outbox(database, "contract.activated.v1")
    assert activation["data"]["contract"]["terms"]["payment_due_days"] == 14
    signed = [(e["data"]["signature"]["party"], e["data"]["status"]) for e in outbox(database, "contract.signed.v1")]
    assert signed == [("client", "pending_signatures"), ("provider", "pending_signatures"), ("client", "active")]


def test_an_illegal_transition_is_a_conflict_and_changes_nothing(contracting, database, amqp_uri):
    _, client, provider, draft = drafted(contracting, database, amqp_uri)
    with pytest.raises(Conflict):
        contracting.complete_contract(client, draft["id"], {"score": 5, "comment": None})
    with pytest.raises(Conflict):
        contracting.terminate_contract(provider, draft["id"], {"reason": "Changed my mind"})
    assert contracting.get_contract(client, draft["id"]) == draft
    assert outbox_events(database) == []


def test_a_start_date_further_back_than_allowed_is_refused(contracting, database, amqp_uri):
    _, client, _, draft = drafted(contracting, database, amqp_uri)
    too_early = (datetime.now(UTC).date() - timedelta(days=40)).isoformat()
    with pytest.raises(ValidationFailed) as refused:
        contracting.update_contract(client, draft["id"], {"start_date": too_early})
    assert "start_date" in refused.value.details


def test_sla_windows_are_evaluated_once_with_the_credit_to_the_cent_and_late_measurements_flagged(
    contracting, database, amqp_uri, evaluation_held
):
    today = datetime.now(UTC).date()
    first = datetime(today.year, today.month, today.day, 9, tzinfo=UTC) - timedelta(days=2)
    second = first + timedelta(days=1)
    with evaluation_held():
        client, provider, contract = activated(contracting, database, amqp_uri, start=today - timedelta(days=2))
        sla = contract["slas"][0]

        def measurement(key, value, at):
            return {"key": key, "sla_id": sla["id"], "value": value, "measured_at": at.isoformat()}

        answer = contracting.submit_measurements(provider, contract["id"], {"measurements": [
            measurement("d1-a", "40", first), measurement("d1-b", "50", first + timedelta(hours=3)),
            measurement("d2-a", "90", second), measurement("d2-b", "75", second + timedelta(hours=1)),
        ]})
        again = contracting.submit_measurements(provider, contract["id"], measurement("d1-a", "40", first))
    assert (answer["recorded"], again["duplicate"]) == (4, 1)

    assert wait_for(lambda: len(outbox(database, "sla.met.v1")) + len(outbox(database, "sla.breached.v1")) == 2)
    [met] = outbox(database, "sla.met.v1")
    [breached] = outbox(database, "sla.breached.v1")
    assert met["data"]["result"] == {"value": "45", "measurements": 2} and met["data"]["credit"] is None
    assert breached["data"]["result"] == {"value": "82.5", "measurements": 2}
    # 13.25 USD x 20 h/week x 1/7 week = 37.857142... of fees; 5 % = 1.892857... -> 1.89
    assert breached["data"]["credit"] == {"amount": "1.89", "currency": "USD"}
    assert breached["data"]["window"]["start"].startswith((today - timedelta(days=1)).isoformat())

    late = contracting.submit_measurements(provider, contract["id"],
                                           measurement("d2-late", "10", second + timedelta(hours=2)))
    assert late["late"] == 1
    summary = contracting.governance_summary(client, contract["id"])
    [compliance] = summary["sla_compliance"]
    assert (compliance["met"], compliance["breached"], compliance["compliance_percent"]) == (1, 1, "50.0")
    assert compliance["credits"] == {"amount": "1.89", "currency": "USD"}
    assert summary["late_measurements"] == 1
    assert len(outbox(database, "sla.breached.v1")) == 1  # a late measurement does not re-evaluate


def test_an_amendment_signed_by_both_raises_the_terms_version(contracting, database, amqp_uri):
    client, provider, contract = activated(contracting, database, amqp_uri)
    proposed = contracting.propose_amendment(client, contract["id"], {
        "changes": {"hours_per_week": 30}, "reason": "A second practice joins."})
    pending = proposed["pending_amendment"]
    assert (pending["version"], pending["changes"], pending["previous"]) == (2, {"hours_per_week": 30},
                                                                             {"hours_per_week": 20})
    with pytest.raises(Conflict):
        contracting.propose_amendment(provider, contract["id"], {"changes": {"seats": 2}, "reason": "More"})
    contracting.sign_amendment(client, contract["id"], pending["id"], {"terms_hash": pending["terms_hash"]})
    amended = contracting.sign_amendment(provider, contract["id"], pending["id"],
                                         {"terms_hash": pending["terms_hash"]})

    assert (amended["version"], amended["terms"]["hours_per_week"], amended["pending_amendment"]) == (2, 30, None)
    assert [h["version"] for h in amended["history"]] == [1, 2]
    [event] = outbox(database, "contract.amended.v1")
    assert event["data"]["amendment"]["version"] == 2
    amendment_signatures = [e["data"] for e in outbox(database, "contract.signed.v1") if e["data"]["amendment_id"]]
    assert [(d["signature"]["party"], d["version"]) for d in amendment_signatures] == [("client", 1), ("provider", 2)]


def test_an_amendment_takes_effect_on_its_agreed_day_and_a_declined_one_stays_in_the_history(
    contracting, database, amqp_uri
):
    client, provider, contract = activated(contracting, database, amqp_uri)
    today = datetime.now(UTC).date()
    with pytest.raises(ValidationFailed, match="never reaches back"):
        contracting.propose_amendment(client, contract["id"], {
            "changes": {"hours_per_week": 30}, "reason": "Back pay",
            "effective_date": (today - timedelta(days=1)).isoformat()})
    declined = contracting.propose_amendment(client, contract["id"], {
        "changes": {"hours_per_week": 30}, "reason": "A second practice joins."})["pending_amendment"]
    after = contracting.withdraw_amendment(provider, contract["id"], declined["id"])
    assert after["pending_amendment"] is None and after["terms"]["hours_per_week"] == 20
    row = after["history"][-1]
    assert (row["amendment_id"], row["outcome"], row["ended_by"], row["changes"]) == (
        declined["id"], "declined", "provider", {"hours_per_week": 30})
    assert contracting.get_contract(client, contract["id"])["history"][-1] == row

    start = (today + timedelta(days=10)).isoformat()
    pending = contracting.propose_amendment(provider, contract["id"], {
        "changes": {"price": {"amount": "15.00", "currency": "USD"}}, "reason": "New rate card",
        "effective_date": start})["pending_amendment"]
    contracting.sign_amendment(client, contract["id"], pending["id"], {"terms_hash": pending["terms_hash"]})
    contracting.sign_amendment(provider, contract["id"], pending["id"], {"terms_hash": pending["terms_hash"]})
    [event] = outbox(database, "contract.amended.v1")
    assert event["data"]["amendment"]["effective_date"] == start


def test_during_the_notice_period_measurements_reviews_and_issues_go_on(contracting, database, amqp_uri):
    client, provider, contract = activated(contracting, database, amqp_uri, start=datetime.now(UTC).date())
    ended = contracting.terminate_contract(client, contract["id"], {"reason": "Moving in-house"})
    assert ended["status"] == "terminated" and ended["termination"]["notice_days"] == 14
    sla = contract["slas"][0]
    answer = contracting.submit_measurements(provider, contract["id"], {
        "key": "m1", "sla_id": sla["id"], "value": "30", "measured_at": datetime.now(UTC).isoformat()})
    assert answer["recorded"] == 1
    review = contracting.record_review(client, contract["id"], {"scores": {"quality": 3}, "notes": "Handover."})
    assert review["overall"] == "3"
    issue = contracting.raise_issue(provider, contract["id"], {
        "title": "Handover files", "severity": "medium", "owner": "client",
        "due_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
    assert issue["status"] == "open"


def test_a_fixed_price_contract_past_its_end_date_moves_on_to_completion_pending(contracting, database, amqp_uri):
    client, provider, contract = activated(contracting, database, amqp_uri, engagement="fixed", duration_weeks=1,
                                           start=datetime.now(UTC).date() - timedelta(days=20))
    assert wait_for(lambda: contracting.get_contract(client, contract["id"])["status"] == "completion_pending")
    with pytest.raises(Conflict):
        contracting.propose_amendment(client, contract["id"], {"changes": {"seats": 2}, "reason": "More"})
    done = contracting.complete_contract(client, contract["id"], {"score": 5, "comment": "Delivered."})
    assert done["status"] == "completed"
    [event] = outbox(database, "contract.completed.v1")
    assert event["data"]["contract"]["status"] == "completed"


def test_an_unresolved_issue_escalates_level_by_level(contracting, database, amqp_uri):
    client, provider, contract = activated(contracting, database, amqp_uri)
    due = datetime.now(UTC) + timedelta(seconds=4)  # still ahead when the call arrives on a busy machine
    issue = contracting.raise_issue(provider, contract["id"], {
        "title": "Calendar access revoked", "severity": "high", "owner": "client", "due_at": due.isoformat()})
    assert issue["level"] == 1

    assert wait_for(lambda: database.issues.find_one({"_id": issue["id"]})["level"] == 2, timeout=20)
    [escalated] = outbox(database, "issue.escalated.v1")
    assert (escalated["data"]["issue"]["level"], escalated["data"]["issue"]["client_contact"]) == (
        2, "Head of operations")
    summary = contracting.governance_summary(client, contract["id"])
    [escalated] = summary["issues"]["items"]
    assert [e["level"] for e in escalated["escalations"]] == [1, 2]
    resolved = contracting.resolve_issue(client, contract["id"], issue["id"], {"resolution": "Access restored."})
    assert resolved["status"] == "resolved"


def test_completion_rates_the_provider_and_each_side_answers_once(contracting, database, amqp_uri):
    client, provider, contract = activated(contracting, database, amqp_uri)
    review = contracting.record_review(client, contract["id"], {"scores": {"quality": 4, "timeliness": 5},
                                                                "notes": "Good month."})
    assert review["overall"] == "4.5"
    with pytest.raises(ValidationFailed):  # the criteria are fixed: quality, timeliness, communication, value
        contracting.record_review(client, contract["id"], {"scores": {"friendliness": 5}})
    with pytest.raises(Forbidden):
        contracting.complete_contract(provider, contract["id"], {"score": 5, "comment": None})
    done = contracting.complete_contract(client, contract["id"], {"score": 4, "comment": "Reliable."})
    assert done["status"] == "completed"
    [event] = outbox(database, "contract.completed.v1")
    assert event["data"]["provider_rating"] == {"score": 4, "comment": "Reliable."}

    contracting.rate_client(provider, contract["id"], {"score": 5, "comment": "Clear briefs."})
    with pytest.raises(Conflict):
        contracting.rate_client(provider, contract["id"], {"score": 1, "comment": None})
    answered = contracting.answer_rating(provider, contract["id"], {"text": "Thank you!"})
    assert answered["ratings"]["provider"]["answer"]["text"] == "Thank you!"
    with pytest.raises(Conflict):
        contracting.answer_rating(provider, contract["id"], {"text": "Again"})


def test_termination_needs_the_notice_period_and_says_why(contracting, database, amqp_uri):
    client, provider, contract = activated(contracting, database, amqp_uri)
    with pytest.raises(ValidationFailed):
        contracting.terminate_contract(provider, contract["id"], {"reason": "Overbooked", "notice_days": 3})
    ended = contracting.terminate_contract(provider, contract["id"], {"reason": "Overbooked"})
    assert ended["status"] == "terminated" and ended["termination"]["notice_days"] == 14
    [event] = outbox(database, "contract.terminated.v1")
    assert (event["data"]["terminated_by"], event["data"]["reason"]) == ("provider", "Overbooked")


def test_two_replicas_evaluate_each_window_exactly_once(container_factory, service_config, contracting, database,
                                                        amqp_uri, evaluation_held):
    config = {**service_config, "CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS": 0.1,
              "CONTRACTING_SLA_GRACE_SECONDS": 2.5}
    container_factory(ContractingService, config).start()  # a second replica on the same database
    today = datetime.now(UTC).date()
    yesterday = datetime(today.year, today.month, today.day, 9, tzinfo=UTC) - timedelta(days=1)
    with evaluation_held():
        _, provider, contract = activated(contracting, database, amqp_uri, start=today - timedelta(days=3))
        contracting.submit_measurements(provider, contract["id"], {
            "key": "y", "sla_id": contract["slas"][0]["id"], "value": "30", "measured_at": yesterday.isoformat()})

    def evaluated():
        return len(outbox(database, "sla.met.v1")) + len(outbox(database, "sla.breached.v1"))

    assert wait_for(lambda: evaluated() == 3)
    assert not wait_for(lambda: evaluated() > 3, timeout=1.5)  # more ticks of both replicas add nothing
    assert [e["data"]["met"] for e in outbox(database, "sla.met.v1")] == [True]
    assert database.sla_windows.count_documents({"contract_id": contract["id"]}) == 3


def test_an_extension_after_the_last_window_was_evaluated_evaluates_only_the_days_it_adds(
        contracting, database, amqp_uri, evaluation_held):
    today = datetime.now(UTC).date()
    start = today - timedelta(days=10)
    event, client, provider, draft = drafted(contracting, database, amqp_uri, start=start, sla_window="weekly")
    draft = contracting.update_contract(client, draft["id"], {"end_date": (today - timedelta(days=6)).isoformat()})
    contracting.sign_contract(client, draft["id"], {"terms_hash": draft["terms_hash"]})
    contract = contracting.sign_contract(provider, draft["id"], {"terms_hash": draft["terms_hash"]})
    sla = contract["slas"][0]
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)

    def measurement(key, value, at):
        return {"key": key, "sla_id": sla["id"], "value": value, "measured_at": at.isoformat()}

    def windows():
        evaluated = outbox(database, "sla.met.v1") + outbox(database, "sla.breached.v1")
        return sorted((e["data"]["window"]["start"][:10], e["data"]["window"]["end"][:10]) for e in evaluated)

    contracting.submit_measurements(provider, contract["id"], measurement("w1", "40", midnight + timedelta(days=1)))
    # The contract ends with day 5: its one window is those five days, cut short by the end date.
    assert wait_for(lambda: len(windows()) == 1)
    assert windows() == [(start.isoformat(), (start + timedelta(days=5)).isoformat())]

    # The days the extension adds are due at once: the measurement for day 6 goes in before they are evaluated.
    with evaluation_held():
        proposed = contracting.propose_amendment(client, contract["id"], {
            "changes": {"end_date": (today + timedelta(days=30)).isoformat()}, "reason": "Extended"})
        pending = proposed["pending_amendment"]
        for party in (client, provider):
            contracting.sign_amendment(party, contract["id"], pending["id"], {"terms_hash": pending["terms_hash"]})
        day_six = midnight + timedelta(days=5, hours=9)
        recorded = contracting.submit_measurements(provider, contract["id"], {"measurements": [
            measurement("d6", "30", day_six), measurement("w1-late", "50", midnight + timedelta(days=2))]})
    assert (recorded["recorded"], recorded["late"]) == (1, 1)  # day 2 lies in the window already evaluated

    # The week the old end fell in is evaluated from the old end on (days 6 and 7), not from its start again.
    assert wait_for(lambda: len(windows()) == 2)
    assert windows() == [(start.isoformat(), (start + timedelta(days=5)).isoformat()),
                         ((start + timedelta(days=5)).isoformat(), (start + timedelta(days=7)).isoformat())]
    [second] = [e for e in outbox(database, "sla.met.v1") if e["data"]["window"]["start"].startswith(
        (start + timedelta(days=5)).isoformat())]
    assert second["data"]["result"] == {"value": "30", "measurements": 1}


def test_the_client_and_the_provider_each_have_their_own_measurement_keys(
        contracting, database, amqp_uri, evaluation_held):
    today = datetime.now(UTC).date()
    at = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(hours=12)
    with evaluation_held():
        client, provider, contract = activated(contracting, database, amqp_uri, start=today - timedelta(days=1))
        sla = contract["slas"][0]

        def measurement(value):
            return {"key": "cmd:erp-2026-000124:0", "sla_id": sla["id"], "value": value,
                    "measured_at": at.isoformat()}

        # The provider takes a key the client's system will use (its command ids are predictable): no effect on it.
        assert contracting.submit_measurements(provider, contract["id"], measurement("5"))["recorded"] == 1
        mine = contracting.submit_measurements(client, contract["id"], measurement("95"))
        assert (mine["recorded"], mine["duplicate"]) == (1, 0)
        assert mine["measurements"][0]["value"] == "95"
        again = contracting.submit_measurements(client, contract["id"], measurement("95"))
        assert again["duplicate"] == 1


@pytest.fixture
def contracting_default_timers(container_factory, service_config, amqp_uri):
    """Contracting with the SLA timer and grace period it has by default (a minute; an hour)."""
    container_factory(ContractingService, service_config).start()
    with ServiceRpcProxy("contracting", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as proxy:
        yield proxy


def test_a_past_window_closed_by_both_parties_is_evaluated_at_once_despite_the_hour_of_grace(
    contracting_default_timers, database, amqp_uri
):
    contracting = contracting_default_timers
    today = datetime.now(UTC).date()
    client, provider, contract = activated(contracting, database, amqp_uri, start=today - timedelta(days=2))
    sla = contract["slas"][0]
    day = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=2)
    window = {"start": day.isoformat()}

    def measurement(key, value, at):
        return {"key": key, "sla_id": sla["id"], "value": value, "measured_at": at.isoformat()}

    def evaluations():
        return outbox(database, "sla.met.v1") + outbox(database, "sla.breached.v1")

    contracting.submit_measurements(provider, contract["id"], measurement("a", "90", day + timedelta(hours=9)))
    one = contracting.close_sla_window(provider, contract["id"], sla["id"], window)
    assert one["confirmed_by"].keys() == {"provider"} and one["closed_at"] is None and one["evaluation"] is None
    assert contracting.close_sla_window(provider, contract["id"], sla["id"], window)["closed_at"] is None
    # One party's word closes nothing: the window still counts what comes in, and nothing is evaluated.
    assert contracting.submit_measurements(provider, contract["id"],
                                           measurement("b", "75", day + timedelta(hours=10)))["recorded"] == 1
    assert evaluations() == []

    both = contracting.close_sla_window(client, contract["id"], sla["id"], window)
    assert both["closed_at"] is not None and both["window"]["end"].startswith((today - timedelta(days=1)).isoformat())
    [breached] = evaluations()  # in the outbox when the answer comes: no hour of grace, no timer tick
    assert breached["type"].endswith(".sla.breached.v1")
    assert breached["data"]["result"] == {"value": "82.5", "measurements": 2}
    assert breached["data"]["credit"] == {"amount": "1.89", "currency": "USD"}
    assert both["evaluation"]["credit"] == breached["data"]["credit"] and both["evaluation"]["met"] is False

    again = contracting.close_sla_window(provider, contract["id"], sla["id"], window)
    assert again["evaluation"] == both["evaluation"] and len(evaluations()) == 1
    late = contracting.submit_measurements(provider, contract["id"], measurement("c", "10", day + timedelta(hours=11)))
    assert late["late"] == 1
    assert len(evaluations()) == 1  # the next day's window still waits for its grace

    for offset, refused in ((timedelta(days=2), Conflict), (timedelta(hours=1), ValidationFailed)):
        with pytest.raises(refused):  # today's window has not ended; no window starts at 01:00
            contracting.close_sla_window(client, contract["id"], sla["id"], {"start": (day + offset).isoformat()})
    with pytest.raises(NotFound):
        contracting.close_sla_window(STRANGER, contract["id"], sla["id"], window)
