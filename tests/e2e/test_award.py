"""From a published posting to an award, over HTTP against the stack running as processes.

A verified provider is shortlisted by matching for a client's posting (matching's own matches.proposed.v1, carried
into postings' projection), invited, accepts, proposes; the client counters, the provider accepts, the client
awards, and posting.awarded.v1 reaches the broker valid against its contract.
"""

import uuid

import pytest
import requests
from pymongo import MongoClient

from shared.runtime import contracts
from tests.support import samples
from tests.support.stack import OPERATOR_KEY
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def call(stack, method, path, key=OPERATOR_KEY, **kwargs):
    headers = kwargs.pop("headers", {})
    headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, stack.url + path, headers=headers, timeout=30, **kwargs)


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def shortlist_for(stack, recorder, mongo_uri, posting, provider_id):
    """Matching's latest shortlist of the posting with the provider on it, as postings' projection keeps it.

    The provider's verification and the posting's publication travel on different queues, so matching may rank
    the posting first and put the provider on it when it re-ranks (shortlist.updated.v1).
    """
    postings_db = MongoClient(mongo_uri)[stack.database_name("postings")]

    def kept():
        return postings_db.shortlists.find_one({"_id": posting["id"]}) or {"candidates": []}

    assert wait_for(lambda: provider_id in [c["provider_id"] for c in kept()["candidates"]], timeout=30)
    ranked = recorder.wait_for(lambda e: e["subject"] == posting["id"] and e["source"] == "/tasklinkr/matching"
                               and e["data"]["shortlist"]["version"] == kept()["version"])
    assert ranked and all(contracts.errors(e) == [] for e in ranked)
    return ranked[0]["data"]["shortlist"]


def test_a_shortlisted_provider_is_invited_negotiates_and_is_awarded_and_posting_awarded_is_published(
    stack, recorder, mongo_uri
):
    correlation_id = f"e2e-award-{uuid.uuid4()}"
    traced = {"X-Correlation-ID": correlation_id}
    client = ok(call(stack, "POST", "/v1/tenants", json=samples.tenant(name="Award Dental")), 201)
    client_key = client["api_key"]
    # Based in Mexico City with the Chicago client's hours, so matching's overlap rule keeps it in.
    nearshore = samples.individual_provider(
        display_name="Lucía Gómez", country="MX", time_zone="America/Mexico_City", languages=["en", "es"],
        working_hours={"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"})
    registered = ok(call(stack, "POST", "/v1/providers", json=nearshore), 201)
    provider, provider_key = registered["provider"], registered["api_key"]
    ok(call(stack, "POST", f"/v1/providers/{provider['id']}/verify", json={"note": "ID and references checked"}))

    draft = ok(call(stack, "POST", "/v1/postings", key=client_key, json=samples.posting()), 201)
    posting = ok(call(stack, "POST", f"/v1/postings/{draft['id']}/publish", key=client_key, json={}))
    shortlist = shortlist_for(stack, recorder, mongo_uri, posting, provider["id"])
    assert provider["id"] in [c["provider_id"] for c in shortlist["candidates"]]

    invitation = ok(call(stack, "POST", f"/v1/postings/{posting['id']}/invitations", key=client_key,
                         json={"provider_id": provider["id"]}), 201)
    assert [i["id"] for i in ok(call(stack, "GET", "/v1/invitations", key=provider_key))["items"]] == \
        [invitation["id"]]
    ok(call(stack, "POST", f"/v1/invitations/{invitation['id']}/accept", key=provider_key))

    currency = posting["budget"]["currency"]
    hours = posting["hours_per_week"]

    def terms(amount):
        return {"price": {"amount": amount, "currency": currency}, "hours_per_week": hours,
                "available_from": posting["start_date"]}

    proposal = ok(call(stack, "POST", f"/v1/invitations/{invitation['id']}/proposals", key=provider_key,
                       json={"terms": terms("14.00"), "note": "Available from your start date"}), 201)
    ok(call(stack, "POST", f"/v1/proposals/{proposal['id']}/counter", key=client_key,
            json={"terms": terms("12.75"), "note": "Within our budget"}))
    agreed = ok(call(stack, "POST", f"/v1/proposals/{proposal['id']}/accept", key=provider_key))
    assert agreed["status"] == "agreed"
    awarded = ok(call(stack, "POST", f"/v1/postings/{posting['id']}/award", key=client_key,
                      json={"proposal_id": proposal["id"]}, headers=traced))
    assert awarded["status"] == "awarded"

    [event] = recorder.wait_for(lambda e: e["subject"] == posting["id"] and e["type"].endswith("posting.awarded.v1"))
    assert contracts.errors(event) == []
    assert (event["tenantid"], event["correlationid"]) == (client["tenant"]["id"], correlation_id)
    assert recorder.headers[event["id"]]["lane"] == client["tenant"]["segment"]
    assert event["data"]["provider"]["provider_id"] == provider["id"]
    assert event["data"]["terms"]["price"] == {"amount": "12.75", "currency": currency}
    assert [step["action"] for step in event["data"]["proposal"]["history"]] == ["proposed", "countered", "accepted"]
    submitted = recorder.wait_for(lambda e: e["subject"] == proposal["id"]
                                  and e["type"].endswith("proposal.submitted.v1"))
    assert [e["data"]["kind"] for e in submitted] == ["initial"]
    for recorded in recorder.drain():
        assert contracts.errors(recorded) == [], recorded["type"]
