"""A provider's track record and load, recomputed from contracting's facts: the same events in any order, or twice,
give the same record; a firm's load sits with the delivery centre that carries it."""

import itertools

from services.matching import domain
from tests.unit.matching import builders as b

PROVIDER = b.provider_id(500)
CEBU = {"id": "dc_cebu", "name": "Cebu IT Park", "country": "PH", "time_zone": "Asia/Manila", "seats": 2,
        "shifts": [{"name": "day", "days": b.WEEKDAYS, "start": "08:00", "end": "16:00"}]}  # 2 seats × 40 h
BOGOTA = {"id": "dc_bogota", "name": "Bogotá Norte", "country": "CO", "time_zone": "America/Bogota", "seats": 6,
          "shifts": [{"name": "day", "days": b.WEEKDAYS, "start": "08:00", "end": "16:00"}]}  # 6 seats × 40 h


def contract(n=1, version=1, hours=20, centre=None, seats=None, provider=PROVIDER):
    return {"id": f"ctr_{n:032x}", "tenant_id": b.TENANT, "provider_id": provider, "centre_id": centre,
            "posting_id": "pst_" + "1" * 32, "status": "active", "version": version,
            "terms": {"engagement_type": "hourly", "hours_per_week": hours, "seats": seats}}


def activated(**kw):
    return domain.contract_fact(contract(**kw), "active")


def completed(score, **kw):
    return domain.contract_fact(contract(**kw), "completed", rating=score, ended_at="2027-07-04T17:00:00.000Z")


TODAY = "2027-03-01"


def terminated(releases_on=TODAY, **kw):
    return domain.contract_fact(contract(**kw), "terminated", ended_at="2027-03-01T12:00:00.000Z",
                                releases_on=releases_on)


def sla_window(start, met, evaluated_at="2027-01-11T00:05:00.000Z", n=1, sla="sla_first_response"):
    return domain.sla_result({
        "contract_id": f"ctr_{n:032x}", "tenant_id": b.TENANT, "provider_id": PROVIDER, "centre_id": None,
        "sla": {"id": sla, "metric": "first_response_minutes"},
        "window": {"start": f"{start}T00:00:00.000Z", "end": f"{start}T23:59:59.000Z"},
        "result": {}, "met": met, "credit": None, "evaluated_at": evaluated_at,
    })


def record_after(contract_facts=(), sla_results=(), today=TODAY) -> dict:
    """Apply facts one by one the way the repository does (merge into what is stored), then recompute."""
    contracts, windows = {}, {}
    for fact in contract_facts:
        merged = domain.merge_contract(contracts.get(fact["id"]), fact)
        if merged is not None:
            contracts[fact["id"]] = merged
    for result in sla_results:
        merged = domain.merge_sla_result(windows.get(result["id"]), result)
        if merged is not None:
            windows[result["id"]] = merged
    return domain.track_record_document(contracts.values(), windows.values(), today)


def test_active_and_completed_contracts_give_the_load_the_count_and_the_mean_rating():
    record = record_after([activated(n=1, hours=20), activated(n=2, hours=10), activated(n=3),
                           completed(5, n=3), activated(n=4), completed(4, n=4), activated(n=5), terminated(n=5)])
    assert record["active_contracts"] == 2 and record["committed_hours_per_week"] == 30
    assert (record["completed_contracts"], record["terminated_contracts"]) == (2, 1)
    assert record["rating"] == 4.5 and record["sla_compliance"] is None


def test_the_same_events_in_any_order_or_twice_give_the_same_track_record():
    events = [activated(n=1, hours=20), activated(n=1, version=2, hours=30), completed(4, n=1, version=2, hours=30),
              activated(n=2, hours=10), activated(n=2, version=2, hours=15), activated(n=3, hours=5),
              terminated(n=3)]
    in_order = record_after(events)
    assert (in_order["active_contracts"], in_order["committed_hours_per_week"]) == (1, 15)
    for shuffled in itertools.permutations(events):
        assert record_after(shuffled) == in_order
    assert record_after(events + events[::-1]) == in_order


def test_a_terminated_contract_keeps_its_hours_and_seats_committed_until_its_effective_date():
    facts = [activated(n=1, hours=20), activated(n=2, hours=10), terminated(n=2, hours=10, releases_on="2027-03-15"),
             activated(n=3, centre="dc_cebu", hours=None, seats=1),
             terminated(n=3, centre="dc_cebu", hours=None, seats=1, releases_on="2027-03-15")]
    during = record_after(facts, today="2027-03-14")  # the last day of the notice period
    assert (during["active_contracts"], during["contracts_on_notice"], during["terminated_contracts"]) == (1, 2, 2)
    assert (during["committed_hours_per_week"], during["committed_seats"]) == (30, 1)
    assert during["committed_by_centre"] == [{"centre_id": "dc_cebu", "hours_per_week": 0.0, "seats": 1}]

    after = record_after(facts, today="2027-03-15")  # effective: the provider is free of it
    assert (after["active_contracts"], after["contracts_on_notice"]) == (1, 0)
    assert (after["committed_hours_per_week"], after["committed_seats"], after["committed_by_centre"]) == (20, 0, [])
    for shuffled in itertools.permutations(facts):
        assert record_after(shuffled, today="2027-03-14") == during


