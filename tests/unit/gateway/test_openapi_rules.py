"""The description's rules across fields say exactly what the services accept: every form of a part is checked
against the description and loaded by the service that owns it, and the two must agree."""

import itertools

import jsonschema
import pytest
from marshmallow import ValidationError

from services.gateway import openapi
from services.postings import schemas as postings

COMPONENTS = openapi.document()["components"]["schemas"]
CLASSES = ["onshore", "nearshore", "offshore"]
ORDERED_SUBSETS = [list(p) for n in range(0, 4) for p in itertools.permutations(CLASSES, n)]


def _described_as_valid(component: str, value: dict) -> bool:
    return jsonschema.Draft4Validator(COMPONENTS[component]).is_valid(value)


def _accepted_by(schema, value: dict) -> bool:
    try:
        schema.load(value)
    except ValidationError:
        return False
    return True


def _shorings():
    for preference in ["any", *CLASSES]:
        for required in (None, True, False):
            for accepted in [None, *ORDERED_SUBSETS, ["onshore", "onshore"], ["offshore", "nearshore", "offshore"]]:
                shoring = {"preference": preference}
                if required is not None:
                    shoring["required"] = required
                if accepted is not None:
                    shoring["accepted"] = accepted
                yield shoring


@pytest.mark.parametrize("shoring", list(_shorings()), ids=str)
def test_a_shoring_the_description_calls_valid_is_one_postings_accepts_and_no_other(shoring):
    assert _described_as_valid("Shoring", shoring) == _accepted_by(postings.ShoringSchema(), shoring)


@pytest.mark.parametrize("days", [["mon"], ["mon", "tue"], ["mon", "mon"], ["sun", "tue", "sun"]], ids=str)
@pytest.mark.parametrize("start, end", [("09:00", "17:00"), ("00:00", "24:00"), ("22:00", "06:00"),
                                        ("24:00", "06:00")], ids=str)
def test_business_hours_the_description_calls_valid_are_those_postings_accepts(days, start, end):
    hours = {"days": days, "start": start, "end": end}
    assert _described_as_valid("BusinessHours", hours) == _accepted_by(postings.BusinessHoursSchema(), hours)

