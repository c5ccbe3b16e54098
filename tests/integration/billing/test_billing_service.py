"""The billing service over real RPC, a real broker and a real database: accounts from contracting's events,
billable items and their approval, invoice runs (figures to the cent, gapless numbers under concurrent runs),
payments, overdue detection, credit notes and cost reports.

Contract events arrive as contracting publishes them; every event billing emits is read from its outbox (written
in the same transaction as the change) and checked against its contract. Expected figures are computed here, from
the contract terms, independently of billing's code.
"""

import base64
import calendar
import csv
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from pypdf import PdfReader

from services.billing import repository, runs
from services.billing.service import BillingService
from shared.vocabulary.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.support.emitted import outbox
from tests.support.waiting import wait_for

from . import feeds

pytestmark = pytest.mark.integration

CENT = Decimal("0.01")
CLIENT_LEGAL = {"legal_name": "Praxis Weber GmbH", "address": "Hauptstraße 1\n10115 Berlin", "tax_id": "DE136695976"}
SUPPLIER_LEGAL = {"legal_name": "Ana Nowak Usługi Biurowe", "address": "ul. Długa 5\n00-001 Warszawa",
                  "tax_id": "PL5260250274", "payment_instructions": "IBAN PL61 1090 1014 0000 0712 1981 2874"}


def cents(value: Decimal) -> str:
    return format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")


def last_month() -> tuple[date, date]:
    first_of_this = datetime.now(UTC).date().replace(day=1)
    end = first_of_this - timedelta(days=1)
    return end.replace(day=1), end


@pytest.fixture
def config(service_config):
    return {**service_config, "BILLING_OVERDUE_INTERVAL_SECONDS": 0.2,
            "BILLING_INVOICE_RUN_INTERVAL_SECONDS": 3600, "BILLING_RUN_BATCH_SIZE": 2}


@pytest.fixture
def billing(container_factory, config, amqp_uri):
    container_factory(BillingService, config).start()
    with ServiceRpcProxy("billing", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=30) as proxy:
        yield proxy


class Parties:
    def __init__(self, amqp_uri, database, country="DE", time_zone="Europe/Berlin", provider_id=None,
                 provider_country="PL", provider_zone="Europe/Warsaw", tenant_legal=None, provider_legal=None):
        self.amqp_uri, self.database = amqp_uri, database
        self.tenant_id, self.provider_id = feeds.hex_id("ten"), provider_id or feeds.hex_id("prv")
        feeds.publish(amqp_uri, feeds.tenant_registered(self.tenant_id, country, time_zone, **(tenant_legal or {})))
        feeds.publish(amqp_uri, feeds.provider_registered(self.provider_id, provider_country, provider_zone,
                                                          **(provider_legal or {})))
        assert wait_for(lambda: database.tenants.count_documents({"_id": self.tenant_id}) == 1
                        and database.providers.count_documents({"_id": self.provider_id}) == 1)
        self.client = {"kind": "client", "tenant_id": self.tenant_id}
        self.provider = {"kind": "provider", "provider_id": self.provider_id}

    def activate(self, **terms) -> dict:
        wire = feeds.contract(tenant_id=self.tenant_id, provider_id=self.provider_id, **terms)
        feeds.publish(self.amqp_uri, feeds.contract_activated(wire))
        assert wait_for(lambda: self.database.accounts.count_documents({"_id": wire["id"]}) == 1)
        return wire

    def breach(self, wire, start: datetime, credit: str) -> None:
        feeds.publish(self.amqp_uri, feeds.sla_breached(wire, start, start + timedelta(days=7), credit))
        assert wait_for(lambda: self.database.credits.count_documents({"contract_id": wire["id"]}) >= 1)


