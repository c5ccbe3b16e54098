"""How profiles become documents and filters become queries (pure functions of the repository)."""

from datetime import UTC, date, datetime
from decimal import Decimal
from unittest.mock import MagicMock

import pytest
from bson.decimal128 import Decimal128

from services.providers import domain, repository, schemas
from shared.vocabulary.errors import Conflict
from shared.vocabulary.money import Money
from tests.unit.providers.profiles import individual

TODAY = date(2026, 11, 29)


def test_a_profile_round_trips_through_its_document_with_money_as_decimal128():
    profile = domain.new_provider(schemas.load_registration(individual()), provider_id="prv_1",
                                  now=datetime(2026, 11, 29, tzinfo=UTC))
    profile["availability"] = {"status": "limited", "available_from": date(2027, 1, 4)}
    doc = repository.to_document(profile)
    assert doc["_id"] == "prv_1" and "id" not in doc
    assert doc["rates"]["hourly"] == {"amount": Decimal128("12.00"), "currency": "USD"}
    assert doc["availability"]["available_from"] == "2027-01-04"
    assert repository.from_document(dict(doc, api_key_digest="abc")) == profile


def test_filters_become_equality_conditions_on_indexed_fields():
    query = repository.search_query({"kind": "firm", "model": "bpo", "category": "sales", "country": "CR",
                                     "language": "es", "verified": True}, TODAY)
    assert query == {"kind": "firm", "models": "bpo", "categories": "sales", "country": "CR",
                     "languages": "es", "verified": True}


def test_a_category_search_finds_the_providers_that_serve_it_under_a_legacy_id_too():
    query = repository.search_query({"category": "it_support"}, TODAY)
    assert query == {"categories": {"$in": ["it_support", "helpdesk", "infrastructure_management"]}}
    assert repository.search_query({"category": "helpdesk"}, TODAY) == query


def test_a_skill_filter_matches_name_and_level_on_the_same_skill():
    query = repository.search_query({"skill": "zendesk", "min_skill_level": 3}, TODAY)
    assert query == {"skills": {"$elemMatch": {"name": "zendesk", "level": {"$gte": 3}}}}


def test_a_rate_ceiling_only_matches_providers_in_the_same_currency():
    query = repository.search_query({"max_hourly_rate": Money(Decimal("15"), "USD")}, TODAY)
    assert query == {"currency": "USD", "rates.hourly.amount": {"$lte": Decimal128("15")}}


def test_saving_over_a_version_someone_else_moved_is_a_conflict():
    profile = domain.new_provider(schemas.load_registration(individual()), provider_id="prv_1",
                                  now=datetime(2026, 11, 29, tzinfo=UTC))
    uow = MagicMock()
    uow.db[repository.PROVIDERS].update_one.return_value.matched_count = 0
    with pytest.raises(Conflict):
        repository.Repository.of(uow).save(dict(profile, version=2), expected_version=1)
    (query, update), kwargs = uow.db[repository.PROVIDERS].update_one.call_args
    assert query == {"_id": "prv_1", "version": 1}
    assert update["$set"]["version"] == 2 and kwargs["session"] is uow.session
