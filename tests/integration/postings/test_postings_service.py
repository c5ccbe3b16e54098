"""The postings service over real RPC, a real broker and a real database.

Every event is checked where the service puts it, the outbox, written in the same transaction as the change:
exactly the expected events, each valid against its contract.
"""

import json
import time

import eventlet
import pytest
from kombu import Connection
from nameko.standalone.rpc import ServiceRpcProxy
from pymongo.errors import DuplicateKeyError

from services.postings.service import PostingsService
from shared.runtime import contracts, topology
from shared.runtime.messaging import queue_name
from shared.runtime.outbox import outbox_events, pending_count
from shared.vocabulary.errors import Conflict, NotFound, ValidationFailed

pytestmark = pytest.mark.integration

ACME = {
    "name": "Acme Dental Group",
    "country": "US",
    "time_zone": "America/Chicago",
    "segment": "smb",
    "core_competencies": ["dental care", "digital_marketing"],
}
GLOBEX = {"name": "Globex Logistics", "country": "DE", "time_zone": "Europe/Berlin", "segment": "enterprise"}

INBOX_HELP = {
    "title": "Inbox and calendar management",
    "description": "Keep the practice managers' inboxes and calendars in order.",
    "category": "administrative_support",
    "model": "virtual_assistant",
    "required_skills": [{"name": "calendar management", "min_level": 3}],
    "languages": ["en"],
    "engagement": {"type": "hourly", "unit": None},
    "budget": {"amount": "15.00", "currency": "USD"},
    "hours_per_week": 20,
    "start_date": "2027-01-04",
    "duration_weeks": 26,
    "sla_requirements": [
        {"metric": "first_response_minutes", "target": "60", "direction": "at_most", "window": "weekly"}
    ],
    "confidentiality": {"confidential": True, "nda_required": True},
}
DENTAL_BILLING = {**INBOX_HELP, "title": "Dental care billing follow-up", "category": "bookkeeping"}


@pytest.fixture
def database(service_config, mongo_client):
    return mongo_client[service_config["MONGO_DATABASE"]]


CORRELATION_ID = "3c8e7f0a-1d2b-4c5e-9f6a-7b8c9d0e1f2a"


@pytest.fixture
def postings(container_factory, service_config, amqp_uri):
    container = container_factory(PostingsService, service_config)
    container.start()
    # Callers send the request's correlation id (the gateway always does); the service's events carry it on.
    with ServiceRpcProxy(
        "postings",
        {"AMQP_URI": amqp_uri, "serializer": "json"},
        timeout=20,
        context_data={"correlation_id": CORRELATION_ID},
    ) as proxy:
        yield proxy


def events_in_outbox(database, routing_key=None):
    """The envelopes in the outbox, oldest first; each must satisfy its contract."""
    query = {} if routing_key is None else {"routing_key": routing_key}
    envelopes = [doc["envelope"] for doc in outbox_events(database, query)]
    for envelope in envelopes:
        assert contracts.errors(envelope) == [], envelope["type"]
        assert envelope["correlationid"] == CORRELATION_ID
    return envelopes


def posting_events(database):
    return [
        (e["type"].split(".", 2)[2], e["subject"])
        for e in events_in_outbox(database)
        if not e["type"].endswith("tenant.registered.v1")
    ]


def new_tenant(postings, fields=ACME):
    return postings.create_tenant(fields)["tenant"]


def test_a_tenant_gets_a_client_key_that_authenticates_it_as_owner_and_only_the_keys_digest_is_stored(
    postings, database
):
    created = postings.create_tenant(ACME)
    tenant, api_key = created["tenant"], created["api_key"]

    assert api_key.startswith("tlk_c_")
    assert tenant["id"].startswith("ten_") and tenant["core_competencies"] == [
        "dental care",
        "digital_marketing",
    ]
    assert postings.get_tenant(tenant["id"]) == tenant
    assert postings.authenticate(api_key) == {"tenant_id": tenant["id"], "role": "owner",
                                              "key_id": postings.list_keys(tenant["id"])["items"][0]["id"],
                                              "lane": tenant["segment"]}
    assert postings.authenticate(api_key[:-1] + ("A" if api_key[-1] != "A" else "B")) is None
    assert postings.authenticate("tlk_p_" + api_key[6:]) is None
    assert api_key not in json.dumps(database.tenants.find_one({"_id": tenant["id"]}), default=str)

    [registered] = events_in_outbox(database)
    assert registered["type"] == "tasklinkr.postings.tenant.registered.v1"
    assert (registered["subject"], registered["tenantid"], registered["lane"]) == (
        tenant["id"],
        tenant["id"],
        "smb",
    )
    assert registered["data"] == {"tenant": tenant}