def test_time_a_retainer_a_milestone_and_an_sla_breach_make_one_invoice_right_to_the_cent(
    billing, database, amqp_uri
):
    first, last = last_month()
    start = first + timedelta(days=3)  # the retainer is prorated over the days the contract ran that month
    parties = Parties(amqp_uri, database, tenant_legal=CLIENT_LEGAL, provider_legal=SUPPLIER_LEGAL)
    wire = parties.activate(engagement="retainer", price="1000.00", start=start,
                            milestones=[("Calendar migration", "250.00")])
    entries = {"items": [
        {"kind": "time", "key": "t1", "date": start.isoformat(), "hours": "2.5", "description": "Inbox triage"},
        {"kind": "time", "key": "t2", "date": (start + timedelta(days=1)).isoformat(), "hours": "3.25",
         "description": "Calendar clean-up"},
        {"kind": "time", "key": "t3", "date": (start + timedelta(days=2)).isoformat(), "hours": "1",
         "description": "Not asked for"},
        {"kind": "milestone", "key": "m0", "date": (start + timedelta(days=5)).isoformat(), "milestone": 0},
    ]}
    submitted = billing.submit_items(parties.provider, wire["id"], entries)
    assert (submitted["recorded"], submitted["duplicate"]) == (4, 0)
    ids = {item["key"]: item["id"] for item in submitted["items"]}
    for key in ("t1", "t2", "m0"):
        billing.review_item(parties.client, wire["id"], ids[key], "approve")
    rejected = billing.review_item(parties.client, wire["id"], ids["t3"], "reject", {"reason": "Not in scope."})
    assert (rejected["status"], rejected["reason"]) == ("rejected", "Not in scope.")
    parties.breach(wire, datetime(start.year, start.month, start.day, tzinfo=UTC), "13.37")

    summary = billing.run_invoices()
    assert summary["invoices_issued"] == 1
    [invoice] = billing.list_invoices(parties.client)["items"]
    invoice = billing.get_invoice(parties.client, invoice["id"])

    days = (last - start).days + 1
    retainer = (Decimal("1000.00") * days / calendar.monthrange(first.year, first.month)[1])
    net = Decimal(cents(retainer)) + Decimal("250.00") - Decimal("13.37")
    tax = Decimal(0)  # a Polish provider's services to a German business: reverse charge
    assert [(line["kind"], line["quantity"], line["amount"]["amount"]) for line in invoice["lines"]] == [
        ("retainer", str(days), cents(retainer)),
        ("time", "2.5", "0.00"), ("time", "3.25", "0.00"),  # the retainer pays for the hours
        ("milestone", "1", "250.00"),
        ("sla_credit", "1", "-13.37"),
    ]
    assert invoice["number"] == "INV-000001" and invoice["period"] == {"start": start.isoformat(),
                                                                      "end": last.isoformat()}
    assert invoice["charges"]["amount"] == cents(Decimal(cents(retainer)) + 250)
    assert (invoice["credits"]["amount"], invoice["net"]["amount"]) == ("13.37", cents(net))
    assert invoice["tax"] == {"country": "DE", "name": "VAT 0% (reverse charge)", "rate": "0",
                              "treatment": "reverse_charge",
                              "note": "Reverse charge: VAT to be accounted for by the recipient (Article 196, "
                                      "Directive 2006/112/EC).",
                              "amount": {"amount": "0.00", "currency": "EUR"}}
    assert invoice["supplier"] == {"id": parties.provider_id, "name": "Ana Nowak", "country": "PL", **SUPPLIER_LEGAL}
    assert invoice["client"] == {"id": parties.tenant_id, "name": "Praxis Weber", "country": "DE", **CLIENT_LEGAL}
    assert invoice["total"] == {"amount": cents(net + tax), "currency": "EUR"}
    assert invoice["fixed"]["amount"] == invoice["charges"]["amount"] and invoice["variable"]["amount"] == "0.00"
    assert (invoice["shoring"], invoice["balance"], invoice["status"]) == ("nearshore", invoice["total"], "issued")

    [issued] = outbox(database, "invoice.issued.v1")
    assert issued["data"]["invoice"]["total"] == invoice["total"] and issued["tenantid"] == parties.tenant_id
    [applied] = outbox(database, "credit.applied.v1")
    assert applied["data"]["credit"]["applied"]["amount"] == "13.37" and applied["subject"] == wire["id"]

    # Nothing is billed twice: a rerun issues nothing, and the document reads as the invoice.
    assert billing.run_invoices()["invoices_issued"] == 0
    html = billing.render_invoice(parties.client, invoice["id"])
    assert "Invoice INV-000001" in html and "Calendar migration" in html and cents(net + tax) in html
    assert "Article 196" in html and "Praxis Weber GmbH" in html and f"{days} days" in html
    for legal in (CLIENT_LEGAL["tax_id"], SUPPLIER_LEGAL["tax_id"], SUPPLIER_LEGAL["payment_instructions"],
                  "10115 Berlin", "Ana Nowak Usługi Biurowe"):
        assert legal in html, legal
    pdf_document = billing.render_invoice_pdf(parties.client, invoice["id"])
    pdf = PdfReader(io.BytesIO(base64.b64decode(pdf_document)))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Invoice INV-000001" in text and "Calendar migration" in text and f"{cents(net + tax)} EUR" in text
    assert CLIENT_LEGAL["tax_id"] in text and SUPPLIER_LEGAL["tax_id"] in text and "reverse charge" in text

    # Issued is fixed: a payment, and the client renaming itself, change the statement, never the document.
    billing.record_payment(parties.client, invoice["id"], {"amount": {"amount": "100.00", "currency": "EUR"},
                                                           "reference": "first"})
    feeds.publish(amqp_uri, feeds.tenant_registered(parties.tenant_id, "DE", "Europe/Berlin", name="Weber Praxis"))
    assert wait_for(lambda: database.tenants.find_one({"_id": parties.tenant_id})["name"] == "Weber Praxis")
    assert billing.render_invoice(parties.client, invoice["id"]) == html
    assert billing.render_invoice_pdf(parties.client, invoice["id"]) == pdf_document
    statement = billing.render_statement(parties.client, invoice["id"])
    assert "partially_paid" in statement and "100.00 EUR" in statement and "first" in statement


