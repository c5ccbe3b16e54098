"""Calls to a service in cells (docs/operations.md, Cells): a record not in the caller's lane is looked for in the
other lanes, a list is merged from every lane's page, and the operator's invoice run adds up every cell's."""

import pytest

from services.gateway import dependencies
from services.gateway.dependencies import LanedCalls
from services.gateway.endpoints.billing import merged_page, run_summary
from services.gateway.errors import ServiceTimeout, ServiceUnavailable
from shared.vocabulary.errors import Conflict, NotFound


@pytest.fixture
def cells(monkeypatch):
    """Each lane's answer to a call (a record found there, or NotFound), and the lanes asked, in order."""
    found: dict[str, object] = {}
    asked: list[str] = []

    def call(method, *args, timeout, in_lane=None, **kwargs):
        asked.append(str(in_lane))
        answer = found.get(str(in_lane), NotFound(f"not in {in_lane}"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(dependencies, "call_with_timeout", call)
    return found, asked


def test_a_record_of_another_lane_is_answered_by_the_lane_that_holds_it(cells):
    found, asked = cells
    found["enterprise"] = {"contract_id": "ctr_1"}
    calls = LanedCalls(timeout=5)
    calls.lane = "smb"  # an individual provider, on an enterprise client's contract
    assert calls.first_found(object(), "ctr_1") == {"contract_id": "ctr_1"}
    assert asked == ["smb", "enterprise"]


def test_a_record_in_the_callers_lane_costs_one_call_and_one_in_no_lane_is_the_callers_404(cells):
    found, asked = cells
    found["smb"] = {"contract_id": "ctr_1"}
    calls = LanedCalls(timeout=5)
    calls.lane = "smb"
    assert calls.first_found(object(), "ctr_1") == {"contract_id": "ctr_1"} and asked == ["smb"]
    asked.clear()
    calls.lane = None  # the operator: no lane named (the default lane's queue, smb), then the others
    found.clear()
    with pytest.raises(NotFound, match="not in None"):
        calls.first_found(object(), "ctr_unknown")
    assert asked == ["None", "enterprise"]


def test_any_answer_but_not_found_is_the_answer(cells):
    found, asked = cells
    found["enterprise"] = Conflict("the contract has ended")
    calls = LanedCalls(timeout=5)
    calls.lane = "enterprise"
    with pytest.raises(Conflict):
        calls.first_found(object(), "ctr_1")
    assert asked == ["enterprise"]


def test_every_lane_is_asked_and_answers_by_lane(cells):
    found, asked = cells
    found.update(smb={"invoices_issued": 1}, enterprise={"invoices_issued": 2})
    assert LanedCalls(timeout=5).in_every_lane(object()) == {"enterprise": {"invoices_issued": 2},
                                                             "smb": {"invoices_issued": 1}}
    assert sorted(asked) == ["enterprise", "smb"]


def test_pages_of_every_lane_merge_by_id_with_a_cursor_while_any_lane_has_more():
    enterprise = {"items": [{"id": "inv_b"}, {"id": "inv_d"}], "next_cursor": "inv_d"}
    smb = {"items": [{"id": "inv_a"}, {"id": "inv_c"}], "next_cursor": None}
    assert merged_page([enterprise, smb], 2) == {"items": [{"id": "inv_a"}, {"id": "inv_b"}], "next_cursor": "inv_b"}
    last = merged_page([{"items": [{"id": "inv_e"}], "next_cursor": None}, {"items": [], "next_cursor": None}], 2)
    assert last == {"items": [{"id": "inv_e"}], "next_cursor": None}
    assert merged_page([{"items": [], "next_cursor": None}] * 2, 2) == {"items": [], "next_cursor": None}


def test_the_operators_run_adds_up_every_cells_counts():
    answers = {"enterprise": {"as_of": "2027-02-01", "invoices_issued": 3, "deferred_batches": 1},
               "smb": {"as_of": "2027-02-01", "invoices_issued": 2, "deferred_batches": 0}}
    assert run_summary(answers) == {"as_of": "2027-02-01", "invoices_issued": 5, "deferred_batches": 1}


def test_every_lane_settled_gives_each_lanes_answer_and_each_other_lanes_failure(cells):
    found, _asked = cells
    down = ServiceTimeout("The service did not answer in time.", {"timeout_seconds": 5})
    found.update(smb={"invoices_issued": 1}, enterprise=down)
    calls = LanedCalls(timeout=5)
    assert calls.in_every_lane_settled(object()) == ({"smb": {"invoices_issued": 1}}, {"enterprise": down})
    with pytest.raises(ServiceTimeout):
        calls.in_every_lane(object())


def test_a_run_with_one_cell_down_says_what_the_others_did_and_that_asking_again_is_safe():
    ran = {"smb": {"as_of": "2027-02-01", "invoices_issued": 2, "deferred_batches": 0}}
    down = {"enterprise": ServiceTimeout("The service did not answer in time.", {"timeout_seconds": 5})}
    with pytest.raises(ServiceUnavailable) as raised:
        run_summary(ran, down)
    assert raised.value.status == 503
    assert "ran in smb but not in enterprise" in raised.value.message and "ask again" in raised.value.message
    assert raised.value.details == {
        "ran": {"smb": {"invoices_issued": 2, "deferred_batches": 0}},
        "not_run": {"enterprise": {"error": "timeout", "message": "The service did not answer in time.",
                                   "details": {"timeout_seconds": 5}}}}


def test_a_run_the_request_itself_fails_is_that_failure_and_every_cell_down_is_the_first_cells():
    future = Conflict("as_of is after today")
    with pytest.raises(Conflict):
        run_summary({}, {"enterprise": future, "smb": Conflict("as_of is after today")})
    with pytest.raises(Conflict):  # even when another cell ran: the request is wrong, not a cell
        run_summary({"smb": {"as_of": "2027-02-01", "invoices_issued": 0, "deferred_batches": 0}},
                    {"enterprise": future})
    timeout = ServiceTimeout("The service did not answer in time.")
    with pytest.raises(ServiceTimeout):
        run_summary({}, {"enterprise": timeout, "smb": ServiceTimeout("The service did not answer in time.")})
