"""From an award to a completed contract, over HTTP against the stack running as processes.

The award (as in test_award) becomes a draft; the client backdates it two days (work already under way) with a
daily SLA, signs, edits (voiding the signature), and both sign; measurements for the two past days arrive in one
batch, and contracting's timer evaluates both windows: one met, one breached with its credit to the cent. Then a
review, an issue that escalates, an amendment scaling hours up, and completion with a rating, after which
matching's track record of the provider counts the contract, its rating and its SLA windows. The other party, a
stranger and an illegal transition are refused and change nothing.
"""

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient

from shared.runtime import contracts
from tests.e2e.test_award import call, ok, shortlist_for
from tests.support import samples
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

# Short timers so that two closed SLA windows, their evaluation and an escalation take seconds.
CONTRACTING_SETTINGS = {
    "TASKLINKR_CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS": "0.5",
    "TASKLINKR_CONTRACTING_SLA_GRACE_SECONDS": "10",  # the measurements arrive within it
    "TASKLINKR_CONTRACTING_ESCALATION_INTERVAL_SECONDS": "0.5",
}


@pytest.fixture(scope="module", autouse=True)
def short_contracting_timers():
    """Set before the module's stack starts (it copies the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CONTRACTING_SETTINGS.items():
            patch.setenv(name, value)
        yield


def awarded(stack, recorder, mongo_uri) -> dict:
    """A client, a verified provider and the posting the client awarded it, through the API."""
    client = ok(call(stack, "POST", "/v1/tenants", json=samples.tenant(name="Contract Dental")), 201)
    registered = ok(call(stack, "POST", "/v1/providers", json=samples.individual_provider(
        display_name="Ana Ruiz", country="MX", time_zone="America/Mexico_City", languages=["en", "es"],
        working_hours={"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"})), 201)
    provider = registered["provider"]
    ok(call(stack, "POST", f"/v1/providers/{provider['id']}/verify", json={"note": "References checked"}))
    client_key, provider_key = client["api_key"], registered["api_key"]
    draft = ok(call(stack, "POST", "/v1/postings", key=client_key, json=samples.posting()), 201)
    posting = ok(call(stack, "POST", f"/v1/postings/{draft['id']}/publish", key=client_key, json={}))
    shortlist_for(stack, recorder, mongo_uri, posting, provider["id"])
    invitation = ok(call(stack, "POST", f"/v1/postings/{posting['id']}/invitations", key=client_key,
                         json={"provider_id": provider["id"]}), 201)
    ok(call(stack, "POST", f"/v1/invitations/{invitation['id']}/accept", key=provider_key))
    offer = {"price": {"amount": "12.75", "currency": "USD"}, "hours_per_week": 20,
             "available_from": posting["start_date"]}
    proposal = ok(call(stack, "POST", f"/v1/invitations/{invitation['id']}/proposals", key=provider_key,
                       json={"terms": offer, "note": None}), 201)
    ok(call(stack, "POST", f"/v1/proposals/{proposal['id']}/accept", key=client_key))
    ok(call(stack, "POST", f"/v1/postings/{posting['id']}/award", key=client_key,
            json={"proposal_id": proposal["id"]}))
    return {"client_key": client_key, "provider_key": provider_key, "provider": provider, "posting": posting}


def events_of(recorder, contract_id, routing_key, count=1):
    found = []

    def arrived():
        found[:] = [e for e in recorder.of_type(routing_key) if e["subject"] == contract_id]
        return len(found) >= count

    assert wait_for(arrived, timeout=30), f"no {routing_key} for {contract_id}"
    assert all(contracts.errors(e) == [] for e in found)
    return found


def test_an_award_becomes_a_signed_measured_governed_amended_and_completed_contract(stack, recorder, mongo_uri):
    deal = awarded(stack, recorder, mongo_uri)
    client_key, provider_key, provider = deal["client_key"], deal["provider_key"], deal["provider"]

    def as_client(method, path, status=200, **kwargs):
        return ok(call(stack, method, "/v1/contracts" + path, key=client_key, **kwargs), status)

    def as_provider(method, path, status=200, **kwargs):
        return ok(call(stack, method, "/v1/contracts" + path, key=provider_key, **kwargs), status)

    # The award becomes a draft both parties see.
    assert wait_for(lambda: as_client("GET", "")["items"], timeout=20)
    [draft] = as_client("GET", "")["items"]
    contract_id = draft["id"]
    assert (draft["posting_id"], draft["status"], draft["provider_id"]) == (deal["posting"]["id"], "draft",
                                                                            provider["id"])
    assert as_provider("GET", f"/{contract_id}") == draft

    # A stranger (another provider, another client) does not see it; the provider may not edit it; completing a
    # draft is an illegal transition. None of them changes anything.
    stranger = ok(call(stack, "POST", "/v1/providers", json=samples.individual_provider(display_name="Eve")), 201)
    other_client = ok(call(stack, "POST", "/v1/tenants", json=samples.tenant(name="Other Clinic")), 201)
    for key in (stranger["api_key"], other_client["api_key"]):
        assert call(stack, "GET", f"/v1/contracts/{contract_id}", key=key).status_code == 404
        assert call(stack, "POST", f"/v1/contracts/{contract_id}/sign", key=key,
                    json={"terms_hash": draft["terms_hash"]}).status_code == 404
    assert call(stack, "PATCH", f"/v1/contracts/{contract_id}", key=provider_key,
                json={"title": "Mine"}).status_code == 403
    assert call(stack, "POST", f"/v1/contracts/{contract_id}/complete", key=client_key,
                json={"score": 5}).status_code == 409
    assert as_client("GET", f"/{contract_id}") == draft

    # The client backdates the contract two days with a daily SLA, signs, then edits once more: the signature
    # is void. Both sign the final terms and the contract is active.
    today = datetime.now(UTC).date()
    sla = {"metric": "first_response_minutes", "target": "60", "direction": "at_most", "window": "daily",
           "credit": {"percent": "10", "cap": {"amount": "50.00", "currency": "USD"}}}
    edited = as_client("PATCH", f"/{contract_id}", json={"start_date": (today - timedelta(days=2)).isoformat(),
                                                         "slas": [sla]})
    signed = as_client("POST", f"/{contract_id}/sign", json={"terms_hash": edited["terms_hash"]})
    assert signed["status"] == "pending_signatures"
    final = as_client("PATCH", f"/{contract_id}", json={"deliverables": ["Weekly inbox report"]})
    assert (final["status"], final["signatures"]) == ("draft", [])
    as_provider("POST", f"/{contract_id}/sign", json={"terms_hash": final["terms_hash"]})
    active = as_client("POST", f"/{contract_id}/sign", json={"terms_hash": final["terms_hash"]})
    assert (active["status"], active["version"]) == ("active", 1)

    # Measurements for the two past days (due within the grace period after activation), in one batch keyed by
    # the request's Idempotency-Key; sent twice.
    sla_id = active["slas"][0]["id"]
    day_one = datetime(today.year, today.month, today.day, 10, tzinfo=UTC) - timedelta(days=2)
    day_two = day_one + timedelta(days=1)
    batch = {"measurements": [
        {"sla_id": sla_id, "value": value, "measured_at": at.isoformat()}
        for value, at in (("40", day_one), ("50", day_one + timedelta(hours=2)),
                          ("90", day_two), ("75", day_two + timedelta(hours=2)))]}
    key = {"Idempotency-Key": f"batch-{contract_id}"}
    assert as_provider("POST", f"/{contract_id}/measurements", json=batch, headers=key)["recorded"] == 4
    assert as_provider("POST", f"/{contract_id}/measurements", json=batch, headers=key)["duplicate"] == 4
    [activation] = events_of(recorder, contract_id, "contract.activated.v1")
    assert activation["data"]["contract"]["terms_hash"] == final["terms_hash"]

    [met] = events_of(recorder, contract_id, "sla.met.v1")
    [breached] = events_of(recorder, contract_id, "sla.breached.v1")
    assert (met["data"]["result"], met["data"]["credit"]) == ({"value": "45", "measurements": 2}, None)
    assert breached["data"]["result"] == {"value": "82.5", "measurements": 2}
    # A day of fees: 12.75 USD x 20 h/week / 7 = 36.428571...; 10 % = 3.6428... -> 3.64 (under the 50.00 cap).
    assert breached["data"]["credit"] == {"amount": "3.64", "currency": "USD"}

    # A review by the client; an issue the provider raises, due in five seconds, escalates to level 2.
    review = as_client("POST", f"/{contract_id}/reviews", 201,
                       json={"scores": {"quality": 4, "timeliness": 3}, "notes": "One slow day."})
    assert review["overall"] == "3.5"
    due = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()  # still ahead when it arrives
    issue = as_provider("POST", f"/{contract_id}/issues", 201, json={
        "title": "Calendar access missing", "severity": "high", "owner": "client", "due_at": due})

    def issue_level():
        items = as_client("GET", f"/{contract_id}/governance")["issues"]["items"]
        return next(i["level"] for i in items if i["id"] == issue["id"])

    assert wait_for(lambda: issue_level() == 2, timeout=30)
    summary = as_client("GET", f"/{contract_id}/governance")
    [compliance] = summary["sla_compliance"]
    assert (compliance["met"], compliance["breached"], compliance["credits"]) == (
        1, 1, {"amount": "3.64", "currency": "USD"})
    assert summary["reviews"]["recorded"] == 1 and summary["issues"]["open"] == 1
    as_client("POST", f"/{contract_id}/issues/{issue['id']}/resolve", json={"resolution": "Access granted."})

    # An amendment scaling hours up, signed by both: terms version 2.
    proposed = as_client("POST", f"/{contract_id}/amendments", 201,
                         json={"changes": {"hours_per_week": 30}, "reason": "A second clinic joins."})
    amendment = proposed["pending_amendment"]
    as_client("POST", f"/{contract_id}/amendments/{amendment['id']}/sign",
              json={"terms_hash": amendment["terms_hash"]})
    amended = as_provider("POST", f"/{contract_id}/amendments/{amendment['id']}/sign",
                          json={"terms_hash": amendment["terms_hash"]})
    assert (amended["version"], amended["terms"]["hours_per_week"]) == (2, 30)
    assert [h["version"] for h in amended["history"]] == [1, 2]
    [amendment_event] = events_of(recorder, contract_id, "contract.amended.v1")
    assert amendment_event["data"]["amendment"]["changes"] == {"hours_per_week": 30}

    # The provider may not complete; the client completes with a rating; the provider rates the client.
    assert call(stack, "POST", f"/v1/contracts/{contract_id}/complete", key=provider_key,
                json={"score": 1}).status_code == 403
    completed = as_client("POST", f"/{contract_id}/complete", json={"score": 5, "comment": "Calm inboxes."})
    assert completed["status"] == "completed"
    as_provider("POST", f"/{contract_id}/rate-client", json={"score": 5, "comment": "Clear briefs."})
    [completion] = events_of(recorder, contract_id, "contract.completed.v1")
    assert completion["data"]["provider_rating"] == {"score": 5, "comment": "Calm inboxes."}
    assert call(stack, "POST", f"/v1/contracts/{contract_id}/terminate", key=client_key,
                json={"reason": "Too late"}).status_code == 409

    # Matching's track record of the provider now counts this contract, its rating and its SLA windows.
    matching = MongoClient(mongo_uri)[stack.database_name("matching")]

    def track_record():
        return (matching.providers.find_one({"_id": provider["id"]}) or {}).get("track_record") or {}

    assert wait_for(lambda: track_record().get("completed_contracts") == 1, timeout=20), track_record()
    record = track_record()
    assert (record["rating"], record["sla_windows_evaluated"], record["sla_windows_met"]) == (5, 2, 1)
    for event in recorder.drain():
        assert contracts.errors(event) == [], event["type"]
