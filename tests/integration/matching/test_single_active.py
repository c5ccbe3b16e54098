"""Two matching processes of one lane: the provider and contract queues have a single active consumer, so one of
them re-ranks after provider changes and keeps the view of the open postings; the other ranks published postings
without it, and takes over (building its view then) once the active one stops."""

import pytest

from services.matching import shortlists
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
    stored_shortlist,
)
from tests.unit.matching import builders as b
from tests.unit.matching.builders import POSTING

pytestmark = pytest.mark.integration

POSTINGS = [POSTING, *(b.posting(id="pst_" + f"{n:032d}") for n in (81, 82, 83))]


def stored_order(database, posting_id):
    return [c["provider_id"] for c in stored_shortlist(database, posting_id)["candidates"]]


def test_one_process_of_a_lane_re_ranks_after_provider_changes_and_the_other_takes_over_when_it_stops(
        container_factory, config, database, amqp_uri, quiet_queues):
    first, second = competing_pair(container_factory, config, amqp_uri, (61, 62, 63))
    assert live(first).following_postings  # it handled the registrations: its view was built before the first
    assert not live(second).following_postings

    # Published postings are ranked by either process, the standby without any view of the open postings.
    publish(amqp_uri, "postings", "tenant.registered.v1", {"tenant": TENANT}, TENANT["id"], tenant=TENANT["id"])
    for posting in POSTINGS:  # one at a time: the broker hands them round to both processes
        publish(amqp_uri, "postings", "posting.published.v1", {"posting": posting}, posting["id"], tenant=b.TENANT)
        (proposed,) = eventually(lambda p=posting: emitted(database, "matches.proposed.v1", p["id"]))
        assert [c["provider_id"] for c in proposed["data"]["shortlist"]["candidates"]] == \
            [b.provider_id(n) for n in (61, 62, 63)]

    # A provider change reaches the active process only; it re-ranks every open posting it changes.
    better = b.profile(n=69, skills=STRONG_SKILLS)
    publish(amqp_uri, "providers", "provider.registered.v1", {"provider": profile_event(better)}, better["id"])
    for posting in POSTINGS:
        (updated,) = eventually(lambda p=posting: emitted(database, "shortlist.updated.v1", p["id"]))
        assert updated["data"]["changes"]["added"] == [better["id"]]
    assert not live(second).following_postings  # it got no provider change: it never followed a posting

    # The active process stops: the broker makes the other active, which builds its view on its first delivery
    # and re-ranks the open postings from it.
    first.stop()
    best = b.profile(n=68, skills=STRONG_SKILLS)
    register(second, amqp_uri, best)
    assert live(second).following_postings
    live(second).catch_up_postings()  # its own writes too, from the stream
    assert set(live(second).postings.entries) == {posting["id"] for posting in POSTINGS}
    for posting in POSTINGS:
        updates = emitted(database, "shortlist.updated.v1", posting["id"])
        assert [u["data"]["changes"]["added"] for u in updates] == [[better["id"]], [best["id"]]]
        assert set(stored_order(database, posting["id"])[:2]) == {best["id"], better["id"]}
        assert shortlists.order(live(second).postings.entries[posting["id"]].posting["shortlist"]) == \
            shortlists.order(stored_shortlist(database, posting["id"]))
