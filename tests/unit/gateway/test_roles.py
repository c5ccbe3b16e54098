"""Roles on every route: the route table's ``who`` and what each key may do, and each key's request budget."""

import pytest

from services.gateway.auth import Principal, RequestBudget, authorize
from services.gateway.errors import TooManyRequests
from services.gateway.routes import (
    BY_OPERATION,
    CALLERS,
    CLIENT,
    FINANCE,
    OPERATOR,
    OWNER,
    PROVIDER_ITSELF,
    ROUTES,
    admits,
)
from shared.vocabulary.errors import Forbidden, NotFound

OWNER_KEY = Principal.client("ten_1", "owner", "key_o")
MANAGER_KEY = Principal.client("ten_1", "manager", "key_m")
FINANCE_KEY = Principal.client("ten_1", "finance", "key_f")
PROVIDER_KEY = Principal.provider("prv_1", "key_p")


def test_every_route_names_only_known_callers():
    for route in ROUTES:
        assert set(route.who) <= set(CALLERS), route.operation


def test_client_means_owner_or_manager_and_finance_only_where_named():
    for route in ROUTES:
        assert admits(route.who, CLIENT, "owner") == bool({CLIENT, OWNER} & set(route.who)), route.operation
        assert admits(route.who, CLIENT, "manager") == (CLIENT in route.who), route.operation
        assert admits(route.who, CLIENT, "finance") == (FINANCE in route.who), route.operation
        assert not admits(route.who, CLIENT, None) and not admits(route.who, CLIENT, "admin")


def test_keys_and_the_audit_trail_are_for_owners_and_operators_and_the_whole_trail_for_operators_only():
    for route in ROUTES:
        if route.tag in ("keys", "audit") and route.operation != "list_audit":
            assert set(route.who) in ({OWNER, OPERATOR}, {PROVIDER_ITSELF, OPERATOR}), route.operation
    assert BY_OPERATION["list_audit"].who == (OPERATOR,)


@pytest.mark.parametrize("principal", [MANAGER_KEY, FINANCE_KEY, PROVIDER_KEY])
def test_only_an_owner_or_the_operator_manages_a_tenants_keys(principal):
    with pytest.raises(Forbidden):
        authorize(principal, BY_OPERATION["create_tenant_key"], {"tenant_id": "ten_1"})
    authorize(OWNER_KEY, BY_OPERATION["create_tenant_key"], {"tenant_id": "ten_1"})
    authorize(Principal.operator(), BY_OPERATION["create_tenant_key"], {"tenant_id": "ten_1"})


def test_a_client_on_another_tenants_path_gets_404():
    with pytest.raises(NotFound):
        authorize(OWNER_KEY, BY_OPERATION["list_tenant_audit"], {"tenant_id": "ten_2"})


def test_a_finance_key_reaches_no_client_route_that_does_not_name_it():
    with pytest.raises(Forbidden, match="finance"):
        authorize(FINANCE_KEY, BY_OPERATION["create_posting"], {})


def test_a_tenant_past_its_budget_is_refused_on_all_its_keys_with_the_seconds_to_wait_and_others_keep_theirs():
    budget = RequestBudget("3/minute")
    for principal in (MANAGER_KEY, OWNER_KEY, FINANCE_KEY):
        budget.spend(principal)
    for principal in (MANAGER_KEY, OWNER_KEY, FINANCE_KEY, Principal.client("ten_1", "manager", "key_new")):
        with pytest.raises(TooManyRequests) as refused:
            budget.spend(principal)
        assert 1 <= refused.value.details["retry_after_seconds"] <= 60
    budget.spend(Principal.client("ten_2", "owner", "key_o2"))
    budget.spend(PROVIDER_KEY)


def test_an_operator_key_has_a_budget_of_its_own_and_off_disables_budgets():
    budget = RequestBudget("1/minute")
    budget.spend(Principal.operator())
    with pytest.raises(TooManyRequests):
        budget.spend(Principal.operator())
    unlimited = RequestBudget("off")
    for _ in range(100):
        unlimited.spend(MANAGER_KEY)