def test_an_invalid_tenant_is_refused_with_field_details_and_stores_nothing(postings, database):
    with pytest.raises(ValidationFailed) as refused:
        postings.create_tenant({**ACME, "country": "XX", "plan": "gold"})
    assert refused.value.details == {
        "country": ["'XX' is not an ISO 3166-1 alpha-2 country code."],
        "plan": ["Unknown field."],
    }
    assert database.tenants.count_documents({}) == 0


def test_an_unknown_tenant_is_not_found(postings):
    with pytest.raises(NotFound):
        postings.get_tenant("ten_" + "0" * 32)
    with pytest.raises(NotFound):
        postings.create_posting("ten_" + "0" * 32, INBOX_HELP)


def test_a_new_draft_copies_the_clients_location_and_tells_nobody(postings, database):
    tenant = new_tenant(postings)
    draft = postings.create_posting(
        tenant["id"], {"title": "Scheduling help", "category": "scheduling", "model": "freelance"}
    )

    assert draft["status"] == "draft" and draft["version"] == 1
    assert draft["client"] == {"country": "US", "time_zone": "America/Chicago",
                               "business_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00",
                                                  "end": "17:00"}}
    assert draft["budget"] is None and draft["engagement"] is None
    assert postings.get_posting(tenant["id"], draft["id"]) == draft
    assert posting_events(database) == []


def test_the_same_idempotency_key_answers_the_same_posting_and_stores_one_document(postings, database):
    acme, globex = new_tenant(postings), new_tenant(postings, GLOBEX)

    first = postings.create_posting(acme["id"], INBOX_HELP, idempotency_key="req-1")
    again = postings.create_posting(acme["id"], INBOX_HELP, idempotency_key="req-1")
    other_tenant = postings.create_posting(globex["id"], INBOX_HELP, idempotency_key="req-1")

    assert again == first
    assert other_tenant["id"] != first["id"]
    assert database.postings.count_documents({"tenant_id": acme["id"]}) == 1
    with pytest.raises(Conflict) as refused:
        postings.create_posting(
            acme["id"], {**INBOX_HELP, "title": "Something else"}, idempotency_key="req-1"
        )
    assert list(refused.value.details) == ["idempotency_key"]
    assert database.postings.count_documents({"tenant_id": acme["id"]}) == 1


def test_postings_without_a_key_are_all_created(postings, database):
    tenant = new_tenant(postings)
    postings.create_posting(tenant["id"], INBOX_HELP)
    postings.create_posting(tenant["id"], INBOX_HELP)
    assert database.postings.count_documents({"tenant_id": tenant["id"]}) == 2


def test_editing_a_draft_bumps_its_version_privately_and_stores_money_exactly(postings, database):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)

    edited = postings.update_posting(
        tenant["id"], draft["id"], {"budget": {"amount": "17.50", "currency": "USD"}, "hours_per_week": 25}
    )
    unchanged = postings.update_posting(tenant["id"], draft["id"], {"hours_per_week": 25})

    assert (edited["budget"], edited["hours_per_week"], edited["version"]) == (
        {"amount": "17.50", "currency": "USD"},
        25,
        2,
    )
    assert unchanged == edited
    stored = database.postings.find_one({"_id": draft["id"]})
    assert (
        str(stored["budget"]["amount"]) == "17.50"
        and type(stored["budget"]["amount"]).__name__ == "Decimal128"
    )
    assert posting_events(database) == []


def test_an_invalid_edit_is_refused_with_field_details_and_changes_nothing(postings):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)
    with pytest.raises(ValidationFailed) as refused:
        postings.update_posting(
            tenant["id"], draft["id"], {"budget": {"amount": 17.5, "currency": "USD"}, "status": "open"}
        )
    assert refused.value.details == {
        "budget": {"amount": ["Send the amount as a decimal string, not a float."]},
        "status": ["Unknown field."],
    }
    assert postings.get_posting(tenant["id"], draft["id"]) == draft


