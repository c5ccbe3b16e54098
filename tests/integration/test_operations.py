"""Operator tools on real parked messages: list, show, replay after a fix, purge; outbox backlog and depths."""

import json

import pika
import pytest
from typer.testing import CliRunner

from shared.runtime import topology
from shared.tools.cli import app
from shared.tools.operations import DeadLetters, queue_depths
from tests.support.kit import FIXED, FLAKY_CATALOG, FlakyConsumer, publish_raw, thing
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

DELAYS = "0.1,0.2"


@pytest.fixture
def flaky(container_factory, service_config, amqp_uri, monkeypatch):
    monkeypatch.setenv("TASKLINKR_AMQP_URI", amqp_uri)
    monkeypatch.setenv("TASKLINKR_RETRY_DELAYS", DELAYS)
    monkeypatch.setattr("shared.runtime.topology.load_catalog", lambda *a: FLAKY_CATALOG)
    monkeypatch.setattr("shared.tools.operations.load_catalog", lambda *a: FLAKY_CATALOG)
    topology.apply(amqp_uri, FLAKY_CATALOG)
    container = container_factory(FlakyConsumer, dict(service_config, RETRY_DELAYS_SECONDS=DELAYS))
    container.start()
    return container


def test_an_operator_lists_inspects_and_replays_a_parked_message_after_the_fix(
    flaky, amqp_uri, service_config, mongo_client
):
    poison = thing("needs-a-fix", fail_times=10_000)
    publish_raw(amqp_uri, json.dumps(poison))
    letters = DeadLetters(amqp_uri, "flakyconsumer")
    assert wait_for(lambda: len(letters.list()) == 1)

    runner = CliRunner()
    listed = runner.invoke(app, ["dlq", "list", "flakyconsumer"], env={"COLUMNS": "400"})
    assert listed.exit_code == 0, listed.output
    assert poison["id"] in listed.output and "needs-a-fix fails on purpose" in listed.output
    shown = runner.invoke(app, ["dlq", "show", "flakyconsumer", poison["id"]])
    assert shown.exit_code == 0 and "Traceback" in shown.output and '"needs-a-fix"' in shown.output
    assert len(letters.list()) == 1, "listing and showing leave the message parked"

    FIXED.add("needs-a-fix")
    replayed = runner.invoke(app, ["dlq", "replay", "flakyconsumer", "--event-id", poison["id"]])
    assert replayed.exit_code == 0 and "replayed 1" in replayed.output
    seen = mongo_client[service_config["MONGO_DATABASE"]].seen
    assert wait_for(lambda: (seen.find_one({"_id": "needs-a-fix"}) or {}).get("times") == 1)
    assert letters.list() == []


def test_purge_asks_first_and_then_empties_the_dead_letter_queue(flaky, amqp_uri):
    publish_raw(amqp_uri, b"not json at all")
    letters = DeadLetters(amqp_uri, "flakyconsumer")
    assert wait_for(lambda: len(letters.list()) == 1)
    runner = CliRunner()
    refused = runner.invoke(app, ["dlq", "purge", "flakyconsumer"], input="n\n")
    assert refused.exit_code == 1 and len(letters.list()) == 1
    purged = runner.invoke(app, ["dlq", "purge", "flakyconsumer"], input="y\n")
    assert purged.exit_code == 0 and "purged 1" in purged.output
    assert letters.list() == []


def test_status_shows_every_queue_of_the_topology_with_its_depth(flaky, amqp_uri):
    rows = {name: (messages, consumers) for name, messages, consumers in queue_depths(amqp_uri)}
    consumer_queue = "evt-kitproducer-thing.made.v1--flakyconsumer.on_thing_made--smb"
    assert rows[consumer_queue][1] == 1
    assert "dlq.flakyconsumer" in rows


