"""The hot paths' JSON text (``shared.vocabulary.jsontext``): the values the standard library writes, and a refusal
for what JSON cannot carry, which fails the transaction that emits it rather than the relay afterwards."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.runtime import envelope as envelopes
from shared.runtime.outbox import event_body, outbox_event
from shared.vocabulary.jsontext import compact
from shared.vocabulary.terms import Lane


def test_an_envelope_reads_back_as_the_standard_library_writes_it():
    envelope = envelopes.build(service="matching", routing_key="matches.proposed.v1", subject="pst_1", lane="smb",
                               tenant="ten_1", data={"posting_id": "pst_1", "note": "Zürich — 東京", "lane": Lane.SMB,
                                                     "scores": [0.1 + 0.2, 1e-7, -3], "none": None, "ok": True})
    body = event_body(outbox_event(envelope, "matches.proposed.v1"))

    assert json.loads(body) == json.loads(json.dumps(envelope))
    assert b" " not in body.replace("Zürich — 東京".encode(), b"")  # compact: no space between tokens
    assert "Zürich — 東京".encode() in body  # UTF-8, not \u escapes


@pytest.mark.parametrize("value", [datetime(2026, 12, 6, tzinfo=UTC), Decimal("10.00"),
                                   dataclasses.make_dataclass("Point", [("x", int)])(1), {1: "a"}, 2**70])
def test_what_json_cannot_carry_is_refused_when_emitted(value):
    envelope = envelopes.build(service="matching", routing_key="matches.proposed.v1", subject="pst_1", lane="smb",
                               data={"value": value})

    with pytest.raises(TypeError):
        outbox_event(envelope, "matches.proposed.v1")
    with pytest.raises(TypeError):
        compact([value])
