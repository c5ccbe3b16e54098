import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway.entrypoints import load_body, load_query, read_json
from services.gateway.errors import MalformedJson, MethodNotAllowed, RouteNotFound
from services.gateway.routes import BY_OPERATION
from services.gateway.webserver import unrouted
from shared.vocabulary.errors import ValidationFailed


def request(data=None, method="POST", path="/v1/postings", query=None):
    environ = EnvironBuilder(path=path, method=method, data=data, query_string=query,
                             content_type="application/json").get_environ()
    return Request(environ)


@pytest.mark.parametrize("data", [b'{"title": ', b"\xff\xfe", b'{"amount": NaN}', b"[" * 100_000])
def test_anything_that_is_not_json_is_malformed(data):
    with pytest.raises(MalformedJson):
        read_json(request(data))


def test_an_empty_body_is_no_body():
    assert read_json(request(b"")) is None
    assert read_json(request(b"  \n")) is None


def test_a_body_with_no_required_field_may_be_left_out():
    assert load_body(request(b""), BY_OPERATION["publish_posting"]) == {}


def test_a_body_that_is_not_an_object_is_422():
    with pytest.raises(ValidationFailed) as caught:
        load_body(request(b"[1, 2]"), BY_OPERATION["create_posting"])
    assert caught.value.details == {"_schema": ["Invalid input type."]}


def test_a_missing_required_body_is_422_naming_the_fields():
    with pytest.raises(ValidationFailed) as caught:
        load_body(request(b""), BY_OPERATION["cancel_posting"])
    assert caught.value.details == {"reason": ["Missing data for required field."]}


def test_a_route_without_a_body_schema_ignores_the_body():
    assert load_body(request(b"not json"), BY_OPERATION["get_posting"]) == {}


def test_the_query_string_is_loaded_by_the_routes_query_schema():
    assert load_query(request(method="GET", query="status=open&limit=7"), BY_OPERATION["list_postings"]) == {
        "status": "open", "limit": 7
    }
    with pytest.raises(ValidationFailed) as caught:
        load_query(request(method="GET", query="limit=abc"), BY_OPERATION["list_postings"])
    assert set(caught.value.details) == {"limit"}


def test_an_unserved_path_is_404_and_a_served_path_with_the_wrong_method_405():
    with pytest.raises(RouteNotFound):
        unrouted(request(method="GET", path="/v2/whatever"))
    with pytest.raises(MethodNotAllowed) as caught:
        unrouted(request(method="DELETE", path="/v1/postings/pst_1"))
    assert caught.value.allowed == ["GET", "HEAD", "PATCH"]


@pytest.mark.parametrize("body, field", [
    (b'{"title": "T", "category": "administrative_support", "model": "freelance", "hours_per_week": 37.5}',
     "hours_per_week"),
    (b'{"title": "T", "category": "administrative_support", "model": "freelance", "hours_per_week": "20"}',
     "hours_per_week"),
    (b'{"title": "T", "category": "administrative_support", "model": "freelance", "hours_per_week": true}',
     "hours_per_week"),
    (b'{"title": "T", "category": "administrative_support", "model": "freelance", '
     b'"confidentiality": {"confidential": "yes"}}', "confidentiality"),
])
def test_a_fraction_or_a_string_where_a_body_wants_a_whole_number_or_a_flag_is_422_not_rounded(body, field):
    with pytest.raises(ValidationFailed) as caught:
        load_body(request(body), BY_OPERATION["create_posting"])
    assert field in caught.value.details


def test_money_too_large_to_store_is_422_before_it_is_written_out_in_full():
    body = (b'{"title": "T", "category": "administrative_support", "model": "freelance", '
            b'"budget": {"amount": "1e7000", "currency": "USD"}}')
    with pytest.raises(ValidationFailed) as caught:
        load_body(request(body), BY_OPERATION["create_posting"])
    assert "budget" in caught.value.details


def test_query_strings_still_parse_numbers_and_flags():
    query = "skill=excel&min_skill_level=3&verified=true&limit=5"
    assert load_query(request(method="GET", path="/v1/providers", query=query),
                      BY_OPERATION["search_providers"])["verified"] is True