def test_an_incomplete_draft_cannot_be_published_and_each_missing_field_is_named(postings, database):
    tenant = new_tenant(postings)
    draft = postings.create_posting(
        tenant["id"], {"title": "Helpdesk", "category": "helpdesk", "model": "ito"}
    )
    with pytest.raises(Conflict) as refused:  # the stored draft's state, not the request, stops it: 409
        postings.publish_posting(tenant["id"], draft["id"])
    assert set(refused.value.details) == {"engagement", "budget", "start_date"}
    assert postings.get_posting(tenant["id"], draft["id"])["status"] == "draft"
    assert posting_events(database) == []


def test_publishing_non_core_work_opens_it_and_emits_posting_published(postings, database):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)

    opened = postings.publish_posting(tenant["id"], draft["id"])

    assert opened["status"] == "open" and opened["version"] == 2 and opened["published_at"]
    assert opened["assessment"]["classification"] == "non_core"
    [published] = events_in_outbox(database, "posting.published.v1")
    assert (published["subject"], published["tenantid"], published["lane"]) == (
        opened["id"],
        tenant["id"],
        "smb",
    )
    assert published["data"] == {"posting": opened}


def test_a_24_7_desk_of_three_seats_never_offshore_is_published_with_its_seats_and_accepted_shoring(
        postings, database):
    tenant = new_tenant(postings)
    desk = {**INBOX_HELP, "title": "Round-the-clock patient line", "category": "customer_support", "model": "bpo",
            "hours_per_week": 168, "seats": 3, "coverage": "24x7",
            "shoring": {"preference": "nearshore", "accepted": ["onshore", "nearshore"]},
            "business_hours": {"days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": "08:00", "end": "18:00"}}

    opened = postings.publish_posting(tenant["id"], postings.create_posting(tenant["id"], desk)["id"])

    assert (opened["hours_per_week"], opened["seats"]) == (168, 3)  # 504 seat-hours a week
    assert opened["shoring"] == {"preference": "nearshore", "required": True, "accepted": ["onshore", "nearshore"]}
    assert opened["business_hours"]["days"][-1] == "sat"
    [published] = events_in_outbox(database, "posting.published.v1")  # checked against its contract
    assert published["data"]["posting"]["seats"] == 3


def test_a_paraphrase_of_a_core_competency_needs_the_confirmation_to_be_published(postings, database):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], {**INBOX_HELP, "title": "Orthodontic treatment plans"})
    with pytest.raises(Conflict) as refused:
        postings.publish_posting(tenant["id"], draft["id"])
    assert "means your core competency “dental care” (“orthodontic”, “treatment”)" in refused.value.message
    assert posting_events(database) == []


def test_core_work_is_refused_without_confirmation_and_nothing_changes_then_published_with_it(
    postings, database
):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], DENTAL_BILLING)

    with pytest.raises(Conflict) as refused:
        postings.publish_posting(tenant["id"], draft["id"])
    reason = "Core work: the title mentions your core competency “dental care”."
    assert refused.value.details == {"confirm_core": [reason]}
    assert postings.get_posting(tenant["id"], draft["id"]) == draft
    assert posting_events(database) == []

    opened = postings.publish_posting(tenant["id"], draft["id"], confirm_core=True)
    assert opened["assessment"] == {"classification": "core", "reason": reason, "confirmed_core": True}
    assert posting_events(database) == [("posting.published.v1", draft["id"])]


def test_editing_an_open_posting_emits_posting_updated_with_what_changed(postings, database):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)
    postings.publish_posting(tenant["id"], draft["id"])

    edited = postings.update_posting(
        tenant["id"], draft["id"], {"hours_per_week": 30, "languages": ["en", "es"]}
    )
    postings.update_posting(tenant["id"], draft["id"], {"hours_per_week": 30})

    assert edited["version"] == 3
    assert posting_events(database) == [
        ("posting.published.v1", draft["id"]),
        ("posting.updated.v1", draft["id"]),
    ]
    [updated] = events_in_outbox(database, "posting.updated.v1")
    assert updated["data"] == {"posting": edited, "changed": ["languages", "hours_per_week"]}


def test_an_open_posting_cannot_be_edited_into_an_unpublishable_one(postings, database):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)
    opened = postings.publish_posting(tenant["id"], draft["id"])
    with pytest.raises(ValidationFailed):
        postings.update_posting(tenant["id"], draft["id"], {"start_date": None})
    assert postings.get_posting(tenant["id"], draft["id"]) == opened
    assert posting_events(database) == [("posting.published.v1", draft["id"])]


