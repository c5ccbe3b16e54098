"""The entrypoints with their dependencies replaced (nameko's worker_factory): what they hand to the
database and the outbox, and what they refuse before touching either."""

from unittest.mock import MagicMock

import pytest
from nameko.testing.services import worker_factory
from pymongo.errors import ServerSelectionTimeoutError

from services.providers import events, repository
from services.providers.service import ProvidersService
from shared.vocabulary import apikeys
from shared.vocabulary.errors import ValidationFailed
from tests.unit.providers.profiles import firm, individual


@pytest.fixture
def service():
    service = worker_factory(ProvidersService)
    uow = MagicMock(name="uow")
    service.store.transact.side_effect = lambda work: work(uow)
    service.uow = uow
    return service


def test_register_stores_only_the_digest_of_the_key_it_returns(service):
    answer = service.register(individual())
    assert apikeys.kind_of(answer["api_key"]) == apikeys.PROVIDER
    (doc,), kwargs = service.uow.db["providers"].insert_one.call_args
    assert doc["api_key_digest"] == apikeys.digest(answer["api_key"])
    assert answer["api_key"] not in str(doc)
    assert kwargs["session"] is service.uow.session


def test_register_emits_the_registered_event_in_the_same_transaction_on_the_kinds_lane(service):
    provider = service.register(firm())["provider"]
    service.uow.emit.assert_called_once_with(events.REGISTERED, subject=provider["id"],
                                             data={"provider": provider}, lane="enterprise")


def test_an_invalid_profile_opens_no_transaction(service):
    with pytest.raises(ValidationFailed):
        service.register(individual(models=["bpo"]))
    with pytest.raises(ValidationFailed):
        service.register("not a profile")
    service.store.transact.assert_not_called()


def test_a_malformed_or_client_key_is_refused_without_a_lookup(service):
    assert service.authenticate("hello") is None
    assert service.authenticate(apikeys.generate(apikeys.CLIENT)) is None
    assert service.authenticate(None) is None
    service.store.db.__getitem__.assert_not_called()


@pytest.mark.parametrize("limit", [0, 101])
def test_search_refuses_a_limit_outside_one_to_a_hundred(service, limit):
    with pytest.raises(ValidationFailed) as caught:
        service.search({}, limit=limit)
    assert list(caught.value.details) == ["limit"]


def test_health_raises_when_the_database_does_not_answer(service, monkeypatch):
    service.store.db.command.side_effect = ServerSelectionTimeoutError("no server")
    with pytest.raises(ServerSelectionTimeoutError):
        service.health()
    service.store.db.command.side_effect = None
    counted = []
    monkeypatch.setattr(repository, "pending_count", lambda db: counted.append(db) or 2)
    assert service.health() == {"database": "ok", "outbox_backlog": 2}
    assert counted == [service.store.db]  # the outbox backlog of every lane (the integration tests count it)
