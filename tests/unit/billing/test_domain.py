"""Billing's rules without I/O: periods, what is billable, invoice figures, credits, balances, tax, cost reports."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.billing import domain, tax
from shared.vocabulary.errors import Conflict, ValidationFailed

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


def test_a_batch_counts_the_hours_and_milestones_of_its_own_accepted_items_but_not_of_refused_ones():
    acct = account(hours=20, milestones=[("Setup", "10.00")])
    batch = domain.ItemBatch(acct, date(2027, 2, 1), {"2027-01-04": {"2027-01-04": Decimal("4")}}, set())
    assert batch.refusal({"kind": "time", "date": "2027-01-05", "hours": "12"}) is None
    assert "capacity of 20 hours" in batch.refusal({"kind": "time", "date": "2027-01-06", "hours": "5"})
    assert batch.refusal({"kind": "time", "date": "2027-01-06", "hours": "4"}) is None  # the 5 refused never counted
    assert batch.refusal({"kind": "milestone", "date": "2027-01-05", "milestone": 0}) is None
    assert "already submitted" in batch.refusal({"kind": "milestone", "date": "2027-01-06", "milestone": 0})


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
    partly, excess = domain.with_payment(invoice, Decimal("40"))
    assert (domain.status_of(partly, NOW), domain.balance_of(partly), excess) == ("partially_paid",
                                                                                  Decimal("60.00"), 0)
    assert domain.status_of(partly, NOW + timedelta(days=31)) == "overdue"
    noted = domain.with_credit_note(partly, Decimal("60"))
    assert (domain.status_of(noted, NOW), noted["open"]) == ("paid", False)
    with pytest.raises(Conflict):
        domain.with_credit_note(noted, Decimal("40.01"))


def test_an_overpayment_pays_the_invoice_and_the_rest_is_a_credit_balance_the_next_invoice_uses():
    invoice = {"total": {"amount": "100.00", "currency": "EUR"}, "paid": {"amount": "0.00", "currency": "EUR"},
               "credited": {"amount": "0.00", "currency": "EUR"}, "currency": "EUR", "revision": 1,
               "due_at": NOW + timedelta(days=30)}
    paid, excess = domain.with_payment(invoice, Decimal("130.00"))
    assert (domain.status_of(paid, NOW), domain.balance_of(paid), excess) == ("paid", 0, Decimal("30.00"))
    acct = domain.with_credit_balance_change(account(currency="EUR"), excess, NOW)
    assert acct["credit_balance"] == {"amount": "30.00", "currency": "EUR"}
    following, used = domain.with_credit_balance({**invoice, "open": True}, domain.credit_balance_of(acct))
    assert (used, domain.balance_of(following), following["paid_from_credit_balance"]["amount"]) == (
        Decimal("30.00"), Decimal("70.00"), "30.00")
    with pytest.raises(Conflict, match="at most that can be refunded"):
        domain.with_credit_balance_change(acct, Decimal("-30.01"), NOW)


def test_a_payment_received_in_the_future_or_on_an_invoice_credited_in_full_is_refused():
    invoice = {"total": {"amount": "100.00", "currency": "EUR"}, "paid": {"amount": "0.00", "currency": "EUR"},
               "credited": {"amount": "0.00", "currency": "EUR"}, "currency": "EUR", "revision": 1}
    domain.check_payable(invoice, NOW, NOW)
    domain.check_payable(invoice, NOW + timedelta(minutes=1), NOW)  # the payer's clock a little ahead of ours
    with pytest.raises(ValidationFailed, match="future"):
        domain.check_payable(invoice, NOW + timedelta(minutes=5, seconds=1), NOW)
    with pytest.raises(Conflict, match="credited in full"):
        domain.check_payable(domain.with_credit_note(invoice, Decimal("100.00")), NOW, NOW)


def test_an_invoice_is_overdue_once_its_due_date_has_passed_in_the_clients_time_zone():
    # Issued 2027-02-01 00:05 UTC is still 31 January in Chicago: due 30 days after the client's issue day, and
    # overdue from the midnight after that day there, not 30 x 24 h after the issue instant.
    due_date, due_at = domain.due_of(NOW, 30, "America/Chicago")
    assert due_date == "2027-03-02"
    assert due_at == datetime(2027, 3, 3, 6, 0, tzinfo=UTC)  # midnight in Chicago (UTC-6)
    tokyo_date, tokyo_at = domain.due_of(NOW, 30, "Asia/Tokyo")
    assert (tokyo_date, tokyo_at) == ("2027-03-03", datetime(2027, 3, 3, 15, 0, tzinfo=UTC))
    invoice = domain.build_invoice(account(currency="USD"), ("2027-01-04", "2027-01-31"), [item(hours="1")], [],
                                   tax={"country": "US", "name": "No VAT/GST", "rate": "0"}, shoring=None,
                                   invoice_id="inv_1", sequence=1, now=NOW, client_zone="America/Chicago")
    assert (invoice["due_date"], invoice["due_at"]) == ("2027-03-02", due_at)
    assert domain.status_of(invoice, due_at - timedelta(seconds=1)) == "issued"
    assert domain.status_of(invoice, due_at) == "overdue"


def test_the_tax_table_is_configurable_and_an_unknown_country_is_untaxed_and_says_so():
    table = tax.tax_table("DE=7,XK=18")
    assert tax.tax_for("DE", table) == {"country": "DE", "name": "VAT 7%", "rate": "7", "treatment": "domestic",
                                        "note": None}
    assert tax.tax_for("XK", table)["rate"] == "18"
    assert tax.tax_for("AU", table)["name"] == "GST 10%"
    assert tax.tax_for("US", table) == {"country": "US", "name": "No VAT/GST (US is not in the tax table)",
                                        "rate": "0", "treatment": "not_in_table", "note": None}
    assert tax.tax_for(None, table)["name"] == "No VAT/GST (client country unknown)"
    with pytest.raises(ValueError):
        tax.tax_table("DE=nineteen")


@pytest.mark.parametrize(("supplier", "client", "treatment", "rate", "wording"), [
    ("DE", "DE", "domestic", "19", "VAT 19%"),
    ("PL", "DE", "reverse_charge", "0", "Article 196, Directive 2006/112/EC"),  # EU to EU, B2B services
    ("PH", "GB", "reverse_charge", "0", "the recipient accounts for the VAT in GB"),
    ("IN", "AU", "reverse_charge", "0", "the recipient accounts for the GST in AU"),
    ("DE", "US", "outside_scope", "0", "Not subject to VAT/GST in DE"),
    ("US", "US", "not_in_table", "0", "US is not in the tax table"),
    (None, "FR", "domestic", "20", "VAT 20%"),  # billing has not heard of the provider: the client's rate
])
def test_tax_follows_the_rule_table_by_the_suppliers_and_the_clients_country(supplier, client, treatment, rate,
                                                                            wording):
    treated = tax.tax_for(client, tax.tax_table(None), supplier)
    assert (treated["treatment"], treated["rate"]) == (treatment, rate)
    assert wording in treated["name"] + " " + (treated["note"] or "")


def test_months_are_counted_by_days_in_each_month():
    assert domain.months_between(date(2027, 1, 1), date(2027, 3, 31)) == 3
    assert domain.months_between(date(2027, 2, 15), date(2027, 2, 28)) == Decimal(14) / 28


class _Providers:
    def __init__(self, zone):
        self.zone = zone

    def providers(self, ids):
        return {ids[0]: {"id": ids[0], "time_zone": self.zone}} if self.zone else {}


def test_a_provider_bills_its_own_today_wherever_it_works():
    from services.billing.handlers import providers_today as _providers_today

    acct = account()
    late_utc = datetime(2027, 2, 1, 20, 30, tzinfo=UTC)  # already Feb 2 in Auckland, still Feb 1 in Bogotá
    assert _providers_today(_Providers("Pacific/Auckland"), acct, late_utc) == date(2027, 2, 2)
    assert _providers_today(_Providers("America/Bogota"), acct, late_utc) == date(2027, 2, 1)
    assert _providers_today(_Providers(None), acct, late_utc) == date(2027, 2, 2)  # not known yet: UTC+14


def test_an_amendment_bills_work_from_its_effective_date_and_never_reprices_earlier_work():
    acct = account(price="10.00", start="2027-01-04", cycle="monthly", seats=None)
    amended_contract = {"version": 2, "terms": {**acct["terms"], "price": {"amount": "12.00", "currency": "USD"}},
                        "milestones": [], "end_date": None, "title": "Inbox"}
    amended = domain.amend_account(acct, amended_contract, "2027-01-20", NOW)
    invoice = domain.build_invoice(amended, ("2027-01-04", "2027-01-31"),
                                   [item(when="2027-01-19", hours="3"), item(when="2027-01-20", hours="3")], [],
                                   tax={"country": "US", "name": "No VAT/GST", "rate": "0"}, shoring=None,
                                   invoice_id="inv_1", sequence=1, now=NOW)
    assert [(line["unit_price"]["amount"], line["amount"]["amount"]) for line in invoice["lines"]] == [
        ("10.00", "30.00"), ("12.00", "36.00")]  # the day before the amendment keeps the old rate


def test_a_retainer_amended_mid_month_bills_each_part_at_its_own_price_with_its_basis():
    acct = account(engagement="retainer", price="3100.00", start="2027-01-01")
    contract = {"version": 2, "terms": {**acct["terms"], "price": {"amount": "6200.00", "currency": "USD"}},
                "milestones": [], "end_date": None, "title": "Inbox"}
    amended = domain.amend_account(acct, contract, "2027-01-21", NOW)
    lines = domain.build_invoice(amended, ("2027-01-01", "2027-01-31"), [], [],
                                 tax={"country": "US", "name": "No VAT/GST", "rate": "0"}, shoring=None,
                                 invoice_id="inv_1", sequence=1, now=NOW)["lines"]
    assert [(line["description"], line["quantity"], line["unit"], line["basis"], line["amount"]["amount"])
            for line in lines] == [
        ("Retainer 2027-01-01 to 2027-01-20", "20", "days", "20/31 of the monthly retainer", "2000.00"),
        ("Retainer 2027-01-21 to 2027-01-31", "11", "days", "11/31 of the monthly retainer", "2200.00")]


def test_capacity_is_checked_against_the_hours_agreed_on_the_day_of_the_work():
    acct = account(hours=10, start="2027-01-04")
    contract = {"version": 2, "terms": {**acct["terms"], "hours_per_week": 40}, "milestones": [], "end_date": None,
                "title": "Inbox"}
    amended = domain.amend_account(acct, contract, "2027-01-18", NOW)
    before = item(when="2027-01-12", hours=Decimal(12))
    after = item(when="2027-01-19", hours=Decimal(12))
    assert "capacity of 10 hours" in domain.check_billable(amended, before, date(2027, 1, 31), Decimal(0), False)
    assert domain.check_billable(amended, after, date(2027, 1, 31), Decimal(0), False) is None


def _issued(net="100.00", rate="19", currency="EUR"):
    tax_amount = domain.round_money(Decimal(net) * Decimal(rate) / 100, currency)
    return {"id": "inv_1", "currency": currency, "net": {"amount": net, "currency": currency},
            "tax": {"country": "DE", "name": f"VAT {rate}%", "rate": rate,
                    "amount": {"amount": format(tax_amount, "f"), "currency": currency}},
            "total": {"amount": format(Decimal(net) + tax_amount, "f"), "currency": currency},
            "paid": {"amount": "0", "currency": currency}, "credited": {"amount": "0", "currency": currency}}


def test_a_credit_note_states_the_net_and_tax_it_corrects_pro_rata_of_its_invoice():
    invoice = _issued("100.00", "19")  # total 119.00
    assert domain.credit_note_split(invoice, Decimal("59.50")) == (Decimal("50.00"), Decimal("9.50"))
    net, tax_part = domain.credit_note_split(invoice, Decimal("10.00"))
    assert (net, tax_part) == (Decimal("8.40"), Decimal("1.60")) and net + tax_part == Decimal("10.00")


def test_an_sla_credit_by_credit_note_takes_off_what_the_same_credit_as_an_invoice_line_would():
    acct = account(engagement="retainer", price="500.00", start="2027-01-01", currency="EUR")
    vat = {"country": "DE", "name": "VAT 19%", "rate": "19"}
    on_invoice = domain.build_invoice(acct, ("2027-01-01", "2027-01-31"), [], [credit("33.33")], tax=vat,
                                      shoring=None, invoice_id="inv_1", sequence=1, now=NOW)
    without = domain.build_invoice(acct, ("2027-01-01", "2027-01-31"), [], [], tax=vat, shoring=None,
                                   invoice_id="inv_2", sequence=2, now=NOW)
    net, tax_part = domain.sla_credit_split(without, Decimal("33.33"))
    assert net == Decimal("33.33")
    assert domain.amount_of(without["total"]) - net - tax_part == domain.amount_of(on_invoice["total"])
    assert domain.amount_of(without["tax"]["amount"]) - tax_part == domain.amount_of(on_invoice["tax"]["amount"])


def _reported(invoice_period=("2027-02-15", "2027-02-28"), net="500.00"):
    return {"id": "inv_1", "currency": "EUR", "category": "bookkeeping", "model": "freelance", "shoring": None,
            "provider_id": "prv_1", "period": {"start": invoice_period[0], "end": invoice_period[1]},
            "net": {"amount": net, "currency": "EUR"},
            "tax": {"rate": "19", "amount": {"amount": "95.00", "currency": "EUR"}},
            "total": {"amount": "595.00", "currency": "EUR"}, "fixed": {"amount": net, "currency": "EUR"},
            "variable": {"amount": "0.00", "currency": "EUR"}, "credits": {"amount": "0.00", "currency": "EUR"}}


def test_the_cost_report_deducts_credit_notes_from_spend_tax_and_total():
    note = {"invoice_id": "inv_1", "amount": {"amount": "119.00", "currency": "EUR"},
            "net": {"amount": "100.00", "currency": "EUR"}, "tax": {"amount": "19.00", "currency": "EUR"}}
    [eur] = domain.cost_report([_reported()], {}, date(2027, 2, 1), 1, [note])["currencies"]
    assert (eur["spend"]["amount"], eur["tax"]["amount"], eur["total"]["amount"], eur["credit_notes"]["amount"]) == (
        "400.00", "76.00", "476.00", "100.00")
    assert eur["by_category"] == [{"key": "bookkeeping", "spend": {"amount": "400.00", "currency": "EUR"}}]


def test_a_report_period_is_its_months_from_the_first_day_up_to_the_day_before_the_same_day_months_later():
    assert domain.report_period(date(2027, 1, 1), 12) == (date(2027, 1, 1), date(2027, 12, 31))
    assert domain.report_period(date(2027, 1, 15), 1) == (date(2027, 1, 15), date(2027, 2, 14))
    assert domain.report_period(date(2027, 11, 30), 3) == (date(2027, 11, 30), date(2028, 2, 28))  # no Feb 30th
    assert domain.report_period(date(2028, 1, 31), 1) == (date(2028, 1, 31), date(2028, 2, 28))
    # Nothing is dated past the platform's last day, and the report never says a day beyond it.
    assert domain.report_period(date(2999, 6, 1), 36) == (date(2999, 6, 1), date(2999, 12, 31))


def test_the_report_says_the_period_it_covers():
    report = domain.cost_report([_reported()], {}, date(2027, 2, 1), 36)
    assert (report["from"], report["to"], report["months"]) == ("2027-02-01", "2030-01-31", "36")


def test_the_in_house_saving_compares_the_days_the_spend_covers_not_the_whole_range():
    estimate = {"bookkeeping": {"amount": "2800.00", "currency": "EUR"}}
    # The report asks for January to March; the work ran 14 days of February: 14/28 of a month in-house.
    [eur] = domain.cost_report([_reported()], estimate, date(2027, 1, 1), 3)["currencies"]
    [saving] = eur["savings"]
    assert (saving["months_compared"], saving["in_house_cost"]["amount"], saving["saving"]["amount"]) == (
        "0.5", "1400.00", "900.00")
