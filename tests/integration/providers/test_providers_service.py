"""The providers service against a real broker and database: RPC in, profiles and outbox rows out."""

from __future__ import annotations

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.providers.service import ProvidersService
from shared.runtime import contracts
from shared.runtime.outbox import outbox_events
from shared.vocabulary.errors import Conflict, NotFound, ValidationFailed
from tests.unit.providers.profiles import firm, individual

pytestmark = pytest.mark.integration


CORRELATION_ID = "7d1c2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"


@pytest.fixture
def providers(container_factory, service_config, amqp_uri):
    container = container_factory(ProvidersService, service_config)
    container.start()
    # Callers (the gateway) pass their request's correlation id in the RPC context, as here.
    with ServiceRpcProxy("providers", {"AMQP_URI": amqp_uri}, context_data={"correlation_id": CORRELATION_ID},
                         timeout=15) as proxy:
        yield proxy


@pytest.fixture
def db(mongo_client, service_config):
    return mongo_client[service_config["MONGO_DATABASE"]]


def emitted(db, routing_key: str | None = None, subject: str | None = None) -> list[dict]:
    """Envelopes in the outbox, oldest first; each must satisfy its published contract."""
    query = {}
    if routing_key:
        query["routing_key"] = routing_key
    if subject:
        query["envelope.subject"] = subject
    envelopes = [row["envelope"] for row in outbox_events(db, query)]
    for envelope in envelopes:
        assert contracts.errors(envelope) == []
    return envelopes


def test_registering_an_individual_stores_it_and_emits_registered_on_the_smb_lane(providers, db):
    answer = providers.register(individual())
    provider = answer["provider"]
    assert provider["id"].startswith("prv_") and answer["api_key"].startswith("tlk_p_")
    assert provider["skills"][0] == {"name": "calendar management", "level": 5}
    assert providers.get(provider["id"]) == provider
    (event,) = emitted(db)
    assert event["type"] == "tasklinkr.providers.provider.registered.v1"
    assert event["subject"] == provider["id"] and event["lane"] == "smb" and "tenantid" not in event
    assert event["data"] == {"provider": provider}
    assert event["correlationid"] == CORRELATION_ID


def test_registering_a_firm_gives_its_centres_ids_and_emits_on_the_enterprise_lane(providers, db):
    provider = providers.register(firm())["provider"]
    assert all(c["id"].startswith("dc_") for c in provider["delivery_centres"])
    assert provider["working_hours"] is None and provider["capacity_hours_per_week"] is None
    (event,) = emitted(db, "provider.registered.v1")
    assert event["lane"] == "enterprise"


def test_money_is_stored_as_decimal128(providers, db):
    provider = providers.register(individual())["provider"]
    doc = db.providers.find_one({"_id": provider["id"]})
    assert type(doc["rates"]["hourly"]["amount"]).__name__ == "Decimal128"
    assert doc["created_at"].tzinfo is not None


def test_rates_sent_as_amounts_are_registered_and_changed_in_the_providers_currency(providers, db):
    """The public API sends each rate as its amount alone: the provider has one currency, which matching compares
    with a posting's budget and search filters by."""
    provider = providers.register(individual(currency="EUR", rates={
        "hourly": {"amount": "12.00"}, "per_unit": [{"unit": "ticket", "price": {"amount": "1.50"}}]}))["provider"]
    assert provider["rates"]["hourly"] == {"amount": "12.00", "currency": "EUR"}
    assert provider["rates"]["per_unit"][0]["price"] == {"amount": "1.50", "currency": "EUR"}
    doc = db.providers.find_one({"_id": provider["id"]})
    assert doc["rates"]["hourly"]["currency"] == "EUR"
    assert type(doc["rates"]["hourly"]["amount"]).__name__ == "Decimal128"
    changed = providers.update(provider["id"], {"rates": {"hourly": {"amount": "14.00"}}})
    assert changed["rates"] == {"hourly": {"amount": "14.00", "currency": "EUR"}, "monthly_retainer": None,
                                "per_unit": []}
    (event,) = emitted(db, "provider.updated.v1")
    assert event["data"]["provider"]["rates"]["hourly"] == {"amount": "14.00", "currency": "EUR"}


def test_an_invalid_profile_writes_nothing_and_reports_each_field(providers, db):
    with pytest.raises(ValidationFailed) as caught:
        providers.register(individual(country="XX", rates={"hourly": {"amount": "10", "currency": "EUR"}}))
    assert caught.value.details == {"country": ["'XX' is not an ISO 3166-1 alpha-2 country code."]}
    with pytest.raises(ValidationFailed) as caught:
        providers.register(individual(rates={"hourly": {"amount": "10", "currency": "EUR"}}))
    mismatch = "Must be in USD, the provider's currency; got EUR."
    assert caught.value.details == {"rates": {"hourly": [mismatch]}}
    assert db.providers.count_documents({}) == 0
    assert outbox_events(db) == []


def test_getting_an_unknown_provider_is_not_found(providers):
    with pytest.raises(NotFound):
        providers.get("prv_00000000000000000000000000000000")


def test_an_update_that_changes_something_bumps_the_version_and_emits_updated(providers, db):
    provider = providers.register(individual())["provider"]
    updated = providers.update(provider["id"], {"headline": "Executive VA and bookkeeper",
                                                "categories": ["administrative_support", "bookkeeping"]})
    assert updated["version"] == 2 and updated["headline"] == "Executive VA and bookkeeper"
    assert updated["created_at"] == provider["created_at"]
    (event,) = emitted(db, "provider.updated.v1")
    assert event["data"] == {"provider": updated, "changed": ["categories", "headline"]}
    assert providers.get(provider["id"]) == updated


