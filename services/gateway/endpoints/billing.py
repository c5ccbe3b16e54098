"""The HTTP routes of billing: billable items, billing accounts, invoices, payments, credit notes, refunds, runs."""

from __future__ import annotations

import base64

from services.gateway.endpoints.common import page, party, payer
from services.gateway.entrypoints import ApiRequest, route


class BillingRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    @route("submit_billable_items")
    def submit_billable_items(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.submit_items, party(request), request.path["contract_id"], request.body,
                        idempotency_key=request.headers.get("Idempotency-Key"))

    @route("list_billable_items")
    def list_billable_items(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.list_items, party(request), request.path["contract_id"],
                        status=request.query.get("status"), **page(request))

    @route("approve_billable_item")
    def approve_billable_item(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.review_item, party(request), request.path["contract_id"],
                        request.path["item_id"], "approve")

    @route("reject_billable_item")
    def reject_billable_item(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.review_item, party(request), request.path["contract_id"],
                        request.path["item_id"], "reject", request.body)

    @route("get_billing_account")
    def get_billing_account(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.get_account, party(request), request.path["contract_id"])

    @route("record_refund")
    def record_refund(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.record_refund, payer(request), request.path["contract_id"], request.body)

    @route("run_invoices")
    def run_invoices(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.run_invoices, request.body)

    @route("list_invoices")
    def list_invoices(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.list_invoices, payer(request), status=request.query.get("status"),
                        contract_id=request.query.get("contract_id"), **page(request))

    @route("get_invoice")
    def get_invoice(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.get_invoice, payer(request), request.path["invoice_id"])

    @route("get_invoice_document")
    def get_invoice_document(self, request: ApiRequest) -> str:
        return self.rpc(self.billing.render_invoice, payer(request), request.path["invoice_id"])

    @route("get_invoice_statement")
    def get_invoice_statement(self, request: ApiRequest) -> str:
        return self.rpc(self.billing.render_statement, payer(request), request.path["invoice_id"])

    @route("get_invoice_pdf")
    def get_invoice_pdf(self, request: ApiRequest) -> bytes:
        encoded = self.rpc(self.billing.render_invoice_pdf, payer(request), request.path["invoice_id"])
        return base64.b64decode(encoded)

    @route("record_payment")
    def record_payment(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.record_payment, payer(request), request.path["invoice_id"], request.body)

    @route("issue_credit_note")
    def issue_credit_note(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.issue_credit_note, payer(request), request.path["invoice_id"],
                        request.body, idempotency_key=request.headers.get("Idempotency-Key"))
