"""A small world built over the public API for the console's browser tests: a client with a posting negotiated,
awarded, contracted, measured (one SLA window breached) and invoiced, a second posting with an invitation waiting
for the provider, and an unverified provider the client can ask "why not?" about.

Needs a stack started with short SLA timers (``SETTINGS``) so last week's window is evaluated within seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from pymongo import MongoClient

from tests.support import samples
from tests.support.stack import OPERATOR_KEY
from tests.support.waiting import wait_for

SETTINGS = {
    "TASKLINKR_CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS": "0.5",
    "TASKLINKR_CONTRACTING_SLA_GRACE_SECONDS": "3",
}


class Api:
    def __init__(self, url: str):
        self.url = url

    def __call__(self, method: str, path: str, key: str = OPERATOR_KEY, status: int = 200, **kwargs) -> dict:
        answer = requests.request(method, self.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                                  **kwargs)
        assert answer.status_code == status, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def answers(self, method: str, path: str, key: str) -> bool:
        return requests.request(method, self.url + path, headers={"Authorization": f"Bearer {key}"},
                                timeout=30).status_code == 200


def _shortlisted(api: Api, key: str, posting_id: str, provider_id: str) -> None:
    def listed():
        if not api.answers("GET", f"/v1/postings/{posting_id}/shortlist", key):
            return False
        shortlist = api("GET", f"/v1/postings/{posting_id}/shortlist", key)["shortlist"]
        return provider_id in [c["provider_id"] for c in shortlist["candidates"]]

    assert wait_for(listed, timeout=30), f"{provider_id} never reached the shortlist of {posting_id}"


def build(url: str, mongo_uri: str, billing_database: str) -> dict:
    api = Api(url)
    client = api("POST", "/v1/tenants", json=samples.tenant(name="Harbour Dental"), status=201)
    client_key = client["api_key"]
    registered = api("POST", "/v1/providers", status=201, json=samples.individual_provider(
        display_name="Ana Ruiz", country="MX", time_zone="America/Mexico_City", languages=["en", "es"],
        working_hours={"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}))
    provider, provider_key = registered["provider"], registered["api_key"]
    api("POST", f"/v1/providers/{provider['id']}/verify", json={"note": "References checked"})
    stranger = api("POST", "/v1/providers", status=201,
                   json=samples.individual_provider(display_name="Eve Stone"))["provider"]

    postings = []
    for title in ("Inbox and calendar for three clinics", "Front desk phone cover"):
        draft = api("POST", "/v1/postings", client_key, status=201, json=samples.posting(title=title))
        postings.append(api("POST", f"/v1/postings/{draft['id']}/publish", client_key, json={}))
    for posting in postings:
        _shortlisted(api, client_key, posting["id"], provider["id"])
    awarded, waiting = postings

    # The first posting: proposed, countered, accepted, awarded.
    invitation = api("POST", f"/v1/postings/{awarded['id']}/invitations", client_key, status=201,
                     json={"provider_id": provider["id"]})
    api("POST", f"/v1/invitations/{invitation['id']}/accept", provider_key)

    def offer(amount: str, note: str) -> dict:
        return {"terms": {"price": {"amount": amount, "currency": "USD"}, "hours_per_week": 20,
                          "available_from": awarded["start_date"]}, "note": note}

    proposal = api("POST", f"/v1/invitations/{invitation['id']}/proposals", provider_key, status=201,
                   json=offer("14.00", "Available from your start date"))
    api("POST", f"/v1/proposals/{proposal['id']}/counter", client_key, json=offer("12.75", "Within our budget"))
    api("POST", f"/v1/proposals/{proposal['id']}/accept", provider_key)
    api("POST", f"/v1/postings/{awarded['id']}/award", client_key, json={"proposal_id": proposal["id"]})

    # Its contract, backdated to last week's Monday with a weekly SLA, signed by both.
    assert wait_for(lambda: api("GET", "/v1/contracts", client_key)["items"], timeout=30)
    [draft] = api("GET", "/v1/contracts", client_key)["items"]
    contract_id = draft["id"]
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday() + 7)
    final = api("PATCH", f"/v1/contracts/{contract_id}", client_key, json={
        "start_date": monday.isoformat(), "terms": {"payment_due_days": 0},
        "slas": [{"metric": "first_response_minutes", "target": "60", "direction": "at_most", "window": "weekly",
                  "credit": {"percent": "10", "cap": {"amount": "50.00", "currency": "USD"}}}]})
    for key in (provider_key, client_key):
        contract = api("POST", f"/v1/contracts/{contract_id}/sign", key, json={"terms_hash": final["terms_hash"]})
    assert contract["status"] == "active"
    account = f"/v1/billing-accounts/{contract_id}"
    assert wait_for(lambda: api.answers("GET", account, client_key), timeout=30)

    # Last week's time, approved; a first response of 95 minutes breaches the week's window.
    items = api("POST", f"{account}/items", provider_key, json={"items": [
        {"kind": "time", "key": "mon", "date": monday.isoformat(), "hours": "3.5", "description": "Inbox triage"},
        {"kind": "time", "key": "tue", "date": (monday + timedelta(days=1)).isoformat(), "hours": "2.25",
         "description": "Scheduling"}]})["items"]
    for item in items:
        api("POST", f"{account}/items/{item['id']}/approve", client_key)
    measured = datetime(monday.year, monday.month, monday.day, 10, tzinfo=UTC)
    api("POST", f"/v1/contracts/{contract_id}/measurements", provider_key, json={"measurements": [
        {"key": "m1", "sla_id": contract["slas"][0]["id"], "value": "95", "measured_at": measured.isoformat()}]})
    credits = MongoClient(mongo_uri)[billing_database].credits
    assert wait_for(lambda: credits.count_documents({"contract_id": contract_id}) == 1, timeout=30)
    assert api("POST", "/v1/invoice-runs", json={"tenant_id": client["tenant"]["id"]})["invoices_issued"] == 1
    [summary] = api("GET", "/v1/invoices", client_key)["items"]
    invoice = api("GET", f"/v1/invoices/{summary['id']}", client_key)
    api("PUT", "/v1/reports/in-house-costs", client_key,
        json={"monthly": {"administrative_support": {"amount": "3000.00", "currency": "USD"}}})

    # The second posting: the provider is invited and has not answered.
    api("POST", f"/v1/postings/{waiting['id']}/invitations", client_key, status=201,
        json={"provider_id": provider["id"]})
    finance_key = api("POST", f"/v1/tenants/{client['tenant']['id']}/keys", client_key, status=201,
                      json={"role": "finance"})["api_key"]
    return {"client_key": client_key, "finance_key": finance_key, "tenant_id": client["tenant"]["id"],
            "provider_key": provider_key,
            "provider": provider, "stranger": stranger,
            "awarded": awarded, "waiting": waiting, "contract_id": contract_id, "invoice": invoice}