def test_an_update_that_changes_nothing_emits_nothing(providers, db):
    provider = providers.register(individual())["provider"]
    rates = {"hourly": {"amount": "12.0", "currency": "USD"},
             "per_unit": [{"unit": "ticket", "price": {"amount": "1.50", "currency": "USD"}}]}
    same = providers.update(provider["id"], {"headline": provider["headline"], "rates": rates})
    assert same == provider
    assert emitted(db, "provider.updated.v1") == []


def test_an_update_breaking_a_rule_writes_nothing(providers, db):
    provider = providers.register(individual())["provider"]
    with pytest.raises(Conflict) as caught:  # an individual's models: the stored kind refuses them (409)
        providers.update(provider["id"], {"models": ["bpo"]})
    assert list(caught.value.details) == ["models"]
    with pytest.raises(Conflict) as caught:  # rates in another currency than the stored one
        providers.update(provider["id"], {"rates": {"hourly": {"amount": "30.00", "currency": "JPY"}}})
    assert list(caught.value.details) == ["rates"]
    with pytest.raises(ValidationFailed) as caught:  # the change alone breaks the rules: no rate at all
        providers.update(provider["id"], {"rates": {}})
    assert list(caught.value.details) == ["rates"]
    with pytest.raises(ValidationFailed) as caught:
        providers.update(provider["id"], {"kind": "firm"})
    assert caught.value.details == {"kind": ["Cannot be changed with update."]}
    assert providers.get(provider["id"])["version"] == 1
    assert len(emitted(db)) == 1


def test_an_update_of_capacity_also_announces_an_availability_change(providers, db):
    provider = providers.register(individual())["provider"]
    providers.update(provider["id"], {"capacity_hours_per_week": 25})
    (changed,) = emitted(db, "provider.availability_changed.v1")
    assert changed["data"]["capacity_hours_per_week"] == 25
    assert len(emitted(db, "provider.updated.v1")) == 1


def test_updating_an_unknown_provider_is_not_found(providers):
    with pytest.raises(NotFound):
        providers.update("prv_00000000000000000000000000000000", {"headline": "x"})


def test_set_availability_of_an_individual_emits_the_new_state_once(providers, db):
    provider = providers.register(individual())["provider"]
    change = {"availability": {"status": "limited", "available_from": "2027-01-04"},
              "capacity_hours_per_week": 20}
    after = providers.set_availability(provider["id"], change)
    assert after["availability"] == {"status": "limited", "available_from": "2027-01-04"}
    assert after["capacity_hours_per_week"] == 20 and after["version"] == 2
    assert providers.set_availability(provider["id"], change) == after
    (event,) = emitted(db, "provider.availability_changed.v1")
    assert event["data"] == {"provider_id": provider["id"], "availability": after["availability"],
                             "capacity_hours_per_week": 20, "delivery_centres": [], "version": 2}


def test_set_availability_of_a_firm_changes_centre_seats(providers, db):
    provider = providers.register(firm())["provider"]
    first, second = (c["id"] for c in provider["delivery_centres"])
    after = providers.set_availability(provider["id"], {"centre_seats": {first: 450}})
    assert [c["seats"] for c in after["delivery_centres"]] == [450, 200]
    (event,) = emitted(db, "provider.availability_changed.v1")
    assert event["lane"] == "enterprise"
    assert event["data"]["delivery_centres"] == [{"id": first, "seats": 450}, {"id": second, "seats": 200}]
    assert event["data"]["capacity_hours_per_week"] is None


def test_set_availability_refuses_changes_that_do_not_fit_the_kind(providers, db):
    provider = providers.register(firm())["provider"]
    with pytest.raises(Conflict) as caught:  # the stored provider's centres refuse it: 409
        providers.set_availability(provider["id"], {"centre_seats": {"dc_unknown": 3}})
    assert caught.value.details == {"centre_seats": {"dc_unknown": ["No delivery centre with this id."]}}
    assert emitted(db, "provider.availability_changed.v1") == []


def test_verifying_twice_emits_one_verified_event(providers, db):
    provider = providers.register(firm())["provider"]
    first = providers.verify(provider["id"], "ops.jane", note="documents checked")
    second = providers.verify(provider["id"], "ops.john")
    assert first["verified"] is True and first["verified_at"] is not None
    assert second == first
    (event,) = emitted(db, "provider.verified.v1")
    assert event["data"] == {"provider_id": provider["id"], "verified_at": first["verified_at"],
                             "verified_by": "ops.jane"}


def test_verifying_an_unknown_provider_is_not_found(providers):
    with pytest.raises(NotFound):
        providers.verify("prv_00000000000000000000000000000000", "ops.jane")


def test_authenticate_finds_the_provider_by_its_key_and_nobody_by_another(providers):
    answer = providers.register(individual())
    [key] = providers.list_keys(answer["provider"]["id"])["items"]
    assert providers.authenticate(answer["api_key"]) == {"provider_id": answer["provider"]["id"], "key_id": key["id"],
                                                         "lane": "smb"}  # an individual's work is small work
    assert providers.authenticate(answer["api_key"][:-1] + "x") is None
    assert providers.authenticate("tlk_c_" + answer["api_key"][6:]) is None


def test_health_reports_the_database_and_the_outbox_backlog(providers):
    assert providers.health() == {"database": "ok", "outbox_backlog": 0}