def test_hourly_time_is_billed_per_line_rounded_once_half_up(billing, database, amqp_uri):
    first, last = last_month()
    parties = Parties(amqp_uri, database, country="US", time_zone="America/Chicago")
    wire = parties.activate(engagement="hourly", price="13.25", start=first, currency="USD",
                            milestones=[("Onboarding", "99.99")])
    submitted = billing.submit_items(parties.provider, wire["id"], {"items": [
        {"kind": "time", "date": first.isoformat(), "hours": "2.5", "description": "Triage"},
        {"kind": "time", "date": (first + timedelta(days=1)).isoformat(), "hours": "3.25", "description": "Calls"},
        {"kind": "milestone", "date": (first + timedelta(days=1)).isoformat(), "milestone": 0},
    ]}, idempotency_key="week-1")
    for item in submitted["items"]:
        billing.review_item(parties.client, wire["id"], item["id"], "approve")
    parties.breach(wire, datetime(first.year, first.month, first.day, tzinfo=UTC), "3.64")
    billing.run_invoices()
    [summary] = billing.list_invoices(parties.provider)["items"]
    invoice = billing.get_invoice(parties.provider, summary["id"])
    # 2.5 h x 13.25 = 33.125 -> 33.13; 3.25 h x 13.25 = 43.0625 -> 43.06; the US has no VAT/GST.
    assert [line["amount"]["amount"] for line in invoice["lines"]] == ["33.13", "43.06", "99.99", "-3.64"]
    assert (invoice["charges"]["amount"], invoice["net"]["amount"], invoice["total"]["amount"]) == (
        "176.18", "172.54", "172.54")
    assert invoice["tax"]["rate"] == "0" and invoice["variable"]["amount"] == "76.19"
    assert invoice["period"]["end"] == last.isoformat()


def test_items_outside_the_contract_or_over_capacity_are_refused_and_duplicates_not_counted(
    billing, database, amqp_uri
):
    first, last = last_month()
    start = first + timedelta(days=7)
    monday = start + timedelta(days=(7 - start.weekday()) % 7)
    parties = Parties(amqp_uri, database)
    wire = parties.activate(engagement="hourly", price="20.00", start=start, end=last, hours_per_week=10)

    def refused(item):
        with pytest.raises(ValidationFailed) as error:
            billing.submit_items(parties.provider, wire["id"], item)
        return error.value.details[item["key"]][0]

    assert "before the contract starts" in refused(
        {"kind": "time", "key": "early", "date": first.isoformat(), "hours": "1", "description": "x"})
    assert "after the contract ends" in refused(
        {"kind": "time", "key": "late", "date": (last + timedelta(days=1)).isoformat(), "hours": "1",
         "description": "x"})
    assert "Usage is billed on per-unit contracts" in refused(
        {"kind": "usage", "key": "u", "date": start.isoformat(), "units": "3", "description": "tickets"})
    week = {"kind": "time", "key": "w1", "date": monday.isoformat(), "hours": "8", "description": "Work"}
    assert billing.submit_items(parties.provider, wire["id"], week)["recorded"] == 1
    again = billing.submit_items(parties.provider, wire["id"], week)
    assert (again["recorded"], again["duplicate"], again["items"][0]["outcome"]) == (0, 1, "duplicate")
    assert "Over the agreed capacity of 10 hours" in refused(
        {"kind": "time", "key": "w2", "date": (monday + timedelta(days=1)).isoformat(), "hours": "2.5",
         "description": "More"})
    with pytest.raises(ValidationFailed):  # the same key with other content
        billing.submit_items(parties.provider, wire["id"], {**week, "hours": "7"})
    assert database.items.count_documents({"contract_id": wire["id"]}) == 1

    # A day holds 24 hours per seat, however the hours are split into items.
    busy = parties.activate(engagement="hourly", price="20.00", start=start, end=last, hours_per_week=60)
    split = [{"kind": "time", "key": f"d{n}", "date": monday.isoformat(), "hours": "10", "description": "Work"}
             for n in range(3)]
    with pytest.raises(ValidationFailed) as day_over:
        billing.submit_items(parties.provider, busy["id"], {"items": split})
    assert list(day_over.value.details) == ["d2"] and "More than 24 hours in a day" in day_over.value.details["d2"][0]
    assert billing.submit_items(parties.provider, busy["id"], {"items": split[:2]})["recorded"] == 2
    with pytest.raises(ValidationFailed, match="Some items"):
        billing.submit_items(parties.provider, busy["id"], {**split[2], "hours": "4.5"})

    # Only the provider submits, only the client reviews, and nobody else sees the account.
    with pytest.raises(Forbidden):
        billing.submit_items(parties.client, wire["id"], {**week, "key": "w3"})
    [item] = billing.list_items(parties.client, wire["id"])["items"]
    with pytest.raises(Forbidden):
        billing.review_item(parties.provider, wire["id"], item["id"], "approve")
    with pytest.raises(ValidationFailed):
        billing.review_item(parties.client, wire["id"], item["id"], "reject")  # no reason
    billing.review_item(parties.client, wire["id"], item["id"], "approve")
    with pytest.raises(Conflict):
        billing.review_item(parties.client, wire["id"], item["id"], "reject", {"reason": "Changed my mind"})
    for stranger in ({"kind": "client", "tenant_id": feeds.hex_id("ten")},
                     {"kind": "provider", "provider_id": feeds.hex_id("prv")}):
        with pytest.raises(NotFound):
            billing.list_items(stranger, wire["id"])
        with pytest.raises(NotFound):
            billing.get_account(stranger, wire["id"])


