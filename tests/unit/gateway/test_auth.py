import pytest

from services.gateway.auth import Principal, authorize, bearer_key, identify
from services.gateway.routes import BY_OPERATION
from shared.vocabulary import apikeys
from shared.vocabulary.errors import Forbidden, NotFound, Unauthorized

OPERATOR_KEY = "operator-secret"
CLIENT_KEY = apikeys.generate(apikeys.CLIENT)
PROVIDER_KEY = apikeys.generate(apikeys.PROVIDER)


def clients(key):
    return {"tenant_id": "ten_1", "role": "manager"} if key == CLIENT_KEY else None


def providers(key):
    return {"provider_id": "prv_1"} if key == PROVIDER_KEY else None


def who(key):
    return identify(key, OPERATOR_KEY, clients, providers)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   ", "Bearer a b", "bearerabc"])
def test_a_missing_or_malformed_authorization_header_is_401(header):
    with pytest.raises(Unauthorized):
        bearer_key(header)


def test_the_bearer_scheme_is_case_insensitive_and_the_key_is_trimmed():
    assert bearer_key("bearer  abc ") == "abc"
    assert bearer_key("Bearer abc") == "abc"


def test_keys_resolve_to_operator_client_and_provider_principals():
    assert who(OPERATOR_KEY) == Principal.operator()
    assert who(CLIENT_KEY) == Principal.client("ten_1", "manager")
    assert who(PROVIDER_KEY) == Principal.provider("prv_1")


def test_a_key_is_only_asked_of_the_service_that_issued_its_kind():
    asked = []
    identify(CLIENT_KEY, OPERATOR_KEY, lambda k: asked.append("postings") or {"tenant_id": "t", "role": "owner"},
             lambda k: asked.append("providers"))
    assert asked == ["postings"]


@pytest.mark.parametrize(
    "key",
    [apikeys.generate(apikeys.CLIENT), apikeys.generate(apikeys.PROVIDER), "operator-secre", "tlk_x_" + "a" * 40],
)
def test_unknown_keys_are_401(key):
    with pytest.raises(Unauthorized):
        who(key)


def test_a_caller_kind_the_route_does_not_serve_is_403():
    with pytest.raises(Forbidden):
        authorize(Principal.client("ten_1", "owner"), BY_OPERATION["create_tenant"], {})
    with pytest.raises(Forbidden):
        authorize(Principal.provider("prv_1"), BY_OPERATION["list_postings"], {})
    with pytest.raises(Forbidden):
        authorize(Principal.operator(), BY_OPERATION["create_posting"], {})


def test_a_provider_reaching_for_another_providers_profile_gets_404_not_403():
    route = BY_OPERATION["update_provider"]
    authorize(Principal.provider("prv_1"), route, {"provider_id": "prv_1"})
    with pytest.raises(NotFound):
        authorize(Principal.provider("prv_1"), route, {"provider_id": "prv_2"})


def test_operator_and_clients_read_any_provider():
    route = BY_OPERATION["get_provider"]
    authorize(Principal.operator(), route, {"provider_id": "prv_2"})
    authorize(Principal.client("ten_1", "owner"), route, {"provider_id": "prv_2"})


def test_the_verifier_recorded_is_the_operator():
    assert Principal.operator().actor == "operator"


def test_a_provider_acts_as_itself_on_its_invitations_and_proposals_and_the_service_checks_ownership():
    authorize(Principal.provider("prv_1"), BY_OPERATION["list_invitations"], {})
    authorize(Principal.provider("prv_1"), BY_OPERATION["accept_invitation"], {"invitation_id": "inv_1"})
    authorize(Principal.client("ten_1", "owner"), BY_OPERATION["counter_proposal"], {"proposal_id": "prp_1"})
    authorize(Principal.provider("prv_1"), BY_OPERATION["counter_proposal"], {"proposal_id": "prp_1"})
    with pytest.raises(Forbidden):
        authorize(Principal.provider("prv_1"), BY_OPERATION["award_posting"], {"posting_id": "pst_1"})
    with pytest.raises(Forbidden):
        authorize(Principal.client("ten_1", "owner"), BY_OPERATION["list_invitations"], {})
