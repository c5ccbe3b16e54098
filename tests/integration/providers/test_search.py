"""Searching providers over RPC: each filter, their combination, and cursor pagination."""

from __future__ import annotations

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.providers.service import ProvidersService
from shared.vocabulary.errors import ValidationFailed
from tests.unit.providers.profiles import firm, individual

pytestmark = pytest.mark.integration


def usd(amount: str) -> dict:
    return {"amount": amount, "currency": "USD"}


def eur(amount: str) -> dict:
    return {"amount": amount, "currency": "EUR"}


@pytest.fixture
def providers(container_factory, service_config, amqp_uri):
    container_factory(ProvidersService, service_config).start()
    with ServiceRpcProxy("providers", {"AMQP_URI": amqp_uri}, context_data={"correlation_id": "search-tests"},
                         timeout=15) as proxy:
        yield proxy


@pytest.fixture
def catalogue(providers) -> dict[str, str]:
    """Five providers that differ in every filtered dimension; name -> provider id."""
    profiles = {
        "maria": individual(),
        "bob": individual(display_name="Bob Keller", models=["freelance"], categories=["bookkeeping"],
                          skills=[{"name": "quickbooks", "level": 4}], languages=["en"], country="US",
                          time_zone="America/Chicago", rates={"hourly": usd("40.00")}),
        "northwind": firm(),
        "priya": individual(display_name="Priya Nair", languages=["en", "hi"], country="IN",
                            time_zone="Asia/Kolkata", currency="EUR", rates={"hourly": eur("10.00")},
                            skills=[{"name": "calendar management", "level": 3}]),
        "vistula": firm(display_name="Vistula IT", models=["ito"], categories=["infrastructure_management"],
                        languages=["pl", "en"], country="PL", time_zone="Europe/Warsaw", currency="EUR",
                        rates={"monthly_retainer": eur("9000.00")}),
    }
    ids = {name: providers.register(profile)["provider"]["id"] for name, profile in profiles.items()}
    providers.verify(ids["maria"], "ops.jane")
    providers.set_availability(ids["bob"], {"availability": {"status": "unavailable"}})
    providers.set_availability(ids["priya"], {"availability": {"status": "available",
                                                               "available_from": "2099-01-04"}})
    return ids


def found(providers, catalogue, filters: dict) -> set[str]:
    page = providers.search(filters, limit=100)
    assert page["next_cursor"] is None
    names = {provider_id: name for name, provider_id in catalogue.items()}
    return {names[p["id"]] for p in page["items"]}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"maria", "bob", "northwind", "priya", "vistula"}),
        ({"kind": "firm"}, {"northwind", "vistula"}),
        ({"model": "freelance"}, {"bob"}),
        ({"category": "helpdesk"}, {"northwind", "vistula"}),  # both IT support, as infrastructure_management
        ({"category": "it_support"}, {"northwind", "vistula"}),
        ({"country": "pl"}, {"vistula"}),
        ({"language": "es"}, {"northwind"}),
        ({"skill": "Calendar Management"}, {"maria", "priya"}),
        ({"skill": "calendar management", "min_skill_level": 4}, {"maria"}),
        ({"verified": True}, {"maria"}),
        ({"verified": False}, {"bob", "northwind", "priya", "vistula"}),
        ({"available": True}, {"maria", "northwind", "vistula"}),
        ({"available": False}, {"bob", "priya"}),
        ({"max_hourly_rate": usd("20")}, {"maria", "northwind"}),
        ({"max_hourly_rate": eur("20")}, {"priya"}),
        ({"kind": "individual", "language": "en", "available": True, "max_hourly_rate": usd("50")},
         {"maria"}),
    ],
)
def test_each_filter_finds_exactly_the_matching_providers(providers, catalogue, filters, expected):
    assert found(providers, catalogue, filters) == expected


def test_pages_follow_each_other_in_id_order_without_gaps_or_repeats(providers, catalogue):
    seen, cursor, pages = [], None, 0
    while True:
        page = providers.search({}, limit=2, cursor=cursor)
        pages += 1
        assert len(page["items"]) <= 2
        seen.extend(p["id"] for p in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(catalogue.values())


def test_a_filtered_search_pages_too(providers, catalogue):
    first = providers.search({"available": True}, limit=2)
    second = providers.search({"available": True}, limit=2, cursor=first["next_cursor"])
    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_cursor"] is None
    ids = [p["id"] for p in first["items"] + second["items"]]
    assert ids == sorted({catalogue["maria"], catalogue["northwind"], catalogue["vistula"]})


@pytest.mark.parametrize(
    ("filters", "limit", "cursor", "field"),
    [
        ({}, 0, None, "limit"),
        ({}, 101, None, "limit"),
        ({}, 10, "bm90IGEgY3Vyc29y", "cursor"),
        ({"planet": "mars"}, 10, None, "planet"),
        ({"max_hourly_rate": {"amount": 20.0, "currency": "USD"}}, 10, None, "max_hourly_rate"),
        ({"min_skill_level": 3}, 10, None, "min_skill_level"),
    ],
)
def test_a_bad_search_is_refused_on_its_field(providers, filters, limit, cursor, field):
    with pytest.raises(ValidationFailed) as caught:
        providers.search(filters, limit=limit, cursor=cursor)
    assert list(caught.value.details) == [field]


def test_search_answers_wire_profiles(providers, catalogue):
    (item,) = providers.search({"country": "PH"})["items"]
    assert item == providers.get(catalogue["maria"])
