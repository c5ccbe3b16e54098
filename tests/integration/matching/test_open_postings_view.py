"""The in-memory view of the open postings each matching process keeps (``open_postings``, fed by a change stream on
its own ``postings``): it sees postings whichever process wrote them, decides exactly what a scan of the database
decides, and is built again after a restart (on the first provider change, or on demand)."""

import random

import pytest

from services.matching import domain, events, shortlists
from services.matching.dependencies import LiveIndex
from services.matching.repository import posting_fields
from services.matching.service import MatchingService
from shared.runtime.outbox import outbox_events
from shared.vocabulary.times import utc_now
from tests.integration.matching.events import (
    STRONG_SKILLS,
    TENANT,
    competing_pair,
    deliver,
    emitted,
    eventually,
    live,
    profile_event,
    publish,
    publish_posting,
    register,
    stored_shortlist,
)
from tests.unit.matching import builders as b
from tests.unit.matching.builders import CEBU_BPO, HELPDESK_24X7, POSTING

pytestmark = pytest.mark.integration


def open_postings_scanned(database) -> dict[str, dict]:
    """Every open posting of the database, its fields and shortlist as matching reads them."""
    return {d["_id"]: {**d, "id": d["_id"], "shortlist": shortlists.readable(d.get("shortlist"))}
            for d in map(posting_fields, database.postings.find({"status": domain.OPEN}))}


def decided_by_view(view: LiveIndex, provider_id: str) -> set[str]:
    rows = view.index.provider_rows(provider_id)
    return {e.posting["id"] for e in view.postings_touched_by(provider_id, rows)
            if e.could_change(provider_id, rows)}


def could_change_by_the_rules(shortlist: dict | None, needs, provider_id: str, rows) -> bool:
    """The reference: the provider is on the shortlist, or one of its rows is eligible and beats the last place."""
    if shortlist is None or provider_id in {c["provider_id"] for c in shortlist["candidates"]}:
        return True
    cut = shortlists.cut_key(shortlist)
    return any(e.eligible and (cut is None or domain.sort_key(e.units, e.row) < cut)
               for e in (domain.evaluate(row, needs) for row in rows))


def decided_by_scan(database, view: LiveIndex, provider_id: str) -> set[str]:
    """Every open posting of the database, each decided by the rules (no view, no bound)."""
    rows = view.index.provider_rows(provider_id)
    return {posting_id for posting_id, posting in open_postings_scanned(database).items()
            if could_change_by_the_rules(posting.get("shortlist"), domain.posting_needs(posting), provider_id, rows)}


def test_a_posting_committed_by_another_matching_process_is_seen_by_both_and_re_ranked(
        container_factory, config, database, amqp_uri, quiet_queues):
    first, second = competing_pair(container_factory, config, amqp_uri, (61, 62, 63))

    publish(amqp_uri, "postings", "tenant.registered.v1", {"tenant": TENANT}, TENANT["id"], tenant=TENANT["id"])
    publish(amqp_uri, "postings", "posting.published.v1", {"posting": POSTING}, POSTING["id"], tenant=b.TENANT)
    assert eventually(lambda: emitted(database, "matches.proposed.v1"))
    for container in (first, second):  # one of them wrote it: the other learns it from the change stream
        view = live(container)
        view.follow_postings()  # the second (standby: no provider change yet) builds its view on demand
        view.catch_up_postings()
        assert POSTING["id"] in view.postings.entries
        assert shortlists.order(view.postings.entries[POSTING["id"]].posting["shortlist"]) == \
            shortlists.order(stored_shortlist(database))

    better = b.profile(n=69, skills=STRONG_SKILLS)
    publish(amqp_uri, "providers", "provider.registered.v1", {"provider": profile_event(better)}, better["id"])
    (updated,) = eventually(lambda: emitted(database, "shortlist.updated.v1"))
    assert updated["data"]["changes"]["added"] == [better["id"]]


