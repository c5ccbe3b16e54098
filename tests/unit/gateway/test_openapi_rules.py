"""The description's rules across fields say exactly what the services accept: every form of a part is checked
against the description and loaded by the service that owns it, and the two must agree."""

import base64
import itertools
import re

import jsonschema
import pytest
from bson import ObjectId
from marshmallow import ValidationError

from services.billing import schemas as billing
from services.contracting import schemas as contracting
from services.gateway import audit, openapi
from services.postings import schemas as postings
from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.stored import new_id

DOCUMENT = openapi.document()
COMPONENTS = DOCUMENT["components"]["schemas"]
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



# Each list's own check of its cursor, as its service (or the gateway, for the audit trail) runs it.
PAGES = {
    "list_postings": lambda cursor: postings.load_page(None, 20, cursor),
    "list_invitations": lambda cursor: postings.load_invitation_page(None, 20, cursor),
    "list_contracts": lambda cursor: contracting.load_page(None, 20, cursor),
    "list_billable_items": lambda cursor: billing.load_page(None, 20, cursor, billing.INVOICE_STATUSES, "itm"),
    "list_invoices": lambda cursor: billing.load_page(None, 20, cursor, billing.INVOICE_STATUSES, "inv"),
    "list_audit": lambda cursor: audit.query_of({"cursor": cursor}),
}
CURSORS = [new_id(prefix) for prefix in ("pst", "inv", "ctr", "itm", "ten")] + [
    str(ObjectId()), base64.urlsafe_b64encode(new_id("pst").encode()).decode(), "pst_1", "x"]


def _cursor_pattern(operation_id: str) -> str:
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            if operation["operationId"] == operation_id:
                return next(p for p in operation["parameters"] if p.get("name") == "cursor")["schema"]["pattern"]
    raise LookupError(operation_id)


@pytest.mark.parametrize("operation_id", list(PAGES))
def test_a_list_cursor_the_description_calls_valid_is_one_the_service_pages_after_and_no_other(operation_id):
    pattern = _cursor_pattern(operation_id)
    for cursor in CURSORS:
        try:
            PAGES[operation_id](cursor)
            accepted = True
        except ValidationFailed:
            accepted = False
        assert bool(re.search(pattern, cursor)) == accepted, cursor