def test_cancelling_an_open_posting_emits_posting_cancelled_and_a_draft_is_cancelled_quietly(
    postings, database
):
    tenant = new_tenant(postings)
    open_one = postings.create_posting(tenant["id"], INBOX_HELP)
    postings.publish_posting(tenant["id"], open_one["id"])
    quiet_draft = postings.create_posting(tenant["id"], INBOX_HELP)

    cancelled = postings.cancel_posting(tenant["id"], open_one["id"], "Hired in-house")
    dropped = postings.cancel_posting(tenant["id"], quiet_draft["id"], "Duplicate")

    assert (cancelled["status"], cancelled["cancellation_reason"], cancelled["version"]) == (
        "cancelled",
        "Hired in-house",
        3,
    )
    assert dropped["status"] == "cancelled"
    assert posting_events(database) == [
        ("posting.published.v1", open_one["id"]),
        ("posting.cancelled.v1", open_one["id"]),
    ]
    [event] = events_in_outbox(database, "posting.cancelled.v1")
    assert event["data"] == {
        "posting_id": open_one["id"],
        "reason": "Hired in-house",
        "cancelled_at": cancelled["cancelled_at"],
    }


def test_publishing_a_cancelled_posting_is_a_conflict_and_changes_nothing(postings, database):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)
    cancelled = postings.cancel_posting(tenant["id"], draft["id"], "Not needed")

    with pytest.raises(Conflict) as refused:
        postings.publish_posting(tenant["id"], draft["id"])
    assert str(refused.value) == "The posting is cancelled; a posting can be published only from draft."
    with pytest.raises(Conflict):
        postings.update_posting(tenant["id"], draft["id"], {"title": "Revived"})

    assert postings.get_posting(tenant["id"], draft["id"]) == cancelled
    assert posting_events(database) == []


def test_publishing_or_cancelling_again_answers_the_same_posting_and_emits_nothing_more(postings, database):
    # A request redelivered after a crash, or a client's retry, must not turn into an error or a second event.
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)
    published = postings.publish_posting(tenant["id"], draft["id"])
    assert postings.publish_posting(tenant["id"], draft["id"]) == published
    cancelled = postings.cancel_posting(tenant["id"], draft["id"], "Filled elsewhere")
    assert postings.cancel_posting(tenant["id"], draft["id"], "Filled elsewhere") == cancelled
    assert posting_events(database) == [("posting.published.v1", draft["id"]), ("posting.cancelled.v1", draft["id"])]


def test_another_tenant_cannot_see_or_touch_a_posting(postings, database):
    acme, globex = new_tenant(postings), new_tenant(postings, GLOBEX)
    draft = postings.create_posting(acme["id"], INBOX_HELP)

    for attempt in (
        lambda: postings.get_posting(globex["id"], draft["id"]),
        lambda: postings.update_posting(globex["id"], draft["id"], {"title": "Mine now"}),
        lambda: postings.publish_posting(globex["id"], draft["id"]),
        lambda: postings.cancel_posting(globex["id"], draft["id"], "Because"),
        lambda: postings.get_posting(acme["id"], "pst_" + "0" * 32),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert postings.list_postings(globex["id"]) == {"items": [], "next_cursor": None}
    assert postings.get_posting(acme["id"], draft["id"]) == draft
    assert posting_events(database) == []


def test_lists_page_through_a_tenants_postings_and_filter_by_status(postings):
    acme, globex = new_tenant(postings), new_tenant(postings, GLOBEX)
    created = [postings.create_posting(acme["id"], {**INBOX_HELP, "title": f"Task {n}"}) for n in range(5)]
    postings.create_posting(globex["id"], INBOX_HELP)
    for posting in created[:2]:
        postings.publish_posting(acme["id"], posting["id"])

    seen, cursor, pages = [], None, 0
    while True:
        page = postings.list_postings(acme["id"], limit=2, cursor=cursor)
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(p["id"] for p in created) and len(seen) == len(set(seen))

    open_ones = postings.list_postings(acme["id"], status="open", limit=1)
    assert len(open_ones["items"]) == 1 and open_ones["next_cursor"] is not None
    rest = postings.list_postings(acme["id"], status="open", limit=1, cursor=open_ones["next_cursor"])
    assert rest["next_cursor"] is None
    assert {open_ones["items"][0]["id"], rest["items"][0]["id"]} == {p["id"] for p in created[:2]}
    assert all(
        item["status"] == "draft" for item in postings.list_postings(acme["id"], status="draft")["items"]
    )
    assert len(postings.list_postings(acme["id"], status="draft")["items"]) == 3

    with pytest.raises(ValidationFailed) as refused:
        postings.list_postings(acme["id"], status="closed", limit=101, cursor="forged")
    assert set(refused.value.details) == {"status", "limit", "cursor"}


def test_a_published_posting_reaches_the_consumers_queue(postings, database, amqp_uri):
    catalog = topology.load_catalog()
    topology.apply(amqp_uri, {"events": [e for e in catalog["events"] if e["producer"] == "postings"]})
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)
    opened = postings.publish_posting(tenant["id"], draft["id"])

    deadline = time.monotonic() + 10
    while pending_count(database) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pending_count(database) == 0

    queue = queue_name("postings", "posting.published.v1", "matching", "on_posting_published", tenant["segment"])
    delivered = []
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            delivered.append(json.loads(message.body))
    assert [e["subject"] for e in delivered if e["subject"] == opened["id"]] == [opened["id"]]
    [envelope] = [e for e in delivered if e["subject"] == opened["id"]]
    assert envelope["data"] == {"posting": opened}
    assert contracts.errors(envelope) == []


