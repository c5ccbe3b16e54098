"""Contracting's events, as its examples in contracts-schema, through the broker into matching: the provider's load
and track record change, the explanation shows them, and the shortlist follows."""

import copy
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.matching.service import MatchingService
from shared.runtime import contracts
from tests.integration.matching.events import STRONG_SKILLS, deliver, emitted, publish_posting, register
from tests.support.waiting import wait_for
from tests.unit.matching import builders as b
from tests.unit.matching.builders import POSTING

pytestmark = pytest.mark.integration

PROVIDER = "prv_9b2f3c1d4e5f40718293a4b5c6d7e8f9"  # the provider of contracting's examples
HANDLERS = {"contract.activated.v1": "on_contract_activated", "contract.amended.v1": "on_contract_amended",
            "contract.completed.v1": "on_contract_completed", "contract.terminated.v1": "on_contract_terminated",
            "sla.met.v1": "on_sla_met", "sla.breached.v1": "on_sla_breached"}


def example(routing_key: str) -> dict:
    schema = json.loads(contracts.event_schema_path("contracting", routing_key).read_text())
    return copy.deepcopy(schema["examples"][0]["data"])


def from_contracting(container, amqp_uri, routing_key, data):
    contract = data.get("contract") or {"id": data["contract_id"], "tenant_id": data["tenant_id"]}
    deliver(container, amqp_uri, HANDLERS[routing_key], "contracting", routing_key, data, contract["id"],
            tenant=contract["tenant_id"])


def explained(rpc, posting=POSTING, provider=PROVIDER):
    return rpc.explain(b.TENANT, posting["id"], provider)


def last_change(database, posting=POSTING):
    updates = emitted(database, "shortlist.updated.v1", posting["id"])
    return updates[-1]["data"] if updates else None


def test_contract_and_sla_events_change_the_load_the_track_record_and_the_shortlist(matching, rpc, database,
                                                                                  amqp_uri):
    register(matching, amqp_uri, {**b.profile(skills=STRONG_SKILLS), "id": PROVIDER})
    for n in (601, 602, 603):
        register(matching, amqp_uri, b.profile(n=n))
    publish_posting(matching, amqp_uri)
    (row,) = explained(rpc)["rows"]
    assert (row["status"], row["breakdown"]["track_record"], row["breakdown"]["load"]) == \
        ("shortlisted", "0.5000", "1.0000")

    from_contracting(matching, amqp_uri, "contract.activated.v1", example("contract.activated.v1"))  # 20 h a week
    (row,) = explained(rpc)["rows"]
    assert row["breakdown"]["load"] == "0.5000"
    assert "load: 20 of 40 h a week committed" in row["reasons"]

    from_contracting(matching, amqp_uri, "sla.met.v1", example("sla.met.v1"))
    assert explained(rpc)["rows"][0]["breakdown"]["track_record"] == "1.0000"
    breached = example("sla.breached.v1")
    breached["window"] = {"start": "2027-01-11T00:00:00.000Z", "end": "2027-01-18T00:00:00.000Z"}
    breached["evaluated_at"] = "2027-01-18T00:05:00.000Z"
    from_contracting(matching, amqp_uri, "sla.breached.v1", breached)
    (row,) = explained(rpc)["rows"]
    assert row["breakdown"]["track_record"] == "0.5000"
    assert "track record: 0 completed contracts, 1 active, SLA met 50% in 2 windows" in row["reasons"]

    from_contracting(matching, amqp_uri, "contract.amended.v1", example("contract.amended.v1"))  # 30 h a week
    why = explained(rpc)
    assert why["status"] == "excluded"
    assert why["rows"][0]["excluded_by"] == [{"constraint": "insufficient_capacity",
                                              "reason": "has 10 free hours a week, the work needs 20"}]
    assert last_change(database)["changes"]["removed"] == [PROVIDER]

    from_contracting(matching, amqp_uri, "contract.completed.v1", example("contract.completed.v1"))  # rated 5
    why = explained(rpc)
    (row,) = why["rows"]
    assert why["status"] == "shortlisted"
    assert (row["breakdown"]["track_record"], row["breakdown"]["load"]) == ("0.7500", "1.0000")
    assert "track record: 1 completed contracts, SLA met 50% in 2 windows, rated 5.0/5" in row["reasons"]
    assert last_change(database)["changes"]["added"] == [PROVIDER]
    record = rpc.get_provider(PROVIDER)["track_record"]
    assert (record["active_contracts"], record["completed_contracts"], record["rating"]) == (0, 1, 5.0)

    # A late activation (an older version, after the completion) changes nothing, and nothing is emitted.
    updates = len(emitted(database, "shortlist.updated.v1"))
    from_contracting(matching, amqp_uri, "contract.activated.v1", example("contract.activated.v1"))
    assert rpc.get_provider(PROVIDER)["track_record"] == record
    assert len(emitted(database, "shortlist.updated.v1")) == updates


def centre(centre_id, name, country, time_zone):
    return {"id": centre_id, "name": name, "country": country, "time_zone": time_zone, "seats": 1,
            "shifts": b.SHIFTS_24X7}


