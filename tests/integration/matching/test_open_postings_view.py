"""The in-memory view of the open postings against matching's real database: it finds the same postings the
database query finds, after another replica opens, re-ranks or closes one and after a restart, and the service's
re-ranking uses it."""

import random
from datetime import UTC, datetime

import pytest

from services.matching import domain, repository, shortlists
from services.matching.dependencies import LiveIndex
from tests.integration.matching.events import STRONG_SKILLS, deliver, emitted, profile_event, register
from tests.unit.matching import builders as b
from tests.unit.matching import population

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def add_providers(database, profiles):
    database.providers.insert_many([{**{k: v for k, v in p.items() if k != "id"}, "_id": p["id"], "seq": n}
                                    for n, p in enumerate(profiles, start=1)])
    database.counters.insert_one({"_id": "providers", "seq": len(profiles)})


def replica(database) -> LiveIndex:
    live = LiveIndex(top_k=3)
    live.rebuild(database)
    return live


def open_posting(mongo_client, database, live: LiveIndex, posting: dict) -> None:
    """What a replica's ``posting.published`` commits: the posting with its first shortlist, numbered."""
    shortlist, _ = shortlists.build(live.index, domain.posting_needs(posting), live.top_k, version=1, now=NOW)
    with mongo_client.start_session() as session, session.start_transaction():
        database.postings.update_one({"_id": posting["id"]}, {"$set": {
            **{k: v for k, v in posting.items() if k != "id"}, "lane": "smb", "status": "open",
            "shortlist": shortlist}}, upsert=True, session=session)
        repository.mark_posting_changed(database, posting["id"], session)


def cancel(mongo_client, database, posting_id: str) -> None:
    with mongo_client.start_session() as session, session.start_transaction():
        database.postings.update_one({"_id": posting_id}, {"$set": {"status": "cancelled"}}, session=session)
        repository.mark_posting_changed(database, posting_id, session)


def from_database(database, profile) -> list[str]:
    rows = b.rows(profile)
    return sorted(p["id"] for p in repository.open_postings_touched_by(
        database, profile["id"], {m for r in rows for m in r.models}, {c for r in rows for c in r.categories}))


def from_view(live: LiveIndex, database, profile) -> list[str]:
    live.catch_up_postings(database)
    rows = b.rows(profile)
    return live.postings.touched_by(profile["id"], {m for r in rows for m in r.models},
                                    {c for r in rows for c in r.categories})


def market(count: int = 40) -> tuple[list[dict], list[dict]]:
    profiles = [profile for profile, _ in population.providers(count, seed=3)]
    rng = random.Random(5)
    postings = [population.posting(rng, tenant_id=b.TENANT) for _ in range(30)]
    return profiles, postings


def test_the_view_finds_what_the_database_query_finds_across_replicas_and_a_restart(mongo_client, database):
    profiles, postings = market()
    add_providers(database, profiles)
    replica_a, replica_b = replica(database), replica(database)

    for posting in postings[:20]:  # opened by replica B after replica A started
        open_posting(mongo_client, database, replica_b, posting)
    for posting in postings[:5]:
        cancel(mongo_client, database, posting["id"])
    assert len(list(repository.open_postings(database))) == 15

    for profile in profiles:
        expected = from_database(database, profile)
        assert from_view(replica_a, database, profile) == expected
        assert from_view(replica_b, database, profile) == expected
    assert any(from_database(database, p) for p in profiles)  # the market really overlaps

    restarted = replica(database)
    for posting in postings[20:]:  # opened by A after the restart, seen by the restarted replica
        open_posting(mongo_client, database, replica_a, posting)
    for profile in profiles:
        assert from_view(restarted, database, profile) == from_database(database, profile)
    assert len(restarted.postings) == 25


def test_a_provider_listed_on_a_posting_outside_its_markets_still_finds_it(mongo_client, database):
    listed = b.profile(n=81)
    add_providers(database, [listed])
    live = replica(database)
    open_posting(mongo_client, database, live, b.posting())
    moved = {**listed, "models": ["freelance"], "categories": ["bookkeeping"]}  # it left the posting's market
    assert from_view(live, database, moved) == from_database(database, moved) == [b.POSTING["id"]]


def test_a_provider_change_re_ranks_a_posting_another_replica_opened(matching, mongo_client, database, amqp_uri):
    for n in (91, 92, 93):
        register(matching, amqp_uri, b.profile(n=n))
    other_replica = replica(database)  # started beside this container, opens the posting itself
    open_posting(mongo_client, database, other_replica, b.posting())

    better = b.profile(n=99, skills=STRONG_SKILLS)
    deliver(matching, amqp_uri, "on_provider_registered", "providers", "provider.registered.v1",
            {"provider": profile_event(better)}, better["id"])

    (updated,) = emitted(database, "shortlist.updated.v1")
    assert updated["data"]["shortlist"]["candidates"][0]["provider_id"] == better["id"]
    assert updated["data"]["changes"]["added"] == [better["id"]]
