"""The kit's pieces every service's edge uses: the wire form (``jsonable``), the acting party (``load_party``) and the
claim of a keyed batch (``claim_batch``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum

import pytest

from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.fields import jsonable, load_party
from shared.vocabulary.idempotency import claim_batch


class Party(StrEnum):
    CLIENT = "client"
    PROVIDER = "provider"


def test_the_wire_form_writes_times_in_utc_dates_as_iso_and_decimals_without_an_exponent():
    moment = datetime(2027, 1, 4, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert jsonable({"at": moment, "on": date(2027, 1, 4), "sum": Decimal("1E+2"), "rows": ({"n": 1}, "x")}) == {
        "at": "2027-01-04T08:00:00.123Z", "on": "2027-01-04", "sum": "100", "rows": [{"n": 1}, "x"]}


def test_a_party_comes_back_as_the_services_own_kind_with_its_id():
    kind, party_id = load_party({"kind": "provider", "provider_id": "prv_1"}, Party, "Not a party.")
    assert kind is Party.PROVIDER and party_id == "prv_1"
    assert load_party({"kind": "operator"}, ("client", "provider", "operator"), "Not a party.") == ("operator", None)


@pytest.mark.parametrize("party", [{"kind": "operator"}, {"kind": "client"}, {"kind": "client", "tenant_id": ""},
                                   {"kind": "client", "tenant_id": "t", "role": "owner"}, "client", None,
                                   {"kind": "client", "tenant_id": "t" * 65}])
def test_anything_else_is_refused_with_the_services_message(party):
    with pytest.raises(ValidationFailed) as refused:
        load_party(party, Party, "Not a party to a contract.")
    assert str(refused.value) == "Not a party to a contract."
    with pytest.raises(ValidationFailed) as refused:
        load_party(party, Party, "The acting party is not valid.", problem="A client or a provider.")
    assert refused.value.details == {"party": ["A client or a provider."]}


def _claim(items, recorded, check=lambda item: None):
    return claim_batch(items, recorded.get, ("value",), "reading", check, "Some readings cannot be recorded.")


def test_a_key_recorded_with_the_same_content_is_a_duplicate_and_a_new_one_is_new():
    earlier = {"key": "a", "value": "1", "id": "r1"}
    claims = _claim([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}], {"a": earlier})
    assert claims == [({"key": "a", "value": "1"}, earlier), ({"key": "b", "value": "2"}, None)]


def test_one_reused_key_or_one_refused_item_refuses_the_whole_batch_with_the_reason_per_key():
    with pytest.raises(ValidationFailed) as refused:
        _claim([{"key": "a", "value": "9"}, {"key": "b", "value": "-1"}, {"key": "c", "value": "3"}],
               {"a": {"key": "a", "value": "1"}}, lambda item: "Negative." if item["value"].startswith("-") else None)
    assert str(refused.value) == "Some readings cannot be recorded."
    assert refused.value.details == {"a": ["This key was already used for a different reading."], "b": ["Negative."]}


def test_the_check_sees_the_new_items_in_order_and_never_the_duplicates():
    seen = []
    _claim([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}, {"key": "c", "value": "3"}],
           {"b": {"key": "b", "value": "2"}}, lambda item: seen.append(item["key"]))
    assert seen == ["a", "c"]