def test_two_billing_workers_running_the_same_invoice_run_at_once_issue_each_invoice_once_without_gaps(
    container_factory, config, database, amqp_uri, billing
):
    """The provider issues the invoices (the platform bills as its agent): one gapless series per provider, across
    the clients it serves, even with runs for two clients and two replicas at once."""
    container_factory(BillingService, config).start()  # a second replica on the same database and queues
    first, _ = last_month()
    one = Parties(amqp_uri, database)
    other = Parties(amqp_uri, database, country="FR", time_zone="Europe/Paris", provider_id=one.provider_id)
    wires = [parties.activate(engagement="retainer", price=f"{100 + n}.00", start=first)
             for n in range(4) for parties in (one, other)]
    with ThreadPoolExecutor(4) as pool:
        def run(n):
            with ServiceRpcProxy("billing", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=60) as proxy:
                return proxy.run_invoices({"tenant_id": (one, other)[n % 2].tenant_id})
        summaries = list(pool.map(run, range(4)))

    assert sum(s["invoices_issued"] for s in summaries) == len(wires)
    invoices = list(database.invoices.find({"provider_id": one.provider_id}))
    assert sorted(i["sequence"] for i in invoices) == list(range(1, len(wires) + 1))  # no number twice, no gap
    assert {i["tenant_id"] for i in invoices} == {one.tenant_id, other.tenant_id}
    assert sorted(i["contract_id"] for i in invoices) == sorted(w["id"] for w in wires)
    assert len(outbox(database, "invoice.issued.v1")) == len(wires)
    assert database.counters.find_one({"_id": f"invoices:provider:{one.provider_id}"})["next"] == len(wires) + 1


def test_invoice_runs_asked_at_once_take_turns_batch_by_batch_and_each_issues_its_tenants_invoices(
    billing, database, amqp_uri, monkeypatch
):
    """Under load, batches issued at once in one process only shared its CPU and the database's, ran past their
    transaction budget and were deferred again and again: a process issues one batch at a time."""
    first, _ = last_month()
    tenants = [Parties(amqp_uri, database) for _ in range(3)]
    wires = [parties.activate(engagement="retainer", price="100.00", start=first) for parties in tenants]
    issue, at_once, most = runs.issue_batch, [0], [0]

    def slow_issue(*args, **kwargs):
        at_once[0] += 1
        most[0] = max(most[0], at_once[0])
        try:
            eventlet.sleep(0.2)  # a large batch: the other runs' batches would start meanwhile
            return issue(*args, **kwargs)
        finally:
            at_once[0] -= 1

    monkeypatch.setattr(runs, "issue_batch", slow_issue)
    with ThreadPoolExecutor(len(tenants)) as pool:
        def run(parties):
            with ServiceRpcProxy("billing", {"AMQP_URI": amqp_uri, "serializer": "json"}, timeout=60) as proxy:
                return proxy.run_invoices({"tenant_id": parties.tenant_id})
        summaries = list(pool.map(run, tenants))

    assert [s["invoices_issued"] for s in summaries] == [1, 1, 1]
    assert sorted(i["contract_id"] for i in database.invoices.find()) == sorted(w["id"] for w in wires)
    assert most[0] == 1


def test_a_providers_first_series_number_follows_the_highest_it_was_given_per_tenant_before(
    billing, database, amqp_uri
):
    """Migration: invoices numbered per client organisation before keep their numbers; the provider's own series
    starts after the highest of them, so it never repeats a number it already issued."""
    first, _ = last_month()
    parties = Parties(amqp_uri, database)
    wire = parties.activate(engagement="retainer", price="100.00", start=first)
    database.invoices.insert_one({"_id": feeds.hex_id("inv"), "tenant_id": feeds.hex_id("ten"),
                                  "provider_id": parties.provider_id, "contract_id": feeds.hex_id("ctr"),
                                  "sequence": 41, "number": "INV-000041", "period": {"start": "2000-01-01"}})
    assert billing.run_invoices({"tenant_id": parties.tenant_id})["invoices_issued"] == 1
    [invoice] = billing.list_invoices(parties.client, contract_id=wire["id"])["items"]
    assert invoice["number"] == "INV-000042"