def test_status_shows_the_lane_of_each_queue_and_the_work_waiting_per_lane(flaky, amqp_uri):
    from typer.testing import CliRunner

    from shared.tools.cli import app

    result = CliRunner().invoke(app, ["status"], env={"COLUMNS": "300"})  # a row per line, names unbroken
    assert result.exit_code == 0, result.output
    assert "messages waiting" in result.output
    row = next(line for line in result.output.splitlines() if "flakyconsumer.on_thing_made--enterprise" in line)
    assert "enterprise" in row.split("flakyconsumer.on_thing_made--enterprise", 1)[1]


def park_in_order(amqp_uri: str, letters: DeadLetters, *thing_ids: str) -> list[dict]:
    """An empty dead-letter queue, then one poison message per id, each parked before the next is sent.

    Waited for by counting, which leaves the queue alone: a listing is a pass that copies each message to the
    tail, and one running while the next poison is parked would put that poison ahead of the ones it copied."""
    letters.purge()
    poisons = []
    for count, thing_id in enumerate(thing_ids, 1):
        poisons.append(thing(thing_id, fail_times=10_000))
        publish_raw(amqp_uri, json.dumps(poisons[-1]))
        assert wait_for(lambda count=count: letters.count() == count)
    assert [x.event_id for x in letters.list()] == [poison["id"] for poison in poisons]
    return poisons


def test_listing_parked_messages_again_and_again_neither_counts_a_delivery_nor_reorders_them(flaky, amqp_uri):
    """A quorum queue discards a message past its delivery limit (20 by default since RabbitMQ 4): a listing that
    requeued what it read raised every parked message's delivery count, and lost them after about 20 listings."""
    letters = DeadLetters(amqp_uri, "flakyconsumer")
    first, second = park_in_order(amqp_uri, letters, "parked-first", "parked-second")

    runner = CliRunner()
    for _ in range(25):
        listed = letters.list()
        assert runner.invoke(app, ["dlq", "show", "flakyconsumer", first["id"]]).exit_code == 0

    listed = [letter for letter in listed if letter.event_id in (first["id"], second["id"])]
    assert [letter.event_id for letter in listed] == [first["id"], second["id"]]
    assert all(letter.headers.get("x-delivery-count", 0) == 0 for letter in listed)
    assert all("fails on purpose" in letter.error and letter.original_queue for letter in listed)


def test_replaying_one_parked_message_leaves_the_others_parked_without_a_counted_delivery(flaky, amqp_uri):
    letters = DeadLetters(amqp_uri, "flakyconsumer")
    keep, replay = park_in_order(amqp_uri, letters, "stays-parked", "goes-back")

    assert [letter.event_id for letter in letters.replay(replay["id"])] == [replay["id"]]

    # The replayed one fails again and comes back, parked after its retries; the other never moved or counted.
    # Waited for with count(), which does not touch the queue: a listing (a pass copying each message to the tail)
    # that runs while the replayed one is parked again puts it ahead of the other.
    ours = {keep["id"], replay["id"]}
    assert wait_for(lambda: letters.count() == 2, timeout=15)
    listed = [letter for letter in letters.list() if letter.event_id in ours]
    assert [letter.event_id for letter in listed] == [keep["id"], replay["id"]]
    assert listed[0].headers.get("x-delivery-count", 0) == 0


def test_a_parked_message_with_an_empty_body_is_listed_and_stays_parked(flaky, amqp_uri):
    """The client library hands an empty body over as ``str``; copying it back under its ``binary`` encoding
    failed, so one such message broke every listing (and a tenant can send one to the inbound exchange)."""
    letters = DeadLetters(amqp_uri, "flakyconsumer")
    letters.purge()
    with pika.BlockingConnection(pika.URLParameters(amqp_uri)) as connection:  # no content encoding, as pika sends
        connection.channel().basic_publish("kitproducer.events", "thing.made.v1", b"",
                                           pika.BasicProperties(content_type="application/json"))
    assert wait_for(lambda: len(letters.list()) == 1)
    assert len(letters.list()) == 1