def random_provider(rng: random.Random, n: int) -> dict:
    if rng.random() < 0.25:
        return b.profile(CEBU_BPO, n=n, skills=[{"name": "zendesk", "level": rng.randint(1, 5)},
                                                 {"name": "live chat", "level": rng.randint(1, 5)}],
                         rates={**CEBU_BPO["rates"], "hourly": {"amount": f"{rng.randint(6, 20)}.00",
                                                                 "currency": "USD"}})
    return b.profile(
        n=n, categories=rng.sample(["administrative_support", "scheduling", "data_entry"], rng.randint(1, 2)),
        skills=[{"name": "calendar management", "level": rng.randint(1, 5)},
                {"name": "email triage", "level": rng.randint(1, 5)}],
        rates={"hourly": {"amount": f"{rng.randint(8, 25)}.00", "currency": "USD"}, "monthly_retainer": None,
               "per_unit": []},
        nda_willing=rng.random() < 0.85)


def random_posting(rng: random.Random, n: int) -> dict:
    posting_id = "pst_" + f"{n:032d}"
    if rng.random() < 0.25:
        return b.posting(HELPDESK_24X7, id=posting_id,
                         required_skills=[{"name": "zendesk", "min_level": rng.randint(2, 4)}])
    return b.posting(id=posting_id, category=rng.choice(["administrative_support", "scheduling", "data_entry"]),
                     required_skills=[{"name": "calendar management", "min_level": rng.randint(2, 4)}],
                     budget={"amount": f"{rng.randint(10, 22)}.00", "currency": "USD"},
                     min_overlap_hours=rng.choice([0, 2, 3]))


def test_a_provider_change_re_ranks_exactly_the_postings_a_database_scan_finds(matching, database, amqp_uri):
    rng = random.Random(1616)
    providers = [random_provider(rng, 700 + n) for n in range(14)]
    for profile in providers:
        register(matching, amqp_uri, profile)
    for n in range(12):
        publish_posting(matching, amqp_uri, random_posting(rng, 800 + n))
    view = live(matching)

    for profile in providers:  # the view decides what the scan decides, for every provider of the population
        assert decided_by_view(view, profile["id"]) == decided_by_scan(database, view, profile["id"])

    for profile in rng.sample(providers, 4):  # real changes: every open shortlist is then what a full ranking gives
        changed = {**profile, "version": profile["version"] + 1,
                   "skills": [{**s, "level": rng.randint(1, 5)} for s in profile["skills"]]}
        deliver(matching, amqp_uri, "on_provider_updated", "providers", "provider.updated.v1",
                {"provider": profile_event(changed), "changed": ["skills"]}, changed["id"])
        for posting_id, posting in open_postings_scanned(database).items():
            fresh, _ = shortlists.build(view.index, domain.posting_needs(posting), view.top_k, version=0,
                                        now=utc_now())
            assert shortlists.order(posting["shortlist"]) == shortlists.order(fresh), posting_id
        for other in providers:
            assert decided_by_view(view, other["id"]) == decided_by_scan(database, view, other["id"])


def test_a_restarted_service_rebuilds_its_view_of_the_open_postings(container_factory, config, database, amqp_uri,
                                                                     quiet_queues):
    first = container_factory(MatchingService, config)
    first.start()
    for n in (71, 72):
        register(first, amqp_uri, b.profile(n=n))
    publish_posting(first, amqp_uri)
    publish_posting(first, amqp_uri, b.posting(id="pst_" + "7" * 32, category="scheduling"))
    first.stop()

    second = container_factory(MatchingService, config)
    second.start()
    view = live(second)
    view.ready.wait()
    assert not view.following_postings  # built on the first provider change (or on demand), not at start
    view.follow_postings()
    assert set(view.postings.entries) == set(open_postings_scanned(database)) == {POSTING["id"], "pst_" + "7" * 32}
    better = b.profile(n=79, skills=STRONG_SKILLS)
    register(second, amqp_uri, better)
    assert {e["envelope"]["subject"] for e in outbox_events(database, {"routing_key": events.SHORTLIST_UPDATED})} \
        == {POSTING["id"], "pst_" + "7" * 32}
