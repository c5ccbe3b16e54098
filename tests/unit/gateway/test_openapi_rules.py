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
from services.gateway import audit, openapi, schemas
from services.postings import schemas as postings
from services.providers import domain as providers_domain
from services.providers import schemas as providers
from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.stored import new_id
from shared.vocabulary.terms import REVIEW_CRITERIA
from tests.unit.providers import profiles

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


# --- what the description says of a cost report's period, a review's scores and a provider's registration -------


def _json_schema(node):
    """An OpenAPI 3.0 schema as JSON Schema draft 4: ``nullable`` becomes a type that admits null."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key not in ("nullable", "discriminator")}
    if node.get("nullable") and "type" in node:
        converted["type"] = [node["type"], "null"]
    return converted


def _valid_as(component: str, value) -> bool:
    """``value`` fits the document's ``component`` (its references resolved within the document)."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": _json_schema(DOCUMENT["components"])}
    return jsonschema.Draft4Validator(schema).is_valid(value)


def _operation(operation_id: str) -> dict:
    return next(operation for operations in DOCUMENT["paths"].values() for operation in operations.values()
                if operation["operationId"] == operation_id)


@pytest.mark.parametrize("operation_id", ["get_cost_report", "get_cost_report_csv"])
@pytest.mark.parametrize("start", ["2027-01-15", "1970-01-01", "2999-12-31", "1969-12-31", "3000-01-01"])
@pytest.mark.parametrize("months", [None, 1, 12, 36, 0, 37, -1])
def test_a_report_period_the_description_calls_valid_is_one_billing_reports_on_and_no_other(operation_id, start,
                                                                                          months):
    parameters = {p["name"]: p for p in _operation(operation_id)["parameters"] if p["in"] == "query"}
    assert set(parameters) == {"from", "months"}  # a period is a first day and a length: nothing to compare
    query = {"from": start} if months is None else {"from": start, "months": months}
    described = jsonschema.Draft4Validator({
        "type": "object", "properties": {name: p["schema"] for name, p in parameters.items()},
        "required": [name for name, p in parameters.items() if p.get("required")]}).is_valid(query)
    try:
        billing.load_period(start, months)
        accepted = True
    except ValidationFailed:
        accepted = False
    assert described == accepted


SCORES = [{"quality": 4}, {"quality": 4, "timeliness": 3, "communication": 5, "value": 1}, {"value": 5}, {},
          {"speed": 3}, {"quality": 4, "Quality": 4}, {"quality": 0}, {"quality": 6}, {"quality": "4"},
          {"quality": 4.5}, {"": 2}]


@pytest.mark.parametrize("scores", SCORES, ids=str)
def test_review_scores_the_description_calls_valid_are_those_contracting_records_and_no_other(scores):
    review = {"scores": scores, "notes": "Handover."}
    assert _valid_as("ReviewCreate", review) == _accepted_by(contracting.ReviewSchema(), review)


def test_the_review_criteria_are_the_platforms_in_the_description_and_in_contracting():
    assert list(COMPONENTS["ReviewScores"]["properties"]) == list(REVIEW_CRITERIA)
    assert list(contracting.ScoresSchema().fields) == list(REVIEW_CRITERIA)


def _request_form(profile: dict) -> dict:
    """A profile as the API takes it: each rate an amount alone, in the profile's currency."""
    rates = profile["rates"]

    def amount(money: dict | None) -> dict | None:
        return None if money is None else {"amount": money["amount"]}

    return {**profile, "rates": {"hourly": amount(rates.get("hourly")),
                                 "monthly_retainer": amount(rates.get("monthly_retainer")),
                                 "per_unit": [{**item, "price": amount(item["price"])}
                                              for item in rates.get("per_unit") or []]}}


HOURS = {"days": ["mon"], "start": "08:00", "end": "17:00"}
REGISTRATIONS = {
    "an individual": _request_form(profiles.individual()),
    "a firm": _request_form(profiles.firm()),
    "a firm without a delivery centre": _request_form(profiles.firm(delivery_centres=[])),
    "a firm with working hours": _request_form(profiles.firm(working_hours=HOURS)),
    "a firm with a capacity in hours": _request_form(profiles.firm(capacity_hours_per_week=40)),
    "a firm offering freelance work": _request_form(profiles.firm(models=["bpo", "freelance"])),
    "an individual without working hours": _request_form(profiles.individual(working_hours=None)),
    "an individual without a capacity": _request_form(profiles.individual(capacity_hours_per_week=None)),
    "an individual with a delivery centre": _request_form(profiles.individual(
        delivery_centres=profiles.firm()["delivery_centres"][:1])),
    "an individual offering bpo": _request_form(profiles.individual(models=["bpo"])),
    "an individual working round the clock": _request_form(profiles.individual(
        working_hours={"days": ["mon"], "start": "08:00", "end": "08:00"})),
    "an individual leaving the firm's fields out": {
        key: value for key, value in _request_form(profiles.individual()).items() if key != "delivery_centres"},
    "rates in another currency": {**_request_form(profiles.individual()), "rates": {
        "hourly": {"amount": "12.00", "currency": "EUR"}}},
    "rates in the profile's currency, named": {**_request_form(profiles.individual()), "rates": {
        "hourly": {"amount": "12.00", "currency": "USD"}}},
}


def _registered_by_providers(profile: dict) -> bool:
    """The gateway takes the body and the providers service keeps the profile rules for what it passes on."""
    gateway = schemas.ProviderRegistrationSchema()
    try:
        passed_on = gateway.dump(gateway.load(profile))
        providers_domain.require_valid(providers_domain.priced(providers.load_registration(passed_on)))
    except (ValidationError, ValidationFailed):
        return False
    return True


@pytest.mark.parametrize("name", list(REGISTRATIONS))
def test_a_registration_the_description_calls_valid_is_one_providers_registers_and_no_other(name):
    profile = REGISTRATIONS[name]
    assert _valid_as("ProviderRegistration", profile) == _registered_by_providers(profile), name


def test_the_registration_is_one_of_the_two_kinds_chosen_by_its_kind():
    registration = COMPONENTS["ProviderRegistration"]
    assert registration["discriminator"] == {"propertyName": "kind", "mapping": {
        "individual": "#/components/schemas/ProviderRegistrationIndividual",
        "firm": "#/components/schemas/ProviderRegistrationFirm"}}
    mapping = registration["discriminator"]["mapping"]
    assert [branch["$ref"] for branch in registration["oneOf"]] == list(mapping.values())
    individual, firm = COMPONENTS["ProviderRegistrationIndividual"], COMPONENTS["ProviderRegistrationFirm"]
    assert {"working_hours", "capacity_hours_per_week"} <= set(individual["required"])
    assert "delivery_centres" in firm["required"] and firm["properties"]["delivery_centres"]["minItems"] == 1
    assert individual["properties"]["models"]["items"]["enum"] == ["freelance", "virtual_assistant"]
    assert firm["properties"]["models"]["items"]["enum"] == ["bpo", "ito", "kpo"]
    assert COMPONENTS["Rate"]["properties"].keys() == {"amount"}  # in the profile's currency


def test_a_review_recorded_before_the_fixed_criteria_still_reads_as_the_description_says():
    old = {"id": "rev_1", "contract_id": "ctr_1", "due_date": "2027-02-01", "scores": {"responsiveness": 5},
           "overall": "5", "notes": None, "recorded_at": "2027-02-01T09:00:00Z"}
    answered = schemas.ReviewSchema().dump(old)
    assert answered == old and _valid_as("Review", answered)
