"""A tenant's API keys in the postings service: roles, rotation with a grace period, revocation at once."""

import json
from datetime import UTC, datetime

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from services.postings.service import PostingsService
from shared.vocabulary import apikeys
from shared.vocabulary.apikeys import KeyRing
from shared.vocabulary.errors import Conflict, NotFound, ValidationFailed

pytestmark = pytest.mark.integration

ACME = {"name": "Acme", "country": "US", "time_zone": "America/Chicago", "segment": "smb"}


@pytest.fixture
def postings(container_factory, service_config, amqp_uri):
    container_factory(PostingsService, service_config).start()
    with ServiceRpcProxy("postings", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=20) as proxy:
        yield proxy


def test_an_owner_key_creates_role_keys_that_authenticate_with_their_role_and_only_digests_are_stored(
    postings, database
):
    created = postings.create_tenant(ACME)
    tenant_id = created["tenant"]["id"]
    finance = postings.create_key(tenant_id, "finance", label="accounts payable")
    assert finance["api_key"].startswith("tlk_c_")
    assert finance["key"]["role"] == "finance" and finance["key"]["status"] == "active"
    assert postings.authenticate(finance["api_key"]) == {"tenant_id": tenant_id, "role": "finance",
                                                        "key_id": finance["key"]["id"], "lane": "smb"}
    roles = [key["role"] for key in postings.list_keys(tenant_id)["items"]]
    assert sorted(roles) == ["finance", "owner"]
    stored = json.dumps(list(database.api_keys.find()), default=str)
    assert finance["api_key"] not in stored and created["api_key"] not in stored
    with pytest.raises(ValidationFailed):
        postings.create_key(tenant_id, "admin")
    with pytest.raises(NotFound):
        postings.create_key("ten_unknown", "manager")


def test_a_rotated_key_works_through_its_grace_period_and_a_zero_grace_refuses_it_at_once(postings):
    created = postings.create_tenant(ACME)
    tenant_id, old_key = created["tenant"]["id"], created["api_key"]
    [old] = postings.list_keys(tenant_id)["items"]

    rotated = postings.rotate_key(tenant_id, old["id"], 3600)
    assert rotated["key"]["replaces"] == old["id"] and rotated["key"]["role"] == "owner"
    assert postings.authenticate(old_key)["key_id"] == old["id"]  # still inside its grace period
    assert postings.authenticate(rotated["api_key"])["key_id"] == rotated["key"]["id"]
    listed = {key["id"]: key for key in postings.list_keys(tenant_id)["items"]}
    assert listed[old["id"]]["status"] == "expiring" and listed[old["id"]]["replaced_by"] == rotated["key"]["id"]
    with pytest.raises(Conflict):
        postings.rotate_key(tenant_id, old["id"], 0)  # rotate the replacement instead

    again = postings.rotate_key(tenant_id, rotated["key"]["id"], 0)
    assert postings.authenticate(rotated["api_key"]) is None
    assert postings.authenticate(again["api_key"])["role"] == "owner"


def test_a_revoked_key_is_refused_at_once_but_the_last_owner_key_cannot_be_revoked(postings):
    created = postings.create_tenant(ACME)
    tenant_id = created["tenant"]["id"]
    [owner] = postings.list_keys(tenant_id)["items"]
    manager = postings.create_key(tenant_id, "manager")

    revoked = postings.revoke_key(tenant_id, manager["key"]["id"])
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    assert postings.authenticate(manager["api_key"]) is None
    assert postings.revoke_key(tenant_id, manager["key"]["id"])["revoked_at"] == revoked["revoked_at"]
    with pytest.raises(Conflict):
        postings.revoke_key(tenant_id, owner["id"])
    assert postings.authenticate(created["api_key"])["role"] == "owner"


def test_another_tenants_key_is_not_found(postings):
    first = postings.create_tenant(ACME)["tenant"]["id"]
    second = postings.create_tenant(ACME)["tenant"]["id"]
    [key] = postings.list_keys(first)["items"]
    for change in (lambda: postings.revoke_key(second, key["id"]), lambda: postings.rotate_key(second, key["id"], 0)):
        with pytest.raises(NotFound):
            change()


def _revoke_in_transaction(client, database, tenant_id: str, key_id: str, session=None):
    """Revoke in a transaction of its own, left open when ``session`` is given (the caller commits it)."""
    own = session is None
    session = session or client.start_session()
    session.start_transaction(read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority"))
    try:
        KeyRing(database, apikeys.CLIENT, session).revoke(tenant_id, key_id, datetime.now(UTC))
        if own:
            session.commit_transaction()
    except BaseException:
        session.abort_transaction()
        raise
    finally:
        if own:
            session.end_session()


def test_two_owner_keys_revoked_at_the_same_time_leave_one_of_them_live(postings, database, mongo_client):
    created = postings.create_tenant(ACME)
    tenant_id = created["tenant"]["id"]
    [first] = postings.list_keys(tenant_id)["items"]
    second = postings.create_key(tenant_id, "owner")

    # Each revocation alone is allowed (the other owner key is live in its snapshot); both together would lock
    # the tenant out. The first is not committed yet when the second runs.
    with mongo_client.start_session() as session:
        _revoke_in_transaction(mongo_client, database, tenant_id, first["id"], session)
        with pytest.raises(PyMongoError) as raised:
            _revoke_in_transaction(mongo_client, database, tenant_id, second["key"]["id"])
        assert raised.value.has_error_label("TransientTransactionError")  # what run_transaction retries
        session.commit_transaction()
    with pytest.raises(Conflict):  # the retry sees the first revoked: this is now the last owner key
        _revoke_in_transaction(mongo_client, database, tenant_id, second["key"]["id"])

    assert postings.authenticate(created["api_key"]) is None
    assert postings.authenticate(second["api_key"])["role"] == "owner"
