"""The first slice, driven over HTTP against the stack running as processes on a real broker and database.

A provider registers, a client posts a task, both are visible through the API, and every step travels as events
over RabbitMQ into each service's own database, in the documented envelope and valid against contracts-schema/.
"""

import re
import time
import uuid

import eventlet
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
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, stack.url + path, headers=headers, timeout=30, **kwargs)


def new_tenant(stack, **changes):
    response = call(stack, "POST", "/v1/tenants", json=samples.tenant(**changes))
    assert response.status_code == 201, response.text
    return response.json()




def test_a_provider_registers_a_client_publishes_a_posting_and_both_travel_as_valid_events(
    stack, recorder, mongo_uri
):
    correlation_id = f"e2e-{uuid.uuid4()}"
    client = new_tenant(stack)
    provider_response = call(stack, "POST", "/v1/providers", json=samples.individual_provider())
    assert provider_response.status_code == 201, provider_response.text
    provider = provider_response.json()["provider"]

    created = call(stack, "POST", "/v1/postings", key=client["api_key"], json=samples.posting(),
                   headers={"X-Correlation-ID": correlation_id})
    assert created.status_code == 201, created.text
    posting_id = created.json()["id"]
    assert created.json()["status"] == "draft"

    published = call(stack, "POST", f"/v1/postings/{posting_id}/publish", key=client["api_key"], json={},
                     headers={"X-Correlation-ID": correlation_id})
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "open"
    assert published.json()["assessment"]["classification"] in {"non_core", "borderline"}

    read_back = call(stack, "GET", f"/v1/postings/{posting_id}", key=client["api_key"])
    assert read_back.status_code == 200 and read_back.json()["status"] == "open"
    listed = call(stack, "GET", "/v1/postings", key=client["api_key"]).json()["items"]
    assert [p["id"] for p in listed] == [posting_id]
    seen_by_client = call(stack, "GET", f"/v1/providers/{provider['id']}", key=client["api_key"])
    assert seen_by_client.status_code == 200
    assert seen_by_client.json()["display_name"] == provider["display_name"]

    published_events = recorder.wait_for(lambda e: e["subject"] == posting_id
                                         and e["type"].endswith("posting.published.v1"))
    assert len(published_events) == 1
    event = published_events[0]
    assert event["tenantid"] == client["tenant"]["id"]
    assert event["correlationid"] == correlation_id
    assert event["data"]["posting"]["id"] == posting_id
    assert recorder.headers[event["id"]]["lane"] == "smb"
    assert recorder.wait_for(lambda e: e["subject"] == provider["id"] and e["type"].endswith("registered.v1"))
    assert recorder.wait_for(lambda e: e.get("tenantid") == client["tenant"]["id"]
                             and e["type"].endswith("tenant.registered.v1"))
    for recorded in recorder.drain():
        assert contracts.errors(recorded) == [], recorded["type"]

    # Matching built its own read model from those events, in its own database.
    matching = MongoClient(mongo_uri)[stack.database_name("matching")]
    assert wait_for(lambda: matching.providers.find_one({"_id": provider["id"]}) is not None, timeout=20)
    assert wait_for(lambda: (matching.postings.find_one({"_id": posting_id}) or {}).get("status") == "open", timeout=20)

    # Operators see the flow in each service's Prometheus metrics.
    assert 'tasklinkr_events_published_total{lane="smb",service="postings"}' in stack.metrics("postings")
    assert re.search(r'handler="on_posting_published",lane="(enterprise|smb)",outcome="applied",service="matching"',
                     stack.metrics("matching"))


def test_a_second_tenant_cannot_read_or_change_the_first_tenants_posting(stack):
    first = new_tenant(stack, name="First Co")
    second = new_tenant(stack, name="Second Co")
    posting_id = call(stack, "POST", "/v1/postings", key=first["api_key"], json=samples.posting()).json()["id"]

    for method, path, body in [
        ("GET", f"/v1/postings/{posting_id}", None),
        ("PATCH", f"/v1/postings/{posting_id}", {"title": "Hijacked"}),
        ("POST", f"/v1/postings/{posting_id}/publish", {}),
        ("POST", f"/v1/postings/{posting_id}/cancel", {"reason": "hostile"}),
    ]:
        response = call(stack, method, path, key=second["api_key"], json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert call(stack, "GET", "/v1/postings", key=second["api_key"]).json()["items"] == []
    untouched = call(stack, "GET", f"/v1/postings/{posting_id}", key=first["api_key"]).json()
    assert untouched["status"] == "draft" and untouched["title"] == samples.POSTING["title"]


def test_killing_and_restarting_postings_loses_no_accepted_posting_and_no_event(stack, recorder):
    client = new_tenant(stack, name="Crash Test Dummies Ltd")
    key = client["api_key"]
    accepted: dict[str, str] = {}  # idempotency key -> posting id, for every 201 the client received

    def create_and_publish(n: int) -> None:
        idempotency_key = f"crash-{n}-{uuid.uuid4()}"
        # A transaction the killed process left open keeps its documents locked until the database's transaction
        # lifetime ends (60 s); meanwhile the platform answers 503/504 and the client retries.
        deadline = time.monotonic() + 150
        posting_id = None
        answer = None
        while posting_id is None and time.monotonic() < deadline:
            try:
                response = call(stack, "POST", "/v1/postings", key=key, json=samples.posting(title=f"Task {n}"),
                                headers={"Idempotency-Key": idempotency_key})
                answer = f"{response.status_code} {response.text[:300]}"
            except requests.RequestException as exc:
                response, answer = None, repr(exc)
            if response is not None and response.status_code == 201:
                posting_id = response.json()["id"]
            else:
                time.sleep(0.5)
        assert posting_id, f"posting {n} never accepted; the last answer: {answer}"
        accepted[idempotency_key] = posting_id
        while time.monotonic() < deadline:
            try:
                response = call(stack, "POST", f"/v1/postings/{posting_id}/publish", key=key, json={})
            except requests.RequestException:
                response = None
            # Publishing is idempotent: a retry after a lost answer gets the same 200, never a conflict.
            if response is not None and response.status_code == 200:
                return
            time.sleep(0.5)
        raise AssertionError(f"posting {n} never published")

    def crash_postings_mid_burst():
        while len(accepted) < 10:
            eventlet.sleep(0.01)
        stack.kill("postings")  # SIGKILL: no clean shutdown, requests and transactions in flight
        eventlet.sleep(3)
        stack.restart("postings")

    chaos = eventlet.spawn(crash_postings_mid_burst)
    pool = eventlet.GreenPool(40)
    for n in range(40):
        pool.spawn_n(create_and_publish, n)
        eventlet.sleep(0.02)
    pool.waitall()
    chaos.wait()

    assert len(accepted) == 40
    listed = []
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = call(stack, "GET", "/v1/postings", key=key, params=params).json()
        listed += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert {p["id"] for p in listed} == set(accepted.values())  # nothing lost, nothing doubled
    assert all(p["status"] == "open" for p in listed)

    def all_published_events_arrived():
        subjects = {e["subject"] for e in recorder.of_type("posting.published.v1")}
        return set(accepted.values()) <= subjects

    assert wait_for(all_published_events_arrived, timeout=30)
    published = [e for e in recorder.of_type("posting.published.v1") if e["subject"] in set(accepted.values())]
    assert {e["subject"] for e in published} == set(accepted.values())
    # At-least-once: a redelivered event keeps its id; each posting was published by exactly one event.
    assert len({e["id"] for e in published}) == len(accepted)