def test_each_lane_numbers_an_issuers_invoices_in_its_own_block_and_a_block_never_runs_into_the_next(database):
    """Billing's cells (a database per lane) each keep an issuer's counter: the lanes' series are blocks of their
    own, so no number of one issuer is given twice; a series that would run past its block is refused."""
    repo = repository.Repository(database)
    provider_id = feeds.hex_id("prv")
    smb = repository.series_of(provider_id, "smb")
    enterprise = repository.series_of(provider_id, "enterprise")
    assert repo.allocate_in_series(repository.INVOICES, smb, 2) == 1
    assert repo.allocate_in_series(repository.INVOICES, enterprise, 2) == 500_000_001
    assert repo.allocate_in_series(repository.INVOICES, enterprise) == 500_000_003
    database.counters.update_one({"_id": f"{repository.INVOICES}:{smb}"}, {"$set": {"next": 500_000_000}})
    assert repo.allocate_in_series(repository.INVOICES, smb) == 500_000_000  # the block's last number
    with pytest.raises(Conflict, match="no numbers left"):
        repo.allocate_in_series(repository.INVOICES, smb)


def test_partial_payment_and_overdue_invoice_show_the_right_balances_and_overdue_is_announced_once(
    billing, database, amqp_uri, monkeypatch
):
    clock = monkeypatch
    first, _ = last_month()
    parties = Parties(amqp_uri, database, country="FR", time_zone="Europe/Paris", provider_country="FR",
                      provider_zone="Europe/Paris")  # a domestic supply: French VAT
    due_now = parties.activate(engagement="retainer", price="500.00", start=first, payment_due_days=0)
    later = parties.activate(engagement="retainer", price="300.00", start=first, payment_due_days=30)
    billing.run_invoices()
    by_contract = {i["contract_id"]: i for i in billing.list_invoices(parties.client)["items"]}
    overdue, current = by_contract[due_now["id"]], by_contract[later["id"]]
    assert (overdue["total"]["amount"], current["total"]["amount"]) == ("600.00", "360.00")  # FR VAT 20 %

    finance = {"kind": "client", "tenant_id": parties.tenant_id}
    paid = billing.record_payment(finance, overdue["id"], {"amount": {"amount": "250.00", "currency": "EUR"},
                                                           "reference": "wire-1"})
    assert (paid["paid"]["amount"], paid["balance"]["amount"], paid["outcome"]) == ("250.00", "350.00", "recorded")
    again = billing.record_payment(finance, overdue["id"], {"amount": {"amount": "250.00", "currency": "EUR"},
                                                            "reference": "wire-1"})
    assert (again["balance"]["amount"], again["outcome"]) == ("350.00", "duplicate")
    with pytest.raises(ValidationFailed):
        billing.record_payment(finance, overdue["id"], {"amount": {"amount": "1.00", "currency": "USD"},
                                                        "reference": "wire-2"})
    with pytest.raises(ValidationFailed, match="whole units of 0.01 EUR"):  # recorded as sent, or not at all
        billing.record_payment(finance, overdue["id"], {"amount": {"amount": "100.005", "currency": "EUR"},
                                                        "reference": "wire-2"})

    # Due on its issue day in Paris: not overdue before that day has passed there, overdue once it has.
    assert billing.get_invoice(parties.client, overdue["id"])["status"] == "partially_paid"
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    clock.setattr(repository, "current_time", lambda: tomorrow)
    assert wait_for(lambda: len(outbox(database, "invoice.overdue.v1")) == 1, timeout=10)
    [announced] = outbox(database, "invoice.overdue.v1")
    assert announced["subject"] == overdue["id"]
    assert announced["data"]["invoice"]["balance"]["amount"] == "350.00"
    after = billing.get_invoice(parties.client, overdue["id"])
    assert (after["status"], after["balance"]["amount"]) == ("overdue", "350.00")
    assert billing.get_invoice(parties.client, current["id"])["status"] == "issued"

    account = billing.get_account(parties.client, due_now["id"])
    assert (account["invoiced"]["amount"], account["paid"]["amount"], account["balance"]["amount"],
            account["overdue"]["amount"]) == ("600.00", "250.00", "350.00", "350.00")
    # A payment dated after now is refused.
    with pytest.raises(ValidationFailed, match="future"):
        billing.record_payment(finance, overdue["id"], {"amount": {"amount": "1.00", "currency": "EUR"},
                                                        "reference": "wire-x",
                                                        "received_at": (tomorrow + timedelta(hours=1)).isoformat()})
    # Overpaid: the invoice is paid and the 50.00 beyond it is the account's credit balance; the overdue check
    # still announced it once only.
    over = billing.record_payment(finance, overdue["id"], {"amount": {"amount": "400.00", "currency": "EUR"},
                                                           "reference": "wire-3"})
    assert (over["status"], over["balance"]["amount"]) == ("paid", "0.00")
    [excess] = [p["to_credit_balance"] for p in over["payments"] if p["reference"] == "wire-3"]
    assert excess == {"amount": "50.00", "currency": "EUR"}
    assert billing.get_account(parties.client, due_now["id"])["credit_balance"]["amount"] == "50.00"
    assert len(outbox(database, "payment.recorded.v1")) == 2
    assert len(outbox(database, "invoice.overdue.v1")) == 1
    provider_party = {"kind": "provider", "provider_id": parties.provider_id}
    with pytest.raises(Conflict, match="at most that can be refunded"):
        billing.record_refund(provider_party, due_now["id"], {"amount": {"amount": "50.01", "currency": "EUR"},
                                                              "reference": "refund-1"})
    refund = billing.record_refund(provider_party, due_now["id"], {"amount": {"amount": "20.00", "currency": "EUR"},
                                                                   "reference": "refund-1"})
    assert (refund["amount"]["amount"], refund["outcome"]) == ("20.00", "recorded")
    assert billing.get_account(parties.client, due_now["id"])["credit_balance"]["amount"] == "30.00"

    # A correction is a credit note; the invoice itself never changes.
    provider = {"kind": "provider", "provider_id": parties.provider_id}
    correction = {"amount": {"amount": "60.00", "currency": "EUR"}, "reason": "Two days not worked."}
    note = billing.issue_credit_note(provider, current["id"], correction, "cn-2days")
    assert (note["number"], note["invoice_number"]) == ("CN-000001", current["number"])
    assert (note["net"]["amount"], note["tax"]["amount"]) == ("50.00", "10.00")  # pro rata of 300.00 + 20 % VAT
    # Sent again after a lost answer, with its key: the same note, credited once.
    assert billing.issue_credit_note(provider, current["id"], correction, "cn-2days") == note
    with pytest.raises(Conflict):  # the key with another amount is another request
        billing.issue_credit_note(provider, current["id"], {**correction, "amount": {"amount": "6.00",
                                                                                     "currency": "EUR"}}, "cn-2days")
    with pytest.raises(ValidationFailed):  # a credit that rounds to nothing takes no number either
        billing.issue_credit_note(provider, current["id"], {"amount": {"amount": "0.004", "currency": "EUR"},
                                                            "reason": "Rounding."})
    corrected = billing.get_invoice(parties.client, current["id"])
    assert (corrected["total"]["amount"], corrected["credited"]["amount"], corrected["balance"]["amount"]) == (
        "360.00", "60.00", "300.00")
    with pytest.raises(Conflict):
        billing.issue_credit_note(provider, current["id"], {"amount": {"amount": "300.01", "currency": "EUR"},
                                                            "reason": "Too much"})
    with pytest.raises(Forbidden):
        billing.issue_credit_note(parties.client, current["id"], {"amount": {"amount": "1.00", "currency": "EUR"},
                                                                  "reason": "Mine"})
    assert len(outbox(database, "credit_note.issued.v1")) == 1
    # Credited in full, an invoice takes no payment.
    billing.issue_credit_note(provider, current["id"], {"amount": {"amount": "300.00", "currency": "EUR"},
                                                        "reason": "Cancelled"})
    with pytest.raises(Conflict, match="credited in full"):
        billing.record_payment(finance, current["id"], {"amount": {"amount": "1.00", "currency": "EUR"},
                                                        "reference": "wire-4"})


