"""The routes of billing: billable items, billing accounts, invoices, payments, credit notes, refunds."""

from __future__ import annotations

from services.gateway import schemas
from services.gateway.routes.common import _AUTH, _BODY, _UPSTREAM, CLIENT, FINANCE, OPERATOR, PROVIDER_ITSELF, Route

BILLING: tuple[Route, ...] = (
    Route(
        "submit_billable_items", "POST", "/v1/billing-accounts/{contract_id}/items",
        "Submit time entries, usage or a delivered milestone, one or a batch", who=(PROVIDER_ITSELF,),
        tag="billing", request=schemas.BillableItemsSchema, response=schemas.BillableItemsRecordedSchema,
        errors=(*_BODY, *_AUTH, 404, *_UPSTREAM),
        description="The contract's provider. Each item has an idempotency `key` (or the `Idempotency-Key` header "
        "plus its position makes one): sent again with the same content it is a duplicate (acknowledged, not "
        "counted again), with other content the batch is refused. Items dated outside the contract, in the future, "
        "over the agreed weekly capacity (hours_per_week x seats), or of a kind the contract does not bill are "
        "refused (422) with the reason per key; then none of the batch is recorded.",
        headers={"Idempotency-Key": "Keys the items that carry no key of their own."}, keyed_batch=True,
    ),
    Route(
        "list_billable_items", "GET", "/v1/billing-accounts/{contract_id}/items",
        "A contract's billable items and their approval", who=(CLIENT, FINANCE, PROVIDER_ITSELF), tag="billing",
        query=schemas.BillableItemQuerySchema, response=schemas.BillableItemPageSchema,
        errors=(422, *_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "approve_billable_item", "POST", "/v1/billing-accounts/{contract_id}/items/{item_id}/approve",
        "Approve a billable item: it is billed on the next invoice", who=(CLIENT,), tag="billing",
        response=schemas.BillableItemSchema, errors=(*_AUTH, 404, 409, *_UPSTREAM),
        description="Billed in the period of its date, or in the first period not invoiced yet when that one is. "
        "Approving twice is one approval; an item rejected before is 409.",
    ),
    Route(
        "reject_billable_item", "POST", "/v1/billing-accounts/{contract_id}/items/{item_id}/reject",
        "Reject a billable item, with the reason", who=(CLIENT,), tag="billing",
        request=schemas.RejectionSchema, response=schemas.BillableItemSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
    ),
    Route(
        "get_billing_account", "GET", "/v1/billing-accounts/{contract_id}",
        "A contract's billing account: terms, what is invoiced, paid and owed", who=(CLIENT, FINANCE, PROVIDER_ITSELF),
        tag="billing", response=schemas.BillingAccountSchema, errors=(*_AUTH, 404, *_UPSTREAM),
    ),
    Route(
        "record_refund", "POST", "/v1/billing-accounts/{contract_id}/refunds",
        "Record a refund of the account's credit balance", who=(PROVIDER_ITSELF, OPERATOR), tag="billing",
        status=201, request=schemas.RefundCreateSchema, response=schemas.RefundSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="Money of the credit balance (overpayments) paid back to the client; at most the balance "
        "(409 above it). The `reference` is its idempotency key.",
    ),
    Route(
        "run_invoices", "POST", "/v1/invoice-runs", "Run the invoice run now", who=(OPERATOR,), tag="billing",
        request=schemas.InvoiceRunSchema, response=schemas.InvoiceRunSummarySchema,
        errors=(*_BODY, *_AUTH, 409, *_UPSTREAM),
        description="Issues one invoice per contract and billing period that ended before `as_of`, as the "
        "scheduled run does. Running it again (or twice at once) issues nothing twice; numbers stay gapless. "
        "An `as_of` after today (UTC) is 409: a run cannot look into the future. Billing deployed in cells runs in "
        "each cell on its own: when some ran and another could not be reached, the answer is 503 with `details.ran` "
        "(each lane that ran, with its counts) and `details.not_run` (each other lane's error); ask again, the lanes "
        "that ran issue nothing twice.",
    ),
    Route(
        "list_invoices", "GET", "/v1/invoices", "Invoices: a client's own, the ones a provider billed",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing",
        query=schemas.InvoiceListQuerySchema, response=schemas.InvoicePageSchema,
        errors=(422, *_AUTH, *_UPSTREAM),
    ),
    Route(
        "get_invoice", "GET", "/v1/invoices/{invoice_id}", "An invoice with its lines, payments and balance",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing", response=schemas.InvoiceSchema,
        errors=(*_AUTH, 404, *_UPSTREAM),
        description="Only the client organisation billed and the provider billing (and the operator); anyone else "
        "gets 404. An issued invoice never changes: corrections are credit notes.",
    ),
    Route(
        "get_invoice_document", "GET", "/v1/invoices/{invoice_id}/document", "The invoice as an HTML document",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing", errors=(*_AUTH, 404, *_UPSTREAM),
        media_type="text/html",
        description="The invoice as issued, readable and printable, and never different afterwards: the parties as "
        "named then (legal names, addresses, tax ids), quantities with units, unit prices, a retainer's proration "
        "basis, totals, the tax treatment's wording (reverse charge), payment instructions. Status and balance "
        "are on its statement. Errors are JSON.",
    ),
    Route(
        "get_invoice_statement", "GET", "/v1/invoices/{invoice_id}/statement",
        "Where an invoice stands now: status, payments, credit notes, balance (HTML)",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing", errors=(*_AUTH, 404, *_UPSTREAM),
        media_type="text/html",
        description="Beside the invoice document, which shows the invoice as issued and never changes.",
    ),
    Route(
        "get_invoice_pdf", "GET", "/v1/invoices/{invoice_id}/pdf", "The invoice as a PDF document",
        who=(CLIENT, FINANCE, PROVIDER_ITSELF, OPERATOR), tag="billing", errors=(*_AUTH, 404, *_UPSTREAM),
        media_type="application/pdf",
        description="The same content as the HTML document, as an A4 PDF (fonts embedded); errors are JSON.",
    ),
    Route(
        "record_payment", "POST", "/v1/invoices/{invoice_id}/payments", "Record a payment (full, partial or over)",
        who=(FINANCE, OPERATOR), tag="billing", status=201,
        request=schemas.PaymentCreateSchema, response=schemas.InvoiceSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="The `reference` is the payment's idempotency key: the same reference and amount again is the "
        "same payment (`outcome: duplicate`), another amount 409. In the invoice's currency. A payment received "
        "in the future is 422; an invoice credited in full takes none (409). What it pays beyond the balance "
        "becomes the account's credit balance: the next invoice is paid from it, or it is refunded.",
    ),
    Route(
        "issue_credit_note", "POST", "/v1/invoices/{invoice_id}/credit-notes", "Correct an invoice by a credit note",
        who=(PROVIDER_ITSELF, OPERATOR), tag="billing", status=201,
        request=schemas.CreditNoteCreateSchema, response=schemas.CreditNoteSchema,
        errors=(*_BODY, *_AUTH, 404, 409, *_UPSTREAM),
        description="At most what is left of the invoice's total after earlier notes (409 above it); states the "
        "net and tax it corrects, pro rata of the invoice. Numbered gaplessly in the provider's series "
        "(CN-000001, ...). Send an `Idempotency-Key` and retry with it after a "
        "504: the same key is the same note; with another amount or reason it is 409.",
        headers={"Idempotency-Key": "Makes the note safe to retry; reuse it when retrying."},
    ),
)
