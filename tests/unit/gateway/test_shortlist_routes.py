"""The shortlist and explain routes: client-only reads, and their response schemas keep all matching answers."""

from datetime import UTC, datetime

from services.gateway.routes import BY_OPERATION, CLIENT
from services.matching import domain, shortlists
from tests.unit.matching import builders as b


def _answers():
    listed = b.profile(n=1)
    excluded = b.profile(n=2, verified=False)
    index = b.index_of(listed, excluded)
    needs = domain.posting_needs(b.POSTING)
    shortlist, _ = shortlists.build(index, needs, 10, version=1, now=datetime(2026, 12, 1, tzinfo=UTC))
    posting = {"id": b.POSTING["id"], "tenant_id": b.TENANT}
    answer = {**shortlists.wire(posting, shortlist), "status": "open", "eligible": 1, "top_k": 10}
    explanations = [shortlists.explanation(index, needs, shortlist, p["id"], index.provider_rows(p["id"]), 10)
                    for p in (listed, excluded)]
    return answer, explanations


def test_both_routes_are_client_only_reads_under_the_posting():
    shortlist, explain = BY_OPERATION["get_shortlist"], BY_OPERATION["explain_match"]
    assert (shortlist.method, shortlist.who) == ("GET", (CLIENT,))
    assert shortlist.path == "/v1/postings/{posting_id}/shortlist"
    assert (explain.method, explain.who) == ("GET", (CLIENT,))
    assert explain.path_parameters == ["posting_id", "provider_id"]
    assert 404 in shortlist.errors and 404 in explain.errors


def test_the_response_schemas_keep_everything_matching_answers():
    answer, explanations = _answers()
    assert BY_OPERATION["get_shortlist"].response().dump(answer) == answer
    for explanation in explanations:
        assert BY_OPERATION["explain_match"].response().dump(explanation) == explanation