def test_the_cost_report_adds_up_to_the_invoices_in_json_and_csv(billing, database, amqp_uri):
    first, last = last_month()
    parties = Parties(amqp_uri, database)
    support = parties.activate(engagement="retainer", price="1200.00", start=first,
                               category="customer_inquiries", model="bpo")
    hourly = parties.activate(engagement="hourly", price="40.00", start=first, category="bookkeeping",
                              model="freelance")
    submitted = billing.submit_items(parties.provider, hourly["id"], {
        "kind": "time", "key": "k", "date": first.isoformat(), "hours": "7.5", "description": "Month end"})
    billing.review_item(parties.client, hourly["id"], submitted["items"][0]["id"], "approve")
    parties.breach(support, datetime(first.year, first.month, first.day, tzinfo=UTC), "50.00")
    billing.set_in_house_costs(parties.tenant_id, {"monthly": {
        "customer_inquiries": {"amount": "3000.00", "currency": "EUR"},
        "bookkeeping": {"amount": "200.00", "currency": "EUR"}}})
    billing.run_invoices()

    report = billing.cost_report(parties.tenant_id, first.isoformat(), 1)
    [eur] = report["currencies"]
    invoices = list(database.invoices.find({"tenant_id": parties.tenant_id}))
    net = sum(i["net"]["amount"].to_decimal() for i in invoices)
    assert eur["spend"]["amount"] == cents(net) == "1450.00"  # 1200 - 50 + 7.5 x 40
    for dimension in ("by_category", "by_model", "by_shoring", "by_provider"):
        assert sum(Decimal(row["spend"]["amount"]) for row in eur[dimension]) == net, dimension
    assert {row["key"]: row["spend"]["amount"] for row in eur["by_model"]} == {"bpo": "1150.00",
                                                                               "freelance": "300.00"}
    assert eur["by_shoring"] == [{"key": "nearshore", "spend": {"amount": "1450.00", "currency": "EUR"}}]
    assert (eur["fixed"]["amount"], eur["variable"]["amount"], eur["credits"]["amount"]) == (
        "1200.00", "300.00", "50.00")
    assert (eur["fixed_share_percent"], eur["variable_share_percent"]) == ("80.00", "20.00")
    savings = {row["category"]: row["saving"]["amount"] for row in eur["savings"]}
    assert savings == {"customer_inquiries": "1850.00", "bookkeeping": "-100.00"}  # one whole month each

    rows = list(csv.reader(io.StringIO(billing.cost_report_csv(parties.tenant_id, first.isoformat(), 1))))
    assert rows[0] == ["section", "key", "currency", "amount", "in_house_cost", "saving"]
    assert sum(Decimal(r[3]) for r in rows[1:] if r[0] == "category") == net
    assert ["total", "spend", "EUR", "1450.00", "", ""] in rows
    assert ["saving", "customer_inquiries", "EUR", "1150.00", "3000.00", "1850.00"] in rows

    # A credit note comes off the spend (its net; a reverse-charged invoice from Poland carries no tax), in its
    # invoice's category.
    [bookkeeping] = billing.list_invoices(parties.client, contract_id=hourly["id"])["items"]
    billing.issue_credit_note(parties.provider, bookkeeping["id"], {
        "amount": {"amount": "30.00", "currency": "EUR"}, "reason": "Three quarters of an hour billed twice."})
    [corrected] = billing.cost_report(parties.tenant_id, first.isoformat(), 1)["currencies"]
    assert (corrected["spend"]["amount"], corrected["credit_notes"]["amount"]) == ("1420.00", "30.00")
    assert (corrected["tax"]["amount"], corrected["total"]["amount"]) == ("0.00", "1420.00")
    assert {row["key"]: row["spend"]["amount"] for row in corrected["by_category"]}["bookkeeping"] == "270.00"

    # The period is months from its first day: a year by default; the month after holds none of these invoices.
    assert billing.cost_report(parties.tenant_id, first.isoformat())["currencies"] == [corrected]
    after = billing.cost_report(parties.tenant_id, (last + timedelta(days=1)).isoformat(), 1)
    assert (after["months"], after["currencies"]) == ("1", [])
    with pytest.raises(ValidationFailed):
        billing.cost_report(parties.tenant_id, first.isoformat(), 37)


