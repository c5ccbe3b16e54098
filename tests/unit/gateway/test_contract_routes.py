"""The contract routes: only the two parties, the right one of them per action, and response schemas that keep all
contracting answers."""

from datetime import UTC, datetime

from services.contracting import domain, schemas
from services.gateway.routes import BY_OPERATION, CLIENT, PROVIDER_ITSELF, ROUTES
from tests.unit.contracting.builders import active, draft

CONTRACT_ROUTES = [r for r in ROUTES if r.path.startswith("/v1/contracts")]


def test_contract_routes_are_for_the_parties_and_every_contract_path_answers_404_to_others():
    assert {r.tag for r in CONTRACT_ROUTES} == {"contracts"}
    for route in CONTRACT_ROUTES:
        assert set(route.who) <= {CLIENT, PROVIDER_ITSELF}, route.operation
        if "contract_id" in route.path_parameters:
            assert 404 in route.errors, route.operation
        if route.changes_state:
            assert 409 in route.errors, route.operation


def test_client_only_and_provider_only_actions():
    only_client = {"update_contract", "record_review", "complete_contract"}
    assert {r.operation for r in CONTRACT_ROUTES if r.who == (CLIENT,)} == only_client
    assert {r.operation for r in CONTRACT_ROUTES if r.who == (PROVIDER_ITSELF,)} == {"rate_client"}


def test_the_contract_schema_keeps_everything_contracting_answers():
    now = datetime(2027, 1, 10, tzinfo=UTC)
    contract = active()
    contract = domain.propose_amendment(contract, domain.Party.CLIENT, {"hours_per_week": 30}, reason="More",
                                        amendment_id="amd_1", new_sla_id=lambda: "sla_new", now=now)
    for answer in (schemas.contract_to_wire(draft()), schemas.contract_to_wire(contract)):
        assert BY_OPERATION["get_contract"].response().dump(answer) == answer
    page = {"items": [schemas.contract_to_wire(contract)], "next_cursor": None}
    assert BY_OPERATION["list_contracts"].response().dump(page) == page
