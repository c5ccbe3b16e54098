"""The outbox's time segments: which one a transaction writes to, and when each stops taking events; the form an event
is kept in."""

import json
from datetime import UTC, datetime, timedelta

from shared.runtime.envelope import amqp_headers, build
from shared.runtime.outbox import (
    event_body,
    event_lane,
    event_subject,
    event_tenant,
    one_per_aggregate,
    outbox_document,
    outbox_event,
    readable,
    segment_end,
    segment_name,
)


def test_a_transaction_writes_to_the_segment_its_clock_is_in_and_the_name_says_when_it_ends():
    moment = datetime(2026, 12, 6, 5, 27, 41, tzinfo=UTC)
    assert segment_name(moment) == "outbox_20261206T052700_60"
    assert segment_end(segment_name(moment)) == datetime(2026, 12, 6, 5, 28, tzinfo=UTC)
    assert segment_name(moment, seconds=5) == "outbox_20261206T052740_5"
    assert segment_end("outbox_20261206T052740_5") == datetime(2026, 12, 6, 5, 27, 45, tzinfo=UTC)


def test_segments_sort_by_name_in_time_order_and_other_collections_are_not_segments():
    start = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    names = [segment_name(start + timedelta(seconds=60 * n)) for n in range(3)]
    assert names == sorted(names)
    assert segment_end("outbox") is None and segment_end("outbox_x") is None


def test_a_batch_takes_one_event_per_aggregate():
    docs = [{"envelope": {"subject": s}} for s in ("a", "b", "a", "c")]
    batch, rest = one_per_aggregate(docs)
    assert [d["envelope"]["subject"] for d in batch] == ["a", "b"] and len(rest) == 2


def test_an_event_is_kept_as_the_json_the_relay_publishes_and_either_form_reads_back_as_its_envelope():
    envelope = build(service="kitproducer", routing_key="thing.made.v1", subject="thing-1", data={"n": 1, "x": [1.5]},
                     lane="enterprise", tenant="ten_" + "a" * 32)
    kept = outbox_event(envelope, "thing.made.v1")
    nested = {"event_id": envelope["id"], "routing_key": "thing.made.v1", "envelope": envelope,
              "headers": amqp_headers(envelope)}

    assert isinstance(kept["body"], str) and json.loads(kept["body"]) == envelope
    for event in (kept, nested):
        assert event_body(event) == json.dumps(envelope, separators=(",", ":")).encode()
        assert (event_subject(event), event_tenant(event), event_lane(event)) == ("thing-1", "ten_" + "a" * 32,
                                                                                "enterprise")
        assert readable(event) == nested
    assert outbox_document([kept], datetime.now(UTC))["lane"] == "enterprise"
    assert [event_subject(e) for e in one_per_aggregate([kept, kept])[0]] == ["thing-1"]