def test_a_late_approval_lands_on_the_next_invoice_at_the_rate_of_its_day_and_a_completed_contract_bills_to_its_end(
    billing, database, amqp_uri
):
    last_start, _ = last_month()
    before_start = (last_start - timedelta(days=1)).replace(day=1)
    parties = Parties(amqp_uri, database)
    wire = parties.activate(engagement="hourly", price="10.00", start=before_start)
    early = billing.submit_items(parties.provider, wire["id"], {"items": [
        {"kind": "time", "key": "a", "date": before_start.isoformat(), "hours": "2", "description": "Approved"},
        {"kind": "time", "key": "b", "date": (before_start + timedelta(days=1)).isoformat(), "hours": "3",
         "description": "Approved late"}]})["items"]
    billing.review_item(parties.client, wire["id"], early[0]["id"], "approve")
    first = billing.run_invoices({"as_of": last_start.isoformat()})
    assert first["invoices_issued"] == 1
    [earlier] = billing.list_invoices(parties.client)["items"]
    overpaid = billing.record_payment(parties.client, earlier["id"], {
        "amount": {"amount": "25.00", "currency": "EUR"}, "reference": "rounded-up"})  # 20.00 was asked
    assert overpaid["balance"]["amount"] == "0.00"
    assert billing.get_account(parties.client, wire["id"])["credit_balance"]["amount"] == "5.00"

    late = billing.review_item(parties.client, wire["id"], early[1]["id"], "approve")
    assert late["billing_period"]["start"] == last_start.isoformat()  # its own period is invoiced already
    feeds.publish(amqp_uri, feeds.contract_amended(wire, price={"amount": "12.00", "currency": "EUR"}))
    assert wait_for(lambda: database.accounts.find_one({"_id": wire["id"]})["version"] == 2)
    feeds.publish(amqp_uri, feeds.contract_ended(wire, "contract.completed.v1", last_start + timedelta(days=9)))
    assert wait_for(lambda: database.accounts.find_one({"_id": wire["id"]})["status"] == "completed")
    assert billing.run_invoices()["invoices_issued"] == 1

    invoices = sorted(billing.list_invoices(parties.client)["items"], key=lambda i: i["number"])
    lines = [[line["amount"]["amount"] for line in billing.get_invoice(parties.client, i["id"])["lines"]]
             for i in invoices]
    # 2 h x 10.00; then 3 h done before the amendment took effect, still at 10.00 though invoiced after it
    assert lines == [["20.00"], ["30.00"]]
    following = billing.get_invoice(parties.client, invoices[1]["id"])  # paid first from the credit balance
    assert (following["paid"]["amount"], following["balance"]["amount"]) == ("5.00", "25.00")
    assert billing.get_account(parties.client, wire["id"])["credit_balance"]["amount"] == "0.00"
    assert invoices[1]["period"] == {"start": last_start.isoformat(),
                                     "end": (last_start + timedelta(days=9)).isoformat()}
    assert billing.get_account(parties.client, wire["id"])["next_period_end"] is None
    with pytest.raises(ValidationFailed):  # nothing is left to bill
        billing.submit_items(parties.provider, wire["id"], {
            "kind": "time", "key": "c", "date": last_start.isoformat(), "hours": "1", "description": "After"})


