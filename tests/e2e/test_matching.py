"""Matching over HTTP against the stack running as processes: explained shortlists that stay current.

A client publishes a posting and reads its ranked, explained shortlist; asks why a provider is not on it; an
operator then registers and verifies a better provider, and the open posting's shortlist is re-ranked —
``shortlist.updated.v1`` reaches the broker, valid against its contract, and the API shows the new order.
"""

import pytest
import requests

from shared.runtime import contracts
from tests.support import samples
from tests.support.stack import OPERATOR_KEY
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def call(stack, method, path, key=OPERATOR_KEY, **kwargs):
    return requests.request(method, stack.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                            **kwargs)


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def provider(stack, verify=True, **changes):
    """An assistant in Mexico City (same hours as the Chicago client) — the sample provider, relocated."""
    body = samples.individual_provider(**{"display_name": "Lucía Gómez", "country": "MX",
                                          "time_zone": "America/Mexico_City",
                                          "working_hours": {"days": WEEKDAYS, "start": "09:00", "end": "17:00"},
                                          "languages": ["en", "es"], **changes})
    registered = ok(call(stack, "POST", "/v1/providers", json=body), 201)["provider"]
    if verify:
        ok(call(stack, "POST", f"/v1/providers/{registered['id']}/verify", json={"note": "references checked"}))
    return registered


def shortlist_of(stack, key, posting_id, first_provider_id):
    """The posting's shortlist once ``first_provider_id`` leads it.

    Provider and posting events reach matching on separate queues, so the provider's verification may be applied
    after the posting was first ranked; the re-ranking then puts it on the list. Either way it gets there.
    """
    found = {}

    def ready():
        response = call(stack, "GET", f"/v1/postings/{posting_id}/shortlist", key=key)
        if response.status_code == 200:
            candidates = response.json()["shortlist"]["candidates"]
            if candidates and candidates[0]["provider_id"] == first_provider_id:
                found.update(response.json())
                return True
        return False

    if not wait_for(ready, timeout=30):
        explained = call(stack, "GET", f"/v1/postings/{posting_id}/shortlist/{first_provider_id}/explain", key=key)
        pytest.fail(f"{first_provider_id} never led the shortlist: {explained.text}\n{stack.logs()}")
    return found


def test_a_published_posting_gets_an_explained_shortlist_that_a_better_provider_later_updates(stack, recorder):
    client = ok(call(stack, "POST", "/v1/tenants", json=samples.tenant(name="Lakeside Dental")), 201)
    key = client["api_key"]
    solid = provider(stack, skills=[{"name": "calendar management", "level": 4}])
    manila_day = provider(stack, display_name="Day-shift Manila", country="PH", time_zone="Asia/Manila",
                          working_hours={"days": WEEKDAYS, "start": "08:00", "end": "17:00"})
    draft = ok(call(stack, "POST", "/v1/postings", key=key, json=samples.posting()), 201)
    posting = ok(call(stack, "POST", f"/v1/postings/{draft['id']}/publish", key=key, json={}))

    first = shortlist_of(stack, key, posting["id"], solid["id"])
    (candidate,) = first["shortlist"]["candidates"]
    assert (candidate["provider_id"], candidate["rank"], candidate["centre_id"]) == (solid["id"], 1, None)
    assert set(candidate["breakdown"]) >= {"required_skills", "rate", "overlap", "track_record", "load"}
    assert any("hourly rate 12.00 USD" in reason for reason in candidate["reasons"])

    def why_not() -> dict:
        return ok(call(stack, "GET", f"/v1/postings/{posting['id']}/shortlist/{manila_day['id']}/explain", key=key))

    # The day-shift provider's verification travels on its own queue: until matching has it, "not verified" is
    # (rightly) a reason too. Once it has, the hours alone keep the provider off.
    assert wait_for(lambda: [x["constraint"] for x in why_not()["rows"][0]["excluded_by"]]
                    == ["insufficient_overlap"], timeout=15), why_not()
    assert why_not()["status"] == "excluded"
    why = ok(call(stack, "GET", f"/v1/postings/{posting['id']}/shortlist/{solid['id']}/explain", key=key))
    assert (why["status"], why["rows"][0]["score"]) == ("shortlisted", candidate["score"])

    stranger = ok(call(stack, "POST", "/v1/tenants", json=samples.tenant(name="Other Clinic")), 201)["api_key"]
    assert call(stack, "GET", f"/v1/postings/{posting['id']}/shortlist", key=stranger).status_code == 404
    assert call(stack, "GET", f"/v1/postings/{posting['id']}/shortlist/{solid['id']}/explain",
                key=stranger).status_code == 404

    better = provider(stack, display_name="Sofía Ramírez",
                      skills=[{"name": "calendar management", "level": 5}, {"name": "email triage", "level": 5}],
                      rates={"hourly": {"amount": "11.00"}, "monthly_retainer": None,
                             "per_unit": []})

    second = shortlist_of(stack, key, posting["id"], better["id"])
    assert [c["provider_id"] for c in second["shortlist"]["candidates"]] == [better["id"], solid["id"]]
    # The update for this version: an earlier one (the day-shift provider's verification) may still be on its way.
    updates = recorder.wait_for(lambda e: e["subject"] == posting["id"] and e["type"].endswith("shortlist.updated.v1")
                                and e["data"]["shortlist"]["version"] == second["shortlist"]["version"])
    assert updates, "shortlist.updated.v1 was not published"
    assert contracts.errors(updates[-1]) == []
    assert updates[-1]["data"]["changes"]["added"] == [better["id"]]
    proposed = [e for e in recorder.events
                if e["subject"] == posting["id"] and e["type"].endswith("matches.proposed.v1")]
    assert len(proposed) == 1 and contracts.errors(proposed[0]) == []