def test_an_amendment_that_overtakes_the_activation_keeps_its_hours():
    assert record_after([activated(version=2, hours=35), activated(version=1, hours=20)])[
        "committed_hours_per_week"] == 35


def test_a_late_amendment_does_not_reopen_a_completed_contract():
    record = record_after([completed(5, version=1, hours=20), activated(version=2, hours=30)])
    assert (record["active_contracts"], record["completed_contracts"], record["committed_hours_per_week"]) == (0, 1, 0)


def test_sla_compliance_counts_each_window_once_and_a_later_correction_replaces_the_result():
    windows = [sla_window("2027-01-04", True), sla_window("2027-01-11", False), sla_window("2027-01-18", True),
               sla_window("2027-01-04", True),  # redelivered
               sla_window("2027-01-25", True), sla_window("2027-01-25", True, sla="sla_resolution")]
    record = record_after(sla_results=windows)
    assert (record["sla_windows_evaluated"], record["sla_windows_met"]) == (5, 4)
    assert record["sla_compliance"] == 0.8

    correction = sla_window("2027-01-11", True, evaluated_at="2027-01-20T09:00:00.000Z")
    stale = sla_window("2027-01-11", False, evaluated_at="2027-01-12T09:00:00.000Z")
    for order in ([*windows, correction, stale], [correction, stale, *windows]):
        assert record_after(sla_results=order)["sla_compliance"] == 1.0


def test_of_two_evaluations_of_one_window_at_the_same_instant_the_breach_stands_whatever_the_order():
    met, breached = sla_window("2027-01-04", True), sla_window("2027-01-04", False)
    assert record_after(sla_results=[met, breached]) == record_after(sla_results=[breached, met])
    assert record_after(sla_results=[met, breached])["sla_compliance"] == 0.0


def test_the_stored_document_becomes_the_track_record_the_ranking_reads():
    document = record_after([activated(n=1, hours=20, centre="dc_cebu"), completed(4, n=2)],
                            [sla_window("2027-01-04", True), sla_window("2027-01-11", False)])
    track = domain.TrackRecord.from_document(document)
    assert track == domain.TrackRecord(active_contracts=1, completed_contracts=1, committed_hours_per_week=20.0,
                                       sla_compliance=0.5, rating=4.0, committed_by_centre=(("dc_cebu", 20.0, 0),),
                                       sla_windows=2)
    assert domain.track_record_score(track) == (0.5 + 0.75) / 2


def firm_rows(document):
    firm = b.profile(b.CEBU_BPO, n=501, delivery_centres=[CEBU, BOGOTA])
    return {row.centre_id: row for row in domain.candidate_rows(firm, domain.TrackRecord.from_document(document))}


def test_a_firms_load_sits_with_the_centre_its_contracts_name():
    rows = firm_rows(record_after([activated(n=1, hours=60, centre="dc_cebu"), activated(n=2, hours=40,
                                                                                         centre="dc_bogota")]))
    assert (rows["dc_cebu"].capacity_hours, rows["dc_cebu"].track.committed_hours_per_week) == (80, 60)
    assert (rows["dc_bogota"].capacity_hours, rows["dc_bogota"].track.committed_hours_per_week) == (240, 40)


def test_seats_commit_the_centres_shift_hours_and_unplaced_load_is_shared_by_capacity():
    rows = firm_rows(record_after([activated(n=1, hours=None, seats=1, centre="dc_cebu"),
                                   activated(n=2, hours=32, centre=None)]))
    assert rows["dc_cebu"].track.committed_hours_per_week == 40 + 8
    assert rows["dc_bogota"].track.committed_hours_per_week == 24


def test_a_fully_committed_centre_is_excluded_for_capacity_while_the_other_competes():
    rows = firm_rows(record_after([activated(n=1, hours=80, centre="dc_cebu")]))
    needs = domain.posting_needs(b.posting(b.HELPDESK_24X7, hours_per_week=20, coverage="business_hours",
                                           shoring={"preference": "any", "required": False}))
    cebu, bogota = domain.evaluate(rows["dc_cebu"], needs), domain.evaluate(rows["dc_bogota"], needs)
    assert cebu.exclusions == [("insufficient_capacity", "has 0 free hours a week, the work needs 20")]
    assert bogota.eligible


def test_the_explanation_shows_the_track_record_and_the_load():
    busy = b.profile(n=502, track=record_after([activated(n=1, hours=10), activated(n=2), completed(5, n=2)],
                                               [sla_window("2027-01-04", True), sla_window("2027-01-11", True),
                                                sla_window("2027-01-18", False), sla_window("2027-01-25", True)]))
    fresh = b.evaluate(b.profile(n=503))
    evaluation = b.evaluate(busy)
    assert evaluation.components["track_record"] == (0.75 + 1.0) / 2
    assert evaluation.components["load"] == 0.75 < fresh.components["load"]
    assert evaluation.components["new_provider_boost"] == 0.0
    assert "track record: 1 completed contracts, 1 active, SLA met 75% in 4 windows, rated 5.0/5" in evaluation.reasons
    assert "load: 10 of 40 h a week committed" in evaluation.reasons