def test_a_breach_evaluated_after_the_last_invoice_is_settled_by_a_credit_note_and_the_excess_stays_owed(
    billing, database, amqp_uri
):
    first, last = last_month()
    parties = Parties(amqp_uri, database, country="FR", time_zone="Europe/Paris", provider_country="FR",
                      provider_zone="Europe/Paris")
    wire = parties.activate(engagement="retainer", price="500.00", start=first, end=last)
    assert billing.run_invoices()["invoices_issued"] == 1
    [invoice] = billing.list_invoices(parties.client)["items"]
    assert invoice["total"]["amount"] == "600.00"  # FR VAT 20 %

    # The last week's breach arrives after the last invoice (contracting waits a grace period): a credit note.
    last_week = datetime(last.year, last.month, last.day, tzinfo=UTC) - timedelta(days=6)
    parties.breach(wire, last_week, "50.00")
    assert wait_for(lambda: len(outbox(database, "credit_note.issued.v1")) == 1)
    [note] = outbox(database, "credit_note.issued.v1")
    # Worth what it would have been as a line of that invoice: 50.00 off the net and 10.00 off the VAT, not 50.00
    # off the gross.
    assert (note["data"]["credit_note"]["amount"], note["data"]["credit_note"]["invoice_number"]) == (
        {"amount": "60.00", "currency": "EUR"}, invoice["number"])
    assert (note["data"]["credit_note"]["net"]["amount"], note["data"]["credit_note"]["tax"]["amount"]) == (
        "50.00", "10.00")
    assert note["data"]["credit_note"]["reason"].startswith("SLA credit: ")
    feeds.publish(amqp_uri, feeds.sla_breached(wire, last_week, last_week + timedelta(days=7), "50.00"))  # again

    # A credit larger than what the invoice can still take: the rest is owed to the client, and shown.
    parties.breach(wire, last_week - timedelta(days=7), "700.00")
    assert wait_for(lambda: database.credits.count_documents({"contract_id": wire["id"]}) == 2)
    assert wait_for(lambda: len(outbox(database, "credit_note.issued.v1")) == 2)
    credited = billing.get_invoice(parties.client, invoice["id"])
    assert (credited["credited"]["amount"], credited["balance"]["amount"]) == ("600.00", "0.00")
    account = billing.get_account(parties.client, wire["id"])
    assert account["sla_credits_owed"] == {"amount": "250.00", "currency": "EUR"}  # 700.00 - the 450.00 net left
    assert sorted((c["owed"]["amount"], c["remaining"]["amount"], c["state"]) for c in account["sla_credits"]) == [
        ("50.00", "0.00", "settled_by_credit_note"), ("700.00", "250.00", "owed")]
    assert len(outbox(database, "credit_note.issued.v1")) == 2  # the repeated breach was not credited twice


def test_a_restarted_billing_service_runs_its_invoice_run_at_start_not_a_whole_interval_later(
    container_factory, config, amqp_uri, database
):
    running = container_factory(BillingService, config)  # the invoice run is hourly (3600 s)
    running.start()
    parties = Parties(amqp_uri, database)
    first, _ = last_month()
    wire = parties.activate(engagement="retainer", price="1000.00", start=first)
    assert database.invoices.count_documents({"contract_id": wire["id"]}) == 0
    running.stop()
    # A deploy or a rescheduled container: a process restarted more often than hourly still invoices.
    container_factory(BillingService, config).start()
    assert wait_for(lambda: database.invoices.count_documents({"contract_id": wire["id"]}) == 1, timeout=30)
