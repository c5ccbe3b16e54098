"""One check of a list request for every service: status filter, page size and cursor, problems reported together."""

import pytest

from shared.vocabulary import paging
from shared.vocabulary.errors import ValidationFailed
from shared.vocabulary.stored import new_id


def test_every_problem_of_a_list_request_is_reported_at_once():
    with pytest.raises(ValidationFailed) as caught:
        paging.load_page("archived", 0, "pst_1", statuses=("open",), prefix="pst")
    assert caught.value.message == paging.NOT_VALID
    assert caught.value.details == {"status": ["Must be one of: open."],
                                    "limit": ["Must be a whole number from 1 to 100."],
                                    "cursor": ["Not a cursor this API gave out."]}


@pytest.mark.parametrize("limit, expected", [(None, 20), (1, 1), ("100", 100)])
def test_a_limit_is_a_whole_number_or_its_decimal_string_and_defaults_to_twenty(limit, expected):
    assert paging.load_page(None, limit, None, prefix="pst") == (None, expected, None)


@pytest.mark.parametrize("limit", [0, 101, True, 2.0, "ten", "-1"])
def test_a_limit_outside_one_to_a_hundred_is_refused(limit):
    with pytest.raises(ValidationFailed) as caught:
        paging.load_page(None, limit, None, prefix="pst")
    assert list(caught.value.details) == ["limit"]


def test_a_cursor_is_the_last_id_of_the_page_before_of_the_listed_kind():
    last = new_id("inv")
    assert paging.load_page("open", 5, last, statuses=("open",), prefix="inv") == ("open", 5, last)
    for forged in (new_id("pst"), last + "\n", last.upper(), "", 7, "eyJhZnRlciI6ICJwcnZfMSJ9"):
        with pytest.raises(ValidationFailed) as caught:
            paging.load_page(None, 5, forged, prefix="inv")
        assert caught.value.details == {"cursor": [paging.NOT_ISSUED]}


def test_a_page_read_with_one_row_more_says_whether_another_follows():
    rows = [{"id": f"pst_{n}"} for n in range(3)]
    assert paging.split_page(rows, 2) == (rows[:2], "pst_1")
    assert paging.split_page(rows, 3) == (rows, None)
