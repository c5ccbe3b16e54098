"""The OpenAPI description says what the API does: schemathesis generates requests the description calls valid, for
every route, and sends them to the gateway in front of every real service. None may be refused as invalid (422),
and every answer, whatever its status, must be one the description lists, in the shape it gives.

Driven by the description alone (no list of fields here): a field added to a schema is covered as it is added.
Bounded in time: a few examples per route (``EXAMPLES_PER_ROUTE``, generated the same way each run), one platform
for all routes.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.gateway import openapi
from tests.integration.gateway import test_fuzz

pytestmark = pytest.mark.integration

platform = test_fuzz.platform  # every service and the gateway, without rate limits
callers = test_fuzz.callers  # a key of each kind, and the ids of a real tenant, provider and posting

EXAMPLES_PER_ROUTE = 8
SCHEMA = schemathesis.openapi.from_dict(openapi.document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _conformance_of(operation, base_url: str, admitted: list[dict], ids: dict) -> tuple[list[str], list[str]]:
    """The requests of ``operation`` refused as invalid, and the answers its description does not describe."""
    refused: list[str] = []
    mismatched: list[str] = []

    @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None, phases=[Phase.generate], derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE), real_ids=st.booleans())
    def send(case, real_ids):
        if real_ids and isinstance(case.path_parameters, dict):
            case.path_parameters.update({k: v for k, v in ids.items() if k in case.path_parameters})
        # A key the route admits, so that what is checked is the request, not who sends it.
        response = case.call(base_url=base_url, headers=dict(admitted[0]) if admitted else {}, timeout=15)
        sent = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"[:600]
        if response.status_code == 422:
            refused.append(f"{sent}\n  -> 422 {response.text[:400]}")
        try:
            case.validate_response(response, checks=CHECKS)
        except (FailureGroup, AssertionError) as failure:
            mismatched.append(f"{sent}\n  -> {response.status_code} {response.text[:300]}\n  {str(failure)[:600]}")

    send()
    return refused, mismatched


# Bounded work (a few examples for each of 70 routes), but under a loaded machine it has taken 340 s with setup.
@pytest.mark.timeout(900)
def test_requests_the_description_calls_valid_are_not_refused_and_every_answer_matches_the_description(
    platform, base_url, callers
):
    headers, ids, _ = callers
    problems: dict[str, list[str]] = {}
    for operation in OPERATIONS:
        operation_id = operation.definition.raw["operationId"]
        admitted, _ = headers[(operation.method.upper(), operation.path)]
        refused, mismatched = _conformance_of(operation, base_url, admitted, ids)
        found = mismatched + refused
        if found:
            problems[operation_id] = found[:3]
    assert problems == {}, "\n".join(f"{operation_id}:\n" + "\n".join(found)
                                     for operation_id, found in problems.items())