def test_health_reports_the_database_and_the_outbox_backlog(postings):
    assert postings.health() == {"database": "ok", "outbox_backlog": 0}


def test_the_database_itself_refuses_a_second_posting_under_the_same_tenant_and_key(postings, database):
    tenant = new_tenant(postings)
    first = postings.create_posting(tenant["id"], INBOX_HELP, idempotency_key="req-9")
    copy = {**database.postings.find_one({"_id": first["id"]}), "_id": "pst_" + "f" * 32}
    with pytest.raises(DuplicateKeyError):
        database.postings.insert_one(copy)
    database.postings.insert_one({**copy, "tenant_id": "ten_" + "e" * 32})


def test_concurrent_requests_with_one_key_create_one_posting(postings, database, amqp_uri):
    tenant = new_tenant(postings)

    def create(_):
        with ServiceRpcProxy(
            "postings",
            {"AMQP_URI": amqp_uri, "serializer": "json"},
            timeout=20,
            context_data={"correlation_id": CORRELATION_ID},
        ) as proxy:
            return proxy.create_posting(tenant["id"], INBOX_HELP, idempotency_key="burst")

    answers = list(eventlet.GreenPool(5).imap(create, range(5)))

    assert len({answer["id"] for answer in answers}) == 1
    assert database.postings.count_documents({"tenant_id": tenant["id"]}) == 1


def test_concurrent_edits_of_one_posting_all_apply_and_each_bumps_the_version(postings, database, amqp_uri):
    tenant = new_tenant(postings)
    draft = postings.create_posting(tenant["id"], INBOX_HELP)
    edits = [
        {"hours_per_week": 30},
        {"duration_weeks": 52},
        {"min_overlap_hours": 4},
        {"coverage": "extended"},
        {"description": "Also the shared support inbox."},
    ]

    def edit(changes):
        with ServiceRpcProxy(
            "postings",
            {"AMQP_URI": amqp_uri, "serializer": "json"},
            timeout=20,
            context_data={"correlation_id": CORRELATION_ID},
        ) as proxy:
            return proxy.update_posting(tenant["id"], draft["id"], changes)

    list(eventlet.GreenPool(5).imap(edit, edits))

    final = postings.get_posting(tenant["id"], draft["id"])
    assert final["version"] == 1 + len(edits)
    for changes in edits:
        assert {key: final[key] for key in changes} == changes


def test_a_caller_without_a_correlation_id_gets_one_started_for_it(postings, database, amqp_uri):
    with ServiceRpcProxy("postings", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as bare_proxy:
        tenant = bare_proxy.create_tenant(GLOBEX)["tenant"]
    envelope = outbox_events(database, {"envelope.subject": tenant["id"]})[0]["envelope"]
    assert envelope["correlationid"] not in ("", CORRELATION_ID)
    assert contracts.errors(envelope) == []
