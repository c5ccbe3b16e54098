"""Billing's rules without I/O: periods, what is billable, invoice figures, credits, balances, tax, cost reports."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.billing import domain, tax
from shared.errors import Conflict

NOW = datetime(2027, 2, 1, 0, 5, tzinfo=UTC)


def account(engagement="hourly", price="13.25", start="2027-01-04", end=None, cycle="monthly", hours=20, seats=None,
            milestones=(), currency="USD", invoiced_through=None):
    terms = {"engagement_type": engagement, "unit": None, "price": {"amount": price, "currency": currency},
             "hours_per_week": hours, "seats": seats, "billing_cycle": cycle, "payment_due_days": 30}
    base = {"id": "ctr_1", "tenant_id": "ten_1", "provider_id": "prv_1", "centre_id": None, "title": "Inbox",
            "category": "administrative_support", "model": "virtual_assistant", "lane": "smb", "currency": currency,
            "terms": terms, "start_date": start, "end_date": end, "status": "active", "version": 1,
            "milestones": [{"title": t, "due_date": None, "amount": {"amount": a, "currency": currency}}
                           for t, a in milestones],
            "invoiced_through": invoiced_through, "revision": 1}
    return domain.with_next_period(base)


def item(kind="time", when="2027-01-05", **fields):
    return {"id": f"itm_{when}_{kind}", "kind": kind, "date": when, "submitted_at": NOW, "description": "Work",
            **fields}


def credit(amount, end="2027-01-11"):
    start = datetime.fromisoformat(end).replace(tzinfo=UTC) - timedelta(days=7)
    return {"id": f"crd_{end}_{amount}", "metric": "first_response_minutes",
            "window": {"start": start, "end": start + timedelta(days=7)},
            "remaining": {"amount": amount, "currency": "USD"}}


def test_monthly_periods_are_calendar_months_clipped_to_the_contract():
    acct = account(start="2027-01-04", end="2027-03-10")
    assert domain.next_period(acct) == ("2027-01-04", "2027-01-31")
    assert acct["next_period_end"] == "2027-01-31"
    later = domain.with_next_period({**acct, "invoiced_through": "2027-02-28"})
    assert domain.next_period(later) == ("2027-03-01", "2027-03-10")
    done = domain.with_next_period({**acct, "invoiced_through": "2027-03-10"})
    assert domain.next_period(done) is None and done["next_period_end"] is None


def test_after_an_extension_the_rest_of_the_cut_short_period_is_billed_once_from_the_first_day_not_invoiced():
    ended = account(engagement="retainer", price="3100.00", start="2027-01-01", end="2027-03-15",
                    invoiced_through="2027-03-15")
    assert domain.next_period(ended) is None
    extended = domain.with_next_period({**ended, "end_date": "2027-06-30"})
    assert domain.next_period(extended) == ("2027-03-16", "2027-03-31")
    assert domain.open_period_for(extended, date(2027, 3, 20)) == ("2027-03-16", "2027-03-31")
    assert domain.open_period_for(extended, date(2027, 3, 2)) == ("2027-03-16", "2027-03-31")  # invoiced: next one
    untaxed = {"country": None, "name": "No VAT/GST", "rate": "0"}
    invoice = domain.build_invoice(extended, ("2027-03-16", "2027-03-31"), [], [], tax=untaxed, shoring="offshore",
                                   invoice_id="inv_2", sequence=2, now=NOW)
    assert invoice["total"]["amount"] == "1600.00"  # 16 of March's 31 days, not the whole month again
    weekly = account(start="2027-01-04", end="2027-01-13", cycle="weekly", invoiced_through="2027-01-13")
    after = domain.with_next_period({**weekly, "end_date": "2027-01-31"})
    assert domain.next_period(after) == ("2027-01-14", "2027-01-17")


def test_weekly_periods_are_iso_weeks():
    acct = account(start="2027-01-06", cycle="weekly")  # a Wednesday
    assert domain.next_period(acct) == ("2027-01-06", "2027-01-10")
    assert domain.billing_period(acct, date(2027, 1, 13)) == ("2027-01-11", "2027-01-17")


def test_something_dated_in_an_invoiced_period_is_billed_in_the_next_open_one():
    acct = account(invoiced_through="2027-01-31")
    assert domain.open_period_for(acct, date(2027, 1, 20)) == ("2027-02-01", "2027-02-28")
    assert domain.open_period_for(acct, date(2027, 3, 2)) == ("2027-03-01", "2027-03-31")


def test_a_whole_month_of_retainer_is_exactly_the_price_and_a_part_is_prorated_by_days():
    assert domain.retainer_fee(Decimal("1000.00"), date(2027, 2, 1), date(2027, 2, 28)) == Decimal("1000.00")
    assert domain.money(domain.retainer_fee(Decimal("1000.00"), date(2027, 1, 4), date(2027, 1, 31)), "EUR") == {
        "amount": "903.23", "currency": "EUR"}  # 28/31 x 1000 = 903.2258...


def test_each_line_is_rounded_once_half_up_then_summed_and_tax_is_rounded_once_on_the_net():
    acct = account(milestones=[("Setup", "99.99")])
    items = [item(hours="2.5"), item(when="2027-01-06", hours="3.25"), item("milestone", "2027-01-07", milestone=0)]
    invoice = domain.build_invoice(acct, ("2027-01-04", "2027-01-31"), items, [credit("3.64")],
                                   tax={"country": "DE", "name": "VAT 19%", "rate": "19"}, shoring="offshore",
                                   invoice_id="inv_1", sequence=7, now=NOW)
    assert [line["amount"]["amount"] for line in invoice["lines"]] == ["33.13", "43.06", "99.99", "-3.64"]
    assert invoice["number"] == "INV-000007"
    assert (invoice["charges"]["amount"], invoice["net"]["amount"]) == ("176.18", "172.54")
    assert invoice["tax"]["amount"]["amount"] == "32.78"  # 172.54 x 0.19 = 32.7826
    assert invoice["total"]["amount"] == "205.32"
    assert (invoice["fixed"]["amount"], invoice["variable"]["amount"]) == ("99.99", "76.19")
    assert invoice["due_date"] == "2027-03-03" and invoice["open"] is True


def test_credits_never_take_an_invoice_below_zero_and_the_rest_is_carried():
    acct = account()
    invoice = domain.build_invoice(acct, ("2027-01-04", "2027-01-31"), [item(hours="1")],
                                   [credit("10.00", "2027-01-11"), credit("5.00", "2027-01-18")],
                                   tax={"country": None, "name": "No VAT/GST", "rate": "0"}, shoring=None,
                                   invoice_id="inv_1", sequence=1, now=NOW)
    assert invoice["net"]["amount"] == "0.00" and invoice["credits"]["amount"] == "13.25"
    assert [(a["applied"]["amount"], a["remaining"]["amount"]) for a in invoice["credit_applications"]] == [
        ("10.00", "0.00"), ("3.25", "1.75")]


def test_time_on_a_retainer_is_shown_without_charge_and_a_fixed_price_without_milestones_bills_at_the_end():
    lines = domain.charge_lines(account("retainer", "800.00"), ("2027-02-01", "2027-02-28"),
                                [item(when="2027-02-02", hours="4")])
    assert [(line["kind"], line["raw"]) for line in lines] == [("retainer", Decimal("800.00")),
                                                               ("time", Decimal(0))]
    fixed = account("fixed", "5000.00", start="2027-01-04", end="2027-02-15")
    assert domain.charge_lines(fixed, ("2027-01-04", "2027-01-31"), []) == []
    [last] = domain.charge_lines(fixed, ("2027-02-01", "2027-02-15"), [])
    assert (last["kind"], last["raw"]) == ("milestone", Decimal("5000.00"))


@pytest.mark.parametrize(("change", "why"), [
    ({"date": "2027-01-03"}, "before the contract starts"),
    ({"date": "2027-03-01"}, "after the contract ends"),
    ({"date": "2027-01-29", "hours": Decimal("25")}, "More than 24 hours"),
    ({"date": "2027-01-29", "hours": Decimal("5")}, "Over the agreed capacity of 20 hours"),
    ({"kind": "usage", "units": "3"}, "per-unit contracts only"),
    ({"kind": "milestone", "milestone": 3}, "has no milestone 3"),
])
def test_items_outside_the_contract_or_over_capacity_are_refused_with_the_reason(change, why):
    acct = account(end="2027-02-28")
    proposed = {"kind": "time", "date": "2027-01-05", "hours": Decimal("2"), **change}
    assert why in domain.check_billable(acct, proposed, date(2027, 2, 20), Decimal("16"), False)


def test_a_second_submission_of_a_milestone_and_a_future_date_are_refused():
    acct = account(milestones=[("Setup", "10.00")])
    assert "already submitted" in domain.check_billable(acct, {"kind": "milestone", "date": "2027-01-05",
                                                               "milestone": 0}, date(2027, 2, 1), Decimal(0), True)
    assert "in the future" in domain.check_billable(acct, {"kind": "time", "date": "2027-01-05",
                                                           "hours": Decimal(1)}, date(2027, 1, 4), Decimal(0), False)


def test_the_hours_already_on_a_day_count_against_its_24_hours_per_seat():
    acct = account(hours=60)
    ten = {"kind": "time", "date": "2027-01-05", "hours": Decimal("10")}
    assert domain.check_billable(acct, ten, date(2027, 2, 1), Decimal("10"), False, Decimal("10")) is None
    assert "24 hours in a day" in domain.check_billable(acct, ten, date(2027, 2, 1), Decimal("20"), False,
                                                        Decimal("20"))
    two_seats = account(hours=60, seats=2)
    assert domain.check_billable(two_seats, ten, date(2027, 2, 1), Decimal("20"), False, Decimal("20")) is None


def test_seats_multiply_capacity():
    acct = account(hours=40, seats=3)
    assert domain.check_billable(acct, {"kind": "time", "date": "2027-01-05", "hours": Decimal("20")},
                                 date(2027, 2, 1), Decimal("100"), False) is None


def test_a_review_is_decided_once():
    submitted = {"status": "submitted"}
    approved = domain.review_item(submitted, "approve", None, NOW)
    assert approved["status"] == "approved"
    assert domain.review_item(approved, "approve", None, NOW) is approved
    with pytest.raises(Conflict):
        domain.review_item(approved, "reject", "No", NOW)


def test_balances_through_payments_credit_notes_and_the_due_time():
    invoice = {"total": {"amount": "100.00", "currency": "EUR"}, "paid": {"amount": "0.00", "currency": "EUR"},
               "credited": {"amount": "0.00", "currency": "EUR"}, "currency": "EUR", "revision": 1,
               "due_at": NOW + timedelta(days=30)}
    assert domain.status_of(invoice, NOW) == "issued"
    partly = domain.with_payment(invoice, Decimal("40"))
    assert (domain.status_of(partly, NOW), domain.balance_of(partly)) == ("partially_paid", Decimal("60.00"))
    assert domain.status_of(partly, NOW + timedelta(days=31)) == "overdue"
    noted = domain.with_credit_note(partly, Decimal("60"))
    assert (domain.status_of(noted, NOW), noted["open"]) == ("paid", False)
    with pytest.raises(Conflict):
        domain.with_credit_note(noted, Decimal("40.01"))
    assert domain.status_of(domain.with_payment(partly, Decimal("70")), NOW) == "overpaid"


def test_the_tax_table_is_configurable_and_an_unknown_country_is_untaxed_and_says_so():
    table = tax.tax_table("DE=7,XK=18")
    assert tax.tax_for("DE", table) == {"country": "DE", "name": "VAT 7%", "rate": "7"}
    assert tax.tax_for("XK", table)["rate"] == "18"
    assert tax.tax_for("AU", table)["name"] == "GST 10%"
    assert tax.tax_for("US", table) == {"country": "US", "name": "No VAT/GST (US is not in the tax table)",
                                        "rate": "0"}
    assert tax.tax_for(None, table)["name"] == "No VAT/GST (client country unknown)"
    with pytest.raises(ValueError):
        tax.tax_table("DE=nineteen")


def test_months_are_counted_by_days_in_each_month():
    assert domain.months_between(date(2027, 1, 1), date(2027, 3, 31)) == 3
    assert domain.months_between(date(2027, 2, 15), date(2027, 2, 28)) == Decimal(14) / 28


class _Providers:
    def __init__(self, zone):
        self.zone = zone

    def providers(self, ids):
        return {ids[0]: {"id": ids[0], "time_zone": self.zone}} if self.zone else {}


def test_a_provider_bills_its_own_today_wherever_it_works():
    from services.billing.service import _providers_today

    acct = account()
    late_utc = datetime(2027, 2, 1, 20, 30, tzinfo=UTC)  # already Feb 2 in Auckland, still Feb 1 in Bogotá
    assert _providers_today(_Providers("Pacific/Auckland"), acct, late_utc) == date(2027, 2, 2)
    assert _providers_today(_Providers("America/Bogota"), acct, late_utc) == date(2027, 2, 1)
    assert _providers_today(_Providers(None), acct, late_utc) == date(2027, 2, 2)  # not known yet: UTC+14
