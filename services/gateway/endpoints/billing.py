"""The HTTP routes of billing: billable items, billing accounts, invoices, payments, credit notes, refunds, runs.

Billing runs in cells (docs/operations.md, Cells): an account and its items, invoices, payments and credit notes
live in the cell of their contract's lane, its client's segment. A client's calls travel in its own lane, so they
reach that cell. A provider's travel in the provider's lane (its kind) and the operator's in the default lane,
which need not be the contract's: their calls about one account or invoice are answered by the first lane that
finds it (``first_found``), their invoice lists merged from every lane, and the operator's run runs in every cell
(each on its own: one cell down does not stop the others, ``run_summary``).
"""

from __future__ import annotations

import base64
from typing import Any

from services.gateway.endpoints.common import page, party, payer
from services.gateway.entrypoints import ApiRequest, route
from services.gateway.errors import ServiceTimeout, ServiceUnavailable
from services.gateway.routes import CLIENT
from shared.vocabulary.errors import Unavailable


def merged_page(pages: list[dict], limit: int) -> dict:
    """One page of records paged by id (``items``, ``next_cursor``) from each lane's page after the same cursor:
    the first ``limit`` of them by id, with a cursor when any lane has more."""
    rows = sorted((row for one in pages for row in one["items"]), key=lambda row: row["id"])
    more = len(rows) > limit or any(one["next_cursor"] for one in pages)
    shown = rows[:limit]
    return {"items": shown, "next_cursor": shown[-1]["id"] if more and shown else None}


RUN_COUNTS = ("invoices_issued", "deferred_batches")
# How a cell fails to run when it, not the request, is at fault: down or not answering, or its database unavailable.
CELL_DOWN = (ServiceUnavailable, ServiceTimeout, Unavailable)


def run_summary(answers: dict[str, dict], failures: dict[str, Exception] | None = None) -> dict:
    """The operator's invoice run over every cell: each lane's counts summed.

    Each cell runs on its own, so one that is down does not stop the others: when some ran and the rest could not
    be reached, the answer is a 503 that says what each that ran did and why each other did not, and asking again
    is safe (a period is invoiced once: the cells that ran issue nothing twice). A failure of the request itself
    (an ``as_of`` after today) is the same in every cell and is raised as it is."""
    failures = failures or {}
    for failure in failures.values():
        if not isinstance(failure, CELL_DOWN) or not answers:
            raise failure
    if failures:
        raise ServiceUnavailable(
            f"The invoice run ran in {', '.join(answers)} but not in {', '.join(failures)}, whose billing could not "
            "be reached or could not run it; ask again: a period is invoiced once, so the lanes that ran issue "
            "nothing twice.",
            {"ran": {lane: {count: answer[count] for count in RUN_COUNTS} for lane, answer in answers.items()},
             "not_run": {lane: failure.to_dict() for lane, failure in failures.items()}})
    first = next(iter(answers.values()))
    return {"as_of": first["as_of"], **{count: sum(answer[count] for answer in answers.values())
                                        for count in RUN_COUNTS}}


class BillingRoutes:
    """Mixed into ``GatewayService``: uses its ``rpc`` and RPC proxies."""

    @route("submit_billable_items")
    def submit_billable_items(self, request: ApiRequest) -> dict:
        return self.rpc.first_found(self.billing.submit_items, party(request), request.path["contract_id"],
                                    request.body, idempotency_key=request.headers.get("Idempotency-Key"))

    @route("list_billable_items")
    def list_billable_items(self, request: ApiRequest) -> dict:
        return self.rpc.first_found(self.billing.list_items, party(request), request.path["contract_id"],
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
        return self.rpc.first_found(self.billing.get_account, party(request), request.path["contract_id"])

    @route("record_refund")
    def record_refund(self, request: ApiRequest) -> dict:
        return self.rpc.first_found(self.billing.record_refund, payer(request), request.path["contract_id"],
                                    request.body)

    @route("run_invoices")
    def run_invoices(self, request: ApiRequest) -> dict:
        return run_summary(*self.rpc.in_every_lane_settled(self.billing.run_invoices, request.body))

    @route("list_invoices")
    def list_invoices(self, request: ApiRequest) -> dict:
        asked: dict[str, Any] = {"status": request.query.get("status"), "contract_id": request.query.get("contract_id"),
                                 **page(request)}
        if request.caller.kind == CLIENT:  # every invoice of a client is in its own lane's cell
            return self.rpc(self.billing.list_invoices, payer(request), **asked)
        pages = self.rpc.in_every_lane(self.billing.list_invoices, payer(request), **asked)
        return merged_page(list(pages.values()), int(asked["limit"]))

    @route("get_invoice")
    def get_invoice(self, request: ApiRequest) -> dict:
        return self.rpc.first_found(self.billing.get_invoice, payer(request), request.path["invoice_id"])

    @route("get_invoice_document")
    def get_invoice_document(self, request: ApiRequest) -> str:
        return self.rpc.first_found(self.billing.render_invoice, payer(request), request.path["invoice_id"])

    @route("get_invoice_statement")
    def get_invoice_statement(self, request: ApiRequest) -> str:
        return self.rpc.first_found(self.billing.render_statement, payer(request), request.path["invoice_id"])

    @route("get_invoice_pdf")
    def get_invoice_pdf(self, request: ApiRequest) -> bytes:
        encoded = self.rpc.first_found(self.billing.render_invoice_pdf, payer(request), request.path["invoice_id"])
        return base64.b64decode(encoded)

    @route("record_payment")
    def record_payment(self, request: ApiRequest) -> dict:
        return self.rpc.first_found(self.billing.record_payment, payer(request), request.path["invoice_id"],
                                    request.body)

    @route("issue_credit_note")
    def issue_credit_note(self, request: ApiRequest) -> dict:
        return self.rpc.first_found(self.billing.issue_credit_note, payer(request), request.path["invoice_id"],
                                    request.body, idempotency_key=request.headers.get("Idempotency-Key"))
