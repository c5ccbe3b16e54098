"""Each matching process's ranking index follows matching's own ``providers`` through a change stream: a provider
change committed by another process is in this process's index before it ranks, with no shared counter; a profile
applied before commit by a transaction that then aborts does not stay in the index."""

from types import SimpleNamespace

import pytest

from services.matching import dependencies, domain, shortlists
from services.matching.service import MatchingService
from shared.vocabulary.times import utc_now
from tests.integration.matching.events import (
    STRONG_SKILLS,
    TENANT,
    competing_pair,
    emitted,
    eventually,
    live,
    profile_event,
    publish,
    register,
)
from tests.unit.matching import builders as b
from tests.unit.matching.builders import POSTING

pytestmark = pytest.mark.integration


def test_a_provider_change_committed_by_another_process_is_in_the_index_before_the_next_ranking(
        container_factory, config, database, amqp_uri, quiet_queues, monkeypatch):
    # The background followers drain once at start and then sleep: only the drain before a ranking can bring in
    # the other process's change.
    monkeypatch.setattr(dependencies, "FOLLOW_INTERVAL_SECONDS", 3600)
    first, second = competing_pair(container_factory, config, amqp_uri, (41, 42, 43))
    views = [live(first), live(second)]
    for view in views:
        view.ready.wait()

    better = b.profile(n=49, skills=STRONG_SKILLS)
    publish(amqp_uri, "providers", "provider.registered.v1", {"provider": profile_event(better)}, better["id"])
    assert eventually(lambda: database.providers.find_one({"_id": better["id"]}))
    # The process that handled it applied it; the other has not read its stream since.
    assert eventually(lambda: any(view.index.provider_rows(better["id"]) for view in views))
    (other,) = [view for view in views if not view.index.provider_rows(better["id"])]

    other.catch_up()  # what every ranking does first
    assert [row.provider_id for row in other.index.provider_rows(better["id"])] == [better["id"]]
    needs = domain.posting_needs(POSTING)
    shortlist, _ = shortlists.build(other.index, needs, other.top_k, version=1, now=utc_now())
    assert shortlists.order(shortlist)[0][0] == better["id"]

    # And through the service, whichever process ranks the posting.
    publish(amqp_uri, "postings", "tenant.registered.v1", {"tenant": TENANT}, b.TENANT, tenant=b.TENANT)
    publish(amqp_uri, "postings", "posting.published.v1", {"posting": POSTING}, POSTING["id"], tenant=b.TENANT)
    (proposed,) = eventually(lambda: emitted(database, "matches.proposed.v1"))
    assert proposed["data"]["shortlist"]["candidates"][0]["provider_id"] == better["id"]


def test_a_profile_applied_by_a_transaction_that_aborts_is_replaced_by_the_committed_one(
        container_factory, config, database, amqp_uri, quiet_queues, monkeypatch):
    monkeypatch.setattr(dependencies, "FOLLOW_INTERVAL_SECONDS", 3600)  # only the drains below read the stream
    matching = container_factory(MatchingService, config)
    matching.start()
    profile = b.profile(n=51)
    register(matching, amqp_uri, profile)
    view = live(matching)
    stronger = {**profile, "skills": STRONG_SKILLS}
    view.catch_up()  # the registration: its change, and the handler's transaction ended

    for n, outcome in enumerate(("abort", "commit")):
        # A committed change not read from the stream yet: its (older) document must not replace the open
        # transaction's profile.
        database.providers.update_one({"_id": profile["id"]}, {"$set": {"display_name": f"Ana {n}"}})
        renamed = {**profile, "display_name": f"Ana {n}"}
        with database.client.start_session() as session:
            session.start_transaction()
            database.providers.update_one({"_id": profile["id"]}, {"$set": {"skills": STRONG_SKILLS}},
                                          session=session)
            view.apply_uncommitted({**stronger, "display_name": f"Ana {n}"}, SimpleNamespace(session=session))
            assert view.catch_up() == 1  # the rename, read but not applied over the transaction's profile
            assert view.index.provider_rows(profile["id"]) == domain.candidate_rows({**stronger, **renamed,
                                                                                     "skills": STRONG_SKILLS})
            if outcome == "abort":
                session.abort_transaction()
            else:
                session.commit_transaction()
        view.catch_up()
        assert not view._uncommitted
        expected = renamed if outcome == "abort" else {**renamed, "skills": STRONG_SKILLS}
        assert view.index.provider_rows(profile["id"]) == domain.candidate_rows(expected)