def test_a_firm_centre_whose_seats_are_all_committed_is_excluded_for_capacity_and_its_other_centre_stays(
        matching, rpc, database, amqp_uri):
    firm = {**b.profile(b.CEBU_BPO), "id": PROVIDER,
            "delivery_centres": [centre("dc_cebu", "Cebu IT Park", "PH", "Asia/Manila"),
                                 centre("dc_bogota", "Bogotá Norte", "CO", "America/Bogota")]}
    register(matching, amqp_uri, firm)
    posting = b.posting(b.HELPDESK_24X7)  # 168 h a week, 24/7
    publish_posting(matching, amqp_uri, posting)
    # the firm takes one place: one centre ranks it, the other is listed under it
    assert sorted(r["status"] for r in explained(rpc, posting)["rows"]) == ["listed_under_firm", "shortlisted"]

    activated = example("contract.activated.v1")
    activated["contract"]["centre_id"] = "dc_cebu"
    activated["contract"]["terms"].update(hours_per_week=None, seats=1)  # the centre's one seat, every shift
    from_contracting(matching, amqp_uri, "contract.activated.v1", activated)

    cebu, bogota = explained(rpc, posting)["rows"]
    assert cebu["excluded_by"] == [{"constraint": "insufficient_capacity",
                                    "reason": "has 0 free hours a week, the work needs 168"}]
    assert (bogota["status"], bogota["breakdown"]["load"]) == ("shortlisted", "1.0000")
    candidates = rpc.get_shortlist(b.TENANT, posting["id"])["shortlist"]["candidates"]
    assert [(c["provider_id"], c["centre_id"]) for c in candidates] == [(PROVIDER, "dc_bogota")]
    assert "other_centres" not in candidates[0]  # Cebu is no longer eligible


def test_a_contract_that_arrives_before_the_provider_counts_and_survives_a_restart(container_factory, config,
                                                                                   database, amqp_uri, quiet_queues):
    first = container_factory(MatchingService, config)
    first.start()
    activated = example("contract.activated.v1")
    activated["contract"]["centre_id"] = "dc_cebu"
    activated["contract"]["terms"].update(hours_per_week=None, seats=1)
    from_contracting(first, amqp_uri, "contract.activated.v1", activated)  # matching does not know the firm yet
    register(first, amqp_uri, {**b.profile(b.CEBU_BPO), "id": PROVIDER,
                               "delivery_centres": [centre("dc_cebu", "Cebu IT Park", "PH", "Asia/Manila"),
                                                    centre("dc_bogota", "Bogotá Norte", "CO", "America/Bogota")]})
    first.stop()

    second = container_factory(MatchingService, config)  # rebuilds its index from the database
    second.start()
    posting = b.posting(b.HELPDESK_24X7)
    publish_posting(second, amqp_uri, posting)
    (proposed,) = emitted(database, "matches.proposed.v1", posting["id"])
    assert [(c["provider_id"], c["centre_id"]) for c in proposed["data"]["shortlist"]["candidates"]] == \
        [(PROVIDER, "dc_bogota")]


def test_a_terminated_contract_holds_the_providers_hours_through_its_notice_and_frees_them_on_its_effective_date(
        container_factory, config, database, amqp_uri, quiet_queues):
    matching = container_factory(MatchingService, {**config, "MATCHING_NOTICE_RELEASE_INTERVAL_SECONDS": 0.2})
    matching.start()
    register(matching, amqp_uri, {**b.profile(skills=STRONG_SKILLS), "id": PROVIDER})
    for n in (601, 602, 603):
        register(matching, amqp_uri, b.profile(n=n))
    publish_posting(matching, amqp_uri)  # 20 h a week

    activated = example("contract.activated.v1")
    activated["contract"]["terms"]["hours_per_week"] = 30  # of the provider's 40
    from_contracting(matching, amqp_uri, "contract.activated.v1", activated)
    with ServiceRpcProxy("matching", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as rpc:
        assert explained(rpc)["status"] == "excluded"

        terminated = example("contract.terminated.v1")
        terminated["contract"]["terms"]["hours_per_week"] = 30
        today = datetime.now(UTC).date()
        effective = today + timedelta(days=14)
        terminated.update(notice_days=14, effective_date=effective.isoformat())
        from_contracting(matching, amqp_uri, "contract.terminated.v1", terminated)
        record = rpc.get_provider(PROVIDER)["track_record"]
        assert (record["active_contracts"], record["contracts_on_notice"], record["committed_hours_per_week"]) == \
            (0, 1, 30)
        why = explained(rpc)
        assert why["status"] == "excluded"  # still working its notice: 10 free hours
        assert why["rows"][0]["excluded_by"][0]["reason"] == "has 10 free hours a week, the work needs 20"
        released_before = database.contracts.find_one({"_id": terminated["contract"]["id"]}).get("released")
        assert not released_before  # the timer runs every 0.2 s and leaves a notice that has not ended alone

        # Fourteen days pass: the fact's effective date is today (only the date moves; nothing else is touched).
        database.contracts.update_one({"_id": terminated["contract"]["id"]},
                                      {"$set": {"releases_on": today.isoformat()}})
        # shortlisted in the stored shortlist (not only in the ranking its release is still committing)
        assert wait_for(lambda: (why := explained(rpc))["status"] == "shortlisted" and not why["shortlist_pending"],
                        timeout=20)
        record = rpc.get_provider(PROVIDER)["track_record"]
        assert (record["contracts_on_notice"], record["committed_hours_per_week"]) == (0, 0)
        assert last_change(database)["changes"]["added"] == [PROVIDER]
        updates = len(emitted(database, "shortlist.updated.v1"))
        time.sleep(1)  # more ticks of the timer: released once, nothing more emitted
        assert len(emitted(database, "shortlist.updated.v1")) == updates
