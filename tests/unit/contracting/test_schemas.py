"""What contracting accepts at its edges."""

from datetime import UTC, datetime

import pytest

from services.contracting import schemas
from shared.vocabulary.errors import ValidationFailed


def _measurement(**fields):
    return {"sla_id": "sla_1", "value": "42.50", "measured_at": "2027-01-04T10:00:00.123456+01:00", **fields}


def test_a_single_measurement_or_a_batch_and_keys_from_the_idempotency_key_header():
    [one] = schemas.load_measurements(_measurement(key="m-1"), None)
    assert (one["key"], one["value"], one["units"]) == ("m-1", "42.50", 0)
    assert one["measured_at"] == datetime(2027, 1, 4, 9, 0, 0, 123000, tzinfo=UTC)
    batch = schemas.load_measurements({"measurements": [_measurement(), _measurement()]}, "req-7")
    assert [m["key"] for m in batch] == ["req-7:0", "req-7:1"]


@pytest.mark.parametrize(("payload", "header", "field"), [
    (_measurement(), None, "key"),
    ({"measurements": [_measurement(key="a"), _measurement(key="a")]}, None, "key"),
    (_measurement(key="a", value=42.5), None, "measurements"),
    (_measurement(key="a", measured_at="2027-01-04T10:00:00"), None, "measurements"),
    (_measurement(key="a", colour="red"), None, "measurements"),
])
def test_measurements_without_a_key_with_repeated_keys_float_values_naive_times_or_unknown_fields_are_refused(
    payload, header, field
):
    with pytest.raises(ValidationFailed) as refused:
        schemas.load_measurements(payload, header)
    assert field in refused.value.details


def test_contract_changes_refuse_unknown_fields_and_normalise_decimals():
    changes = schemas.load_changes({"slas": [{"metric": "accuracy_percent", "target": "99.50", "direction":
                                              "at_least", "window": "weekly"}]})
    assert changes["slas"][0]["credit"] == {"percent": "5", "cap": None}
    assert changes["slas"][0]["aggregation"] == "average" and changes["slas"][0]["target"] == "99.50"
    with pytest.raises(ValidationFailed):
        schemas.load_changes({"status": "active"})
    with pytest.raises(ValidationFailed):
        schemas.load_changes({"terms": {"price": {"amount": "-1", "currency": "USD"}}})


@pytest.mark.parametrize("moment", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_a_time_outside_the_calendar_contracting_computes_with_is_refused_not_a_crash(moment):
    with pytest.raises(ValidationFailed):
        schemas.load_measurements(_measurement(key="m", measured_at=moment), None)


def test_an_end_date_whose_next_day_python_cannot_count_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        schemas.load_changes({"end_date": "9999-12-31"})
    assert "end_date" in refused.value.details


def test_a_cursor_is_the_last_contract_id_of_the_page_before_and_anything_else_is_refused():
    last = "ctr_" + "0f" * 16
    assert schemas.load_page(None, 20, last) == (None, 20, last)
    for forged in ("Y3RyOmN0cl8x", "inv_" + "0f" * 16, last + "\n", last.upper()):
        with pytest.raises(ValidationFailed) as caught:
            schemas.load_page(None, 20, forged)
        assert caught.value.details == {"cursor": ["Not a cursor this API gave out."]}


def test_a_review_scores_the_fixed_criteria_one_at_least_and_no_other_name():
    review = schemas.load_review({"scores": {"quality": 4, "value": 2}, "notes": None})
    assert review["scores"] == {"quality": 4, "value": 2}
    for scores in ({}, {"speed": 3}, {"quality": 4, "Quality": 5}, {"timeliness": 6}, {"communication": "4"}):
        with pytest.raises(ValidationFailed):
            schemas.load_review({"scores": scores})


def test_a_review_recorded_before_the_fixed_criteria_still_reads_with_its_own_names():
    stored = {"id": "rev_1", "contract_id": "ctr_1", "tenant_id": "ten_1", "provider_id": "prv_1",
              "due_date": "2027-02-01", "scores": {"responsiveness": 5, "quality": 3}, "overall": "4",
              "notes": None, "recorded_at": datetime(2027, 2, 1, tzinfo=UTC)}
    assert schemas.review_to_wire(stored)["scores"] == {"responsiveness": 5, "quality": 3}
