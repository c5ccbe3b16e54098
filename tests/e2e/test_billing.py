"""From a signed contract to a paid-in-part invoice and a cost report, over HTTP against the stack running as
processes.

The award (as in test_contract) becomes a draft that the client backdates to last week's Monday (weekly billing,
payment due at once) with a milestone and a weekly SLA; both sign. The provider submits time for last week (one
entry over the weekly capacity is refused, one sent twice counted once) and the delivered milestone; the client
approves all but one, which it rejects with a reason. The provider's measurements breach last week's SLA window and
contracting's timer owes a credit. The operator's invoice run issues one invoice whose every line, the credit, the
tax treatment (a Mexican provider's services to a US business, the US in the configured tax table: reverse charge,
no tax, with its wording) and the total are right to the cent; a second run issues nothing. Due on its issue day
in the client's time zone, it is not overdue before that day has passed there; the client's finance key pays part
of it; the balance, the statement, the HTML and PDF documents and the cost report (JSON and CSV) agree. Strangers
see none of it.
"""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from pymongo import MongoClient
from pypdf import PdfReader

from shared.runtime import contracts
from tests.e2e.test_award import call, ok
from tests.e2e.test_contract import awarded, events_of
from tests.support import samples
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

SETTINGS = {
    "TASKLINKR_CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS": "0.5",
    "TASKLINKR_CONTRACTING_SLA_GRACE_SECONDS": "3",
    "TASKLINKR_BILLING_OVERDUE_INTERVAL_SECONDS": "0.5",
    "TASKLINKR_BILLING_TAX_RATES": "US=8.875",
}


