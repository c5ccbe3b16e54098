"""The billing routes: who may call each (finance named where it reads or pays), and response schemas that keep
everything billing answers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.billing import domain, schemas
from services.gateway.routes import BY_OPERATION, CLIENT, FINANCE, OPERATOR, PROVIDER_ITSELF, ROUTES
from tests.unit.billing.test_domain import account, credit, item

BILLING_ROUTES = [r for r in ROUTES if r.tag == "billing"]
NOW = datetime(2027, 2, 1, tzinfo=UTC)


def test_finance_reads_and_pays_but_never_submits_approves_or_runs():
    reads = {"list_billable_items", "get_billing_account", "list_invoices", "get_invoice", "get_invoice_document",
             "get_invoice_pdf", "get_invoice_statement", "get_cost_report", "get_cost_report_csv",
             "get_in_house_costs"}
    assert {r.operation for r in BILLING_ROUTES if FINANCE in r.who} == reads | {"record_payment"}
    assert BY_OPERATION["record_payment"].who == (FINANCE, OPERATOR)
    assert BY_OPERATION["submit_billable_items"].who == (PROVIDER_ITSELF,)
    assert BY_OPERATION["approve_billable_item"].who == BY_OPERATION["reject_billable_item"].who == (CLIENT,)
    assert BY_OPERATION["run_invoices"].who == (OPERATOR,)
    assert BY_OPERATION["issue_credit_note"].who == (PROVIDER_ITSELF, OPERATOR)
    for route in BILLING_ROUTES:
        if {"invoice_id", "contract_id"} & set(route.path_parameters):
            assert 404 in route.errors, route.operation
    assert {r.media_type for r in BILLING_ROUTES if r.response is None} == {"text/html", "text/csv",
                                                                            "application/pdf"}


def issued_invoice() -> dict:
    acct = account("retainer", "1000.00", milestones=[("Setup", "250.00")])
    invoice = domain.build_invoice(acct, ("2027-01-04", "2027-01-31"),
                                   [item(hours="2"), item("milestone", "2027-01-07", milestone=0)],
                                   [credit("10.00")], tax={"country": "DE", "name": "VAT 19%", "rate": "19"},
                                   shoring="nearshore", invoice_id="inv_1", sequence=1, now=NOW)
    return domain.with_payment(invoice, Decimal("100.00"))[0]


def test_the_invoice_schemas_keep_everything_billing_answers():
    invoice = issued_invoice()
    payment = {"id": "pay_1", "invoice_id": "inv_1", "tenant_id": "ten_1", "provider_id": "prv_1",
               "contract_id": "ctr_1", "amount": {"amount": "100.00", "currency": "USD"}, "reference": "ach-1",
               "received_at": NOW, "recorded_at": NOW, "to_credit_balance": {"amount": "0.00", "currency": "USD"}}
    note = {"id": "cn_1", "number": "CN-000001", "invoice_id": "inv_1", "invoice_number": "INV-000001",
            "tenant_id": "ten_1", "provider_id": "prv_1", "contract_id": "ctr_1",
            "amount": {"amount": "5.00", "currency": "USD"}, "reason": "Typo", "issued_at": NOW,
            "net": {"amount": "4.20", "currency": "USD"}, "tax": {"amount": "0.80", "currency": "USD"}}
    wire = {**schemas.invoice_to_wire(invoice, NOW + timedelta(days=40), [payment], [note]), "outcome": "recorded"}
    dumped = BY_OPERATION["get_invoice"].response().dump(wire)
    for kept in ("tenant_id", "provider_id"):  # the gateway's payment and note views leave out the parties
        for record in (*wire["payments"], *wire["credit_notes"]):
            record.pop(kept, None)
    for record in wire["payments"]:
        record.pop("invoice_id")
        record.pop("contract_id")
    assert dumped == wire
    assert dumped["status"] == "overdue" and dumped["balance"]["amount"] == wire["balance"]["amount"]
    page = {"items": [schemas.invoice_summary(invoice, NOW)], "next_cursor": None}
    assert BY_OPERATION["list_invoices"].response().dump(page) == page
    refund = {**schemas.refund_to_wire({"id": "rfd_1", "contract_id": "ctr_1", "tenant_id": "ten_1",
                                        "provider_id": "prv_1", "amount": {"amount": "20.00", "currency": "USD"},
                                        "reference": "r-1", "recorded_at": NOW}), "outcome": "recorded"}
    assert BY_OPERATION["record_refund"].response().dump(refund) == refund


def test_the_report_and_item_schemas_keep_everything_billing_answers():
    report = domain.cost_report([issued_invoice()], {"administrative_support": {"amount": "900.00",
                                                                                 "currency": "USD"}},
                                datetime(2027, 1, 1).date(), 1)
    assert BY_OPERATION["get_cost_report"].response().dump(report) == report
    approved = {**item(hours="2.5"), "contract_id": "ctr_1", "key": "k1", "units": None, "milestone": None,
                "status": "approved", "reason": None, "reviewed_at": NOW,
                "billing_period": {"start": "2027-01-04", "end": "2027-01-31"}}
    wire = schemas.item_to_wire(approved)
    assert BY_OPERATION["approve_billable_item"].response().dump(wire) == wire
    recorded = {"contract_id": "ctr_1", "recorded": 1, "duplicate": 0, "items": [{**wire, "outcome": "recorded"}]}
    assert BY_OPERATION["submit_billable_items"].response().dump(recorded) == recorded
