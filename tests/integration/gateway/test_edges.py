"""The HTTP edges, through the gateway in front of the real postings and providers services: only JSON bodies are
read (415 for a form or text), the refusals the server gives before any route runs (an unknown method, an
over-long URL or header line) are JSON problem bodies like every other error, and names and titles refuse control
and bidirectional formatting characters."""

import json
import socket

import pytest
import requests

from tests.integration.gateway import test_negotiation_routes
from tests.integration.gateway.test_gateway_with_real_services import INBOX_HELP, MARIA

pytestmark = pytest.mark.integration

platform = test_negotiation_routes.platform  # the gateway in front of the real postings and providers services

OPERATOR = {"Authorization": "Bearer test-operator-key"}
SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Cache-Control", "X-Correlation-ID")


@pytest.fixture
def client(platform, base_url):
    answer = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, json={
        "name": "Acme", "country": "US", "time_zone": "America/Chicago", "segment": "smb"})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['api_key']}"}


def assert_problem(answer, status: int) -> dict:
    """A JSON problem body with the gateway's headers."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    for header in SECURITY_HEADERS:
        assert header in answer.headers, header
    body = answer.json()
    assert isinstance(body["error"], str) and body["message"]
    return body


def test_a_body_sent_as_a_form_or_as_text_is_refused_with_415_and_nothing_is_created(base_url, client):
    as_text = requests.post(f"{base_url}/v1/postings", headers=dict(client, **{"Content-Type": "text/plain"}),
                            data=json.dumps(INBOX_HELP))
    assert assert_problem(as_text, 415)["error"] == "unsupported_media_type"
    as_form = requests.post(f"{base_url}/v1/postings", headers=client, data={"title": "Inbox help"})
    assert_problem(as_form, 415)
    # curl -d sends a form content type: a JSON text under it is refused just the same.
    curl_like = requests.post(
        f"{base_url}/v1/postings", data=json.dumps(INBOX_HELP),
        headers=dict(client, **{"Content-Type": "application/x-www-form-urlencoded"}))
    assert_problem(curl_like, 415)
    assert requests.get(f"{base_url}/v1/postings", headers=client).json()["items"] == []
    # JSON, with or without parameters, is read.
    with_charset = requests.post(f"{base_url}/v1/postings", data=json.dumps(INBOX_HELP).encode(),
                                 headers=dict(client, **{"Content-Type": "application/json; charset=utf-8"}))
    assert with_charset.status_code == 201, with_charset.text


def test_an_unknown_method_is_a_json_problem_405_with_allow_on_a_route_and_404_elsewhere(base_url, platform):
    for method in ("TRACE", "PROPFIND", "CONNECT"):
        answer = requests.request(method, f"{base_url}/v1/postings", headers=OPERATOR)
        assert assert_problem(answer, 405)["error"] == "method_not_allowed"
        assert answer.headers["Allow"] == "GET, HEAD, POST"
        for path in ("/v1/no-such-thing", "/"):
            assert assert_problem(requests.request(method, f"{base_url}{path}"), 404)["error"] == "not_found"


def raw_exchange(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /v1/postings?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /v1/postings HTTP/1.1\r\nHost: x\r\nX-Long: " + b"y" * 9000 + b"\r\n\r\n", 400),
    (b"GET /v1/postings HTTP/7\r\nHost: x\r\n\r\n", 400),
], ids=["url", "header-line", "version"])
def test_requests_refused_before_any_route_runs_get_json_problem_bodies(base_url, platform, request_bytes, status):
    answered, headers, body = raw_exchange(base_url, request_bytes)
    assert answered == status
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Correlation-ID"]
    problem = json.loads(body)
    assert problem["error"] and problem["message"]


@pytest.mark.parametrize("bad", ["\u202eexe.pdf", "Acme\u2066 Ltd", "Acme\x00", "Acme\nLtd", "Acme\x1b[31m", "\u200f"])
def test_names_and_titles_refuse_control_and_bidi_formatting_characters(base_url, client, bad):
    tenant = requests.post(f"{base_url}/v1/tenants", headers=OPERATOR, json={
        "name": bad, "country": "US", "time_zone": "America/Chicago", "segment": "smb"})
    assert "name" in assert_problem(tenant, 422)["details"]
    posting = requests.post(f"{base_url}/v1/postings", headers=client, json=dict(INBOX_HELP, title=bad))
    assert "title" in assert_problem(posting, 422)["details"]
    provider = requests.post(f"{base_url}/v1/providers", headers=OPERATOR, json=dict(MARIA, display_name=bad))
    assert "display_name" in assert_problem(provider, 422)["details"]
    assert requests.get(f"{base_url}/v1/postings", headers=client).json()["items"] == []


def test_names_keep_any_script_and_descriptions_keep_their_lines(base_url, client):
    posting = requests.post(f"{base_url}/v1/postings", headers=client, json=dict(
        INBOX_HELP, title="  Buchhaltung für Zürich – 会計 ", description="Line one.\nLine two."))
    assert posting.status_code == 201, posting.text
    assert posting.json()["title"] == "Buchhaltung für Zürich – 会計"
    assert posting.json()["description"] == "Line one.\nLine two."