@pytest.fixture(scope="module", autouse=True)
def short_timers_and_a_tax_rate():
    """Set before the module's stack starts (it copies the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SETTINGS.items():
            patch.setenv(name, value)
        yield


def cents(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")


def test_a_contracts_time_milestone_and_sla_breach_become_one_exact_invoice_paid_in_part_and_reported(
    stack, recorder, mongo_uri
):
    deal = awarded(stack, recorder, mongo_uri)
    client_key, provider_key = deal["client_key"], deal["provider_key"]
    tenant = ok(call(stack, "GET", "/v1/tenants/me", key=client_key))
    finance_key = ok(call(stack, "POST", f"/v1/tenants/{tenant['id']}/keys", key=client_key,
                          json={"role": "finance"}), 201)["api_key"]

    def as_(key, method, path, status=200, **kwargs):
        return ok(call(stack, method, path, key=key, **kwargs), status)

    assert wait_for(lambda: as_(client_key, "GET", "/v1/contracts")["items"], timeout=20)
    [draft] = as_(client_key, "GET", "/v1/contracts")["items"]
    contract_id = draft["id"]
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday() + 7)  # last week's Monday: that week is a closed period
    final = as_(client_key, "PATCH", f"/v1/contracts/{contract_id}", json={
        "start_date": monday.isoformat(),
        "terms": {"payment_due_days": 0},
        "milestones": [{"title": "Inbox migration", "due_date": None,
                        "amount": {"amount": "150.00", "currency": "USD"}}],
        "slas": [{"metric": "first_response_minutes", "target": "60", "direction": "at_most", "window": "weekly",
                  "credit": {"percent": "10", "cap": {"amount": "50.00", "currency": "USD"}}}]})
    as_(provider_key, "POST", f"/v1/contracts/{contract_id}/sign", json={"terms_hash": final["terms_hash"]})
    active = as_(client_key, "POST", f"/v1/contracts/{contract_id}/sign", json={"terms_hash": final["terms_hash"]})
    assert active["status"] == "active" and active["terms"]["billing_cycle"] == "weekly"
    account = f"/v1/billing-accounts/{contract_id}"
    assert wait_for(lambda: call(stack, "GET", account, key=client_key).status_code == 200, timeout=20)

    # Time for last week (20 h/week agreed), the milestone; one entry over capacity, one sent twice.
    day = [monday + timedelta(days=n) for n in range(5)]
    batch = {"items": [
        {"kind": "time", "key": "mon", "date": day[0].isoformat(), "hours": "3.5", "description": "Inbox triage"},
        {"kind": "time", "key": "tue", "date": day[1].isoformat(), "hours": "2.25", "description": "Scheduling"},
        {"kind": "time", "key": "wed", "date": day[2].isoformat(), "hours": "1", "description": "Unasked"},
        {"kind": "milestone", "key": "migration", "date": day[3].isoformat(), "milestone": 0}]}
    submitted = as_(provider_key, "POST", f"{account}/items", json=batch)
    assert (submitted["recorded"], submitted["duplicate"]) == (4, 0)
    assert as_(provider_key, "POST", f"{account}/items", json=batch)["duplicate"] == 4
    over = call(stack, "POST", f"{account}/items", key=provider_key, json={
        "kind": "time", "key": "thu", "date": day[3].isoformat(), "hours": "14", "description": "Too much"})
    assert over.status_code == 422 and "capacity" in over.json()["details"]["thu"][0], over.text
    assert call(stack, "POST", f"{account}/items", key=client_key, json=batch).status_code == 403
    ids = {item["key"]: item["id"] for item in submitted["items"]}
    for key in ("mon", "tue", "migration"):
        as_(client_key, "POST", f"{account}/items/{ids[key]}/approve")
    rejected = as_(client_key, "POST", f"{account}/items/{ids['wed']}/reject", json={"reason": "Not asked for."})
    assert (rejected["status"], rejected["reason"]) == ("rejected", "Not asked for.")

    # Last week's SLA window breached: contracting owes 10 % of the week's fees (12.75 x 20 h = 255.00) = 25.50.
    sla_id = active["slas"][0]["id"]
    measured = datetime(monday.year, monday.month, monday.day, 10, tzinfo=UTC)
    as_(provider_key, "POST", f"/v1/contracts/{contract_id}/measurements", json={"measurements": [
        {"key": "m1", "sla_id": sla_id, "value": "95", "measured_at": measured.isoformat()}]})
    [breach] = events_of(recorder, contract_id, "sla.breached.v1")
    assert breach["data"]["credit"] == {"amount": "25.50", "currency": "USD"}
    credits = MongoClient(mongo_uri)[stack.database_name("billing")].credits
    assert wait_for(lambda: credits.count_documents({"contract_id": contract_id}) == 1, timeout=20)

    # The operator's run issues one invoice; a second run nothing.
    run = ok(call(stack, "POST", "/v1/invoice-runs", json={"tenant_id": tenant["id"]}))
    assert run["invoices_issued"] == 1
    assert ok(call(stack, "POST", "/v1/invoice-runs", json={}))["invoices_issued"] == 0
    [summary] = as_(client_key, "GET", "/v1/invoices")["items"]
    invoice = as_(client_key, "GET", f"/v1/invoices/{summary['id']}")

    price = Decimal("12.75")
    time_lines = [Decimal(cents(Decimal("3.5") * price)), Decimal(cents(Decimal("2.25") * price))]  # 44.63, 28.69
    net = sum(time_lines) + Decimal("150.00") - Decimal("25.50")
    tax = Decimal(0)  # cross-border business services: the US client accounts for the tax
    assert [(line["kind"], line["amount"]["amount"]) for line in invoice["lines"]] == [
        ("time", "44.63"), ("time", "28.69"), ("milestone", "150.00"), ("sla_credit", "-25.50")]
    assert invoice["period"] == {"start": monday.isoformat(), "end": (monday + timedelta(days=6)).isoformat()}
    assert (invoice["number"], invoice["net"]["amount"]) == ("INV-000001", cents(net))
    assert (invoice["tax"]["treatment"], invoice["tax"]["amount"]["amount"]) == ("reverse_charge", "0.00")
    assert invoice["tax"]["note"] == "Reverse charge: the recipient accounts for the VAT in US."
    assert invoice["total"]["amount"] == cents(net + tax)
    [issued] = events_of(recorder, summary["id"], "invoice.issued.v1")
    assert issued["data"]["invoice"]["total"] == invoice["total"]

    # Due today in Chicago: overdue only once that day has passed there. Finance pays part; the balance and the
    # account agree.
    assert invoice["status"] == "issued"
    assert call(stack, "POST", f"/v1/invoices/{summary['id']}/payments", key=client_key,
                json={"amount": {"amount": "100.00", "currency": "USD"}, "reference": "x"}).status_code == 403
    paid = as_(finance_key, "POST", f"/v1/invoices/{summary['id']}/payments", 201,
               json={"amount": {"amount": "100.00", "currency": "USD"}, "reference": "ach-0001"})
    balance = cents(net + tax - 100)
    assert (paid["status"], paid["paid"]["amount"], paid["balance"]["amount"]) == ("partially_paid", "100.00",
                                                                                    balance)
    billing = as_(finance_key, "GET", account)
    assert (billing["balance"]["amount"], billing["overdue"]["amount"]) == (balance, "0.00")
    assert as_(provider_key, "GET", "/v1/invoices")["items"][0]["balance"]["amount"] == balance
    document = call(stack, "GET", f"/v1/invoices/{summary['id']}/document", key=finance_key)
    assert document.status_code == 200 and document.headers["Content-Type"].startswith("text/html")
    assert "INV-000001" in document.text and "Inbox migration" in document.text
    pdf = call(stack, "GET", f"/v1/invoices/{summary['id']}/pdf", key=finance_key)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Invoice INV-000001" in text and "Inbox migration" in text and f"{cents(net + tax)} USD" in text
    assert "Reverse charge" in text and "3.5 hours" in text
    statement = call(stack, "GET", f"/v1/invoices/{summary['id']}/statement", key=finance_key)
    assert statement.status_code == 200 and f"{balance} USD" in statement.text and "ach-0001" in statement.text

    # The provider corrects the invoice by a credit note; sent twice with its key after a lost answer, it credits
    # once.
    correction = {"amount": {"amount": "10.00", "currency": "USD"}, "reason": "An hour not worked."}
    key = {"Idempotency-Key": f"cn-{summary['id']}"}
    note = as_(provider_key, "POST", f"/v1/invoices/{summary['id']}/credit-notes", 201, json=correction, headers=key)
    again = as_(provider_key, "POST", f"/v1/invoices/{summary['id']}/credit-notes", 201, json=correction,
                headers=key)
    assert (again["id"], again["number"]) == (note["id"], "CN-000001")
    corrected = as_(finance_key, "GET", f"/v1/invoices/{summary['id']}")
    balance = cents(net + tax - 100 - 10)
    assert (corrected["credited"]["amount"], corrected["balance"]["amount"]) == ("10.00", balance)

    # The cost report adds up to the invoice less the credit note (all net: the invoice carries no tax); the saving
    # is against the client's in-house estimate.
    spend = net - 10
    as_(client_key, "PUT", "/v1/reports/in-house-costs",
        json={"monthly": {"administrative_support": {"amount": "3000.00", "currency": "USD"}}})
    period = {"from": monday.isoformat(), "months": 1}
    report = as_(finance_key, "GET", "/v1/reports/costs", params=period)
    [usd] = report["currencies"]
    assert usd["spend"]["amount"] == cents(spend) and usd["total"]["amount"] == cents(spend + tax)
    assert usd["credit_notes"]["amount"] == "10.00"
    assert usd["by_category"] == [{"key": "administrative_support", "spend": {"amount": cents(spend),
                                                                              "currency": "USD"}}]
    assert (usd["fixed"]["amount"], usd["variable"]["amount"]) == ("150.00", cents(sum(time_lines)))
    rows = list(csv.reader(io.StringIO(call(stack, "GET", "/v1/reports/costs.csv", key=client_key,
                                            params=period).text)))
    assert ["total", "spend", "USD", cents(spend), "", ""] in rows

    # Nobody else sees the invoice, the account or the report's figures.
    stranger = ok(call(stack, "POST", "/v1/providers", json=samples.individual_provider(display_name="Eve")), 201)
    other = ok(call(stack, "POST", "/v1/tenants", json=samples.tenant(name="Other Clinic")), 201)
    for key in (stranger["api_key"], other["api_key"]):
        assert call(stack, "GET", f"/v1/invoices/{summary['id']}", key=key).status_code == 404
        assert call(stack, "GET", account, key=key).status_code == 404
        assert call(stack, "GET", "/v1/invoices", key=key).json()["items"] == []
    assert as_(other["api_key"], "GET", "/v1/reports/costs", params=period)["currencies"] == []
    for event in recorder.drain():
        assert contracts.errors(event) == [], event["type"]
    assert [e for e in recorder.of_type("invoice.overdue.v1") if e["subject"] == summary["id"]] == []
