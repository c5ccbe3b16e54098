"""The one lane rule (shared.vocabulary.lane_of) and the lanes a process consumes (``--lane``)."""

import pytest

from shared.runtime.envelope import build
from shared.tools.operations import queue_lane
from shared.vocabulary.terms import DEFAULT_LANE, LANES, Lane, known_lanes, lane_of


def test_a_client_organisations_work_travels_in_the_lane_of_its_segment():
    assert lane_of(segment="enterprise") is Lane.ENTERPRISE
    assert lane_of(segment="smb") is Lane.SMB


def test_a_providers_own_work_travels_by_its_kind_firms_large_individuals_small():
    assert lane_of(provider_kind="firm") is Lane.ENTERPRISE
    assert lane_of(provider_kind="individual") is Lane.SMB


def test_the_clients_segment_decides_when_both_are_known():
    assert lane_of(segment="smb", provider_kind="firm") is Lane.SMB


def test_work_of_nobody_in_particular_takes_the_default_lane():
    assert lane_of() is DEFAULT_LANE is Lane.SMB


@pytest.mark.parametrize("kwargs", [{"segment": "huge"}, {"provider_kind": "robot"}])
def test_an_unknown_segment_or_kind_is_refused_rather_than_guessed(kwargs):
    with pytest.raises(ValueError):
        lane_of(**kwargs)


def test_an_envelope_refuses_a_lane_that_does_not_exist():
    with pytest.raises(ValueError):
        build(service="postings", routing_key="posting.published.v1", subject="x", data={}, lane="huge")
    assert build(service="postings", routing_key="posting.published.v1", subject="x", data={},
                 lane=Lane.ENTERPRISE)["lane"] == "enterprise"


def test_a_process_consumes_every_lane_unless_told_which():
    assert known_lanes(None) == known_lanes([]) == known_lanes("") == LANES
    assert known_lanes(["enterprise"]) == (Lane.ENTERPRISE,)
    assert known_lanes("smb, enterprise") == (Lane.ENTERPRISE, Lane.SMB)
    with pytest.raises(ValueError, match="unknown lane"):
        known_lanes(["bpo"])


def test_status_tells_each_queues_lane_from_its_name():
    assert queue_lane("evt-postings-posting.published.v1--matching.on_posting_published--enterprise") == "enterprise"
    assert queue_lane("cmd-posting.create.v1--gateway.posting_create_command--smb.retry-1000ms") == "smb"
    assert queue_lane("cmd-unknown--gateway.unknown_command") is None
    assert queue_lane("dlq.matching") is None


def test_the_catalog_and_the_envelope_schema_name_exactly_the_platforms_lanes():
    import json

    from shared.runtime.contracts import ROOT

    catalog = json.loads((ROOT / "catalog.json").read_text())
    common = json.loads((ROOT / "common.schema.json").read_text())
    assert list(catalog["lanes"]) == list(LANES)
    assert common["$defs"]["lane"]["enum"] == list(LANES)


def test_run_refuses_a_lane_that_does_not_exist_before_starting_anything():
    from typer.testing import CliRunner

    from shared.tools.cli import app

    result = CliRunner().invoke(app, ["run", "matching", "--lane", "bpo"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "unknown lane" in result.output
