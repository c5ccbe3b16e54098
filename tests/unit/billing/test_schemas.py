import pytest

from services.billing import schemas
from shared.vocabulary.errors import ValidationFailed


def test_a_cursor_is_the_last_id_of_the_page_before_of_the_listed_kind_and_anything_else_is_refused():
    item, invoice = "itm_" + "ab" * 16, "inv_" + "ab" * 16
    assert schemas.load_page(None, 20, item, schemas.INVOICE_STATUSES, "itm") == (None, 20, item)
    assert schemas.load_page("paid", 5, invoice, schemas.INVOICE_STATUSES, "inv") == ("paid", 5, invoice)
    for forged in (invoice, "aXRtXzE=", item + "\n", ""):
        with pytest.raises(ValidationFailed) as caught:
            schemas.load_page(None, 20, forged, schemas.INVOICE_STATUSES, "itm")
        assert caught.value.details == {"cursor": ["Not a cursor this API gave out."]}
