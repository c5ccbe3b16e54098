"""The billing service: accounts from contracts, billable items and their approval, invoice runs with gapless
numbers per issuer (the provider), SLA credits, tax, payments and credit notes, overdue detection, cost reports.

Entrypoints only: each decodes its input (``schemas``), calls one use case of ``handlers`` (a change in one
transaction with its events, ``store.transact``; the outbox relay publishes them afterwards) and answers. Rules live
in ``domain`` (and ``tax``), the invoice run in ``runs``, storage in ``repository``, event keys and payloads in
``events``, the invoice document in ``documents``. An invoice or account is visible to its client organisation and
its provider only (and the operator): to anyone else it does not exist (404).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from shared.runtime.batches import subscribe_batch
from shared.runtime.messaging import subscribe
from shared.runtime.persistence import Database, UnitOfWork
from shared.runtime.rpc import rpc
from shared.runtime.timers import configured_timer
from shared.runtime.tracing import Tracing
from shared.vocabulary.idempotency import load_key

from . import documents, domain, events, handlers, repository, schemas
from .dependencies import Settings
from .repository import Repository

log = logging.getLogger(__name__)

TIMER_BATCH = 500


class BillingService:
    name = "billing"

    store = Database(ensure_indexes=repository.ensure_indexes)
    settings = Settings()
    correlation_id = Tracing()

    # -- what billing learns from the others -----------------------------------------------------------------------

    @subscribe_batch(events.POSTINGS, events.TENANT_REGISTERED)
    def on_tenant_registered(self, uow: UnitOfWork, envelopes: list[dict]) -> None:
        handlers.save_tenants(uow, [envelope["data"]["tenant"] for envelope in envelopes])

    @subscribe_batch(events.PROVIDERS, events.PROVIDER_REGISTERED)
    def on_provider_registered(self, uow: UnitOfWork, envelopes: list[dict]) -> None:
        handlers.save_providers(uow, [envelope["data"]["provider"] for envelope in envelopes])

    @subscribe_batch(events.PROVIDERS, events.PROVIDER_UPDATED)
    def on_provider_updated(self, uow: UnitOfWork, envelopes: list[dict]) -> None:
        handlers.save_providers(uow, [envelope["data"]["provider"] for envelope in envelopes])

    @subscribe(events.CONTRACTING, events.CONTRACT_ACTIVATED)
    def on_contract_activated(self, uow: UnitOfWork, envelope: dict) -> None:
        handlers.open_account(uow, envelope["data"]["contract"])

    @subscribe(events.CONTRACTING, events.CONTRACT_AMENDED)
    def on_contract_amended(self, uow: UnitOfWork, envelope: dict) -> None:
        data = envelope["data"]
        handlers.amend_account(uow, data["contract"], data["amendment"]["effective_date"])

    @subscribe(events.CONTRACTING, events.CONTRACT_COMPLETED)
    def on_contract_completed(self, uow: UnitOfWork, envelope: dict) -> None:
        data = envelope["data"]
        handlers.end_account(uow, data["contract"], data["completed_at"][:10])

    @subscribe(events.CONTRACTING, events.CONTRACT_TERMINATED)
    def on_contract_terminated(self, uow: UnitOfWork, envelope: dict) -> None:
        data = envelope["data"]
        handlers.end_account(uow, data["contract"], data["effective_date"])

    @subscribe(events.CONTRACTING, events.SLA_BREACHED)
    def on_sla_breached(self, uow: UnitOfWork, envelope: dict) -> None:
        handlers.record_sla_credit(uow, envelope["data"])

    # -- billable items ----------------------------------------------------------------------------------------------

    @rpc
    def submit_items(self, party: dict, contract_id: str, payload: Any, idempotency_key: str | None = None) -> dict:
        who, items = schemas.load_party(party), schemas.load_items(payload, idempotency_key)
        return self.store.transact_keyed(lambda uow: handlers.submit_items(uow, who, contract_id, items))

    @rpc
    def list_items(self, party: dict, contract_id: str, status: str | None = None,
                   limit: int = schemas.DEFAULT_PAGE, cursor: str | None = None) -> dict:
        who = schemas.load_party(party)
        status, limit, after = schemas.load_page(status, limit, cursor, ("submitted", "approved", "rejected"), "itm")
        return handlers.list_items(Repository(self.store.db), who, contract_id, status, limit, after)

    @rpc
    def review_item(self, party: dict, contract_id: str, item_id: str, decision: str,
                    payload: dict | None = None) -> dict:
        who = schemas.load_party(party)
        decision, reason = schemas.load_review(decision, payload)
        return self.store.transact(lambda uow: handlers.review_item(uow, who, contract_id, item_id, decision,
                                                                    reason))

    @rpc
    def get_account(self, party: dict, contract_id: str) -> dict:
        return handlers.account_summary(Repository(self.store.db), schemas.load_party(party), contract_id)

    # -- invoice runs ------------------------------------------------------------------------------------------------

    @rpc
    def run_invoices(self, payload: dict | None = None) -> dict:
        """On demand: invoice every period that ended before ``as_of`` (default today), for one tenant or all."""
        as_of, tenant_id = schemas.load_run(payload)
        return handlers.run_invoices(self.store.db, self.store.transact, self.settings, as_of, tenant_id)

    @configured_timer("BILLING_INVOICE_RUN_INTERVAL_SECONDS", 3600.0)
    def scheduled_invoice_run(self) -> None:
        """On schedule: the same run up to today, for every tenant."""
        summary = handlers.run_invoices(self.store.db, self.store.transact, self.settings, None, None)
        if summary["invoices_issued"]:
            log.info("invoice run issued %d invoices", summary["invoices_issued"])

    # -- invoices ------------------------------------------------------------------------------------------------------

    @rpc
    def list_invoices(self, party: dict, status: str | None = None, contract_id: str | None = None,
                      limit: int = schemas.DEFAULT_PAGE, cursor: str | None = None) -> dict:
        who = schemas.load_party(party)
        status, limit, after = schemas.load_page(status, limit, cursor, schemas.INVOICE_STATUSES, "inv")
        return handlers.list_invoices(Repository(self.store.db), who, status, contract_id, limit, after)

    @rpc
    def get_invoice(self, party: dict, invoice_id: str) -> dict:
        return handlers.get_invoice(Repository(self.store.db), schemas.load_party(party), invoice_id)

    @rpc
    def render_invoice(self, party: dict, invoice_id: str) -> str:
        """The invoice as a readable HTML document."""
        return documents.invoice_html(*handlers.printable(Repository(self.store.db), schemas.load_party(party),
                                                          invoice_id))

    @rpc
    def render_statement(self, party: dict, invoice_id: str) -> str:
        """Where the invoice stands now (status, payments, credit notes, balance), as an HTML document beside the
        invoice, which never changes."""
        return documents.statement_html(handlers.get_invoice(Repository(self.store.db), schemas.load_party(party),
                                                             invoice_id))

    @rpc
    def render_invoice_pdf(self, party: dict, invoice_id: str) -> str:
        """The invoice as a PDF document, base64-encoded (RPC payloads are JSON)."""
        printable = handlers.printable(Repository(self.store.db), schemas.load_party(party), invoice_id)
        return base64.b64encode(documents.invoice_pdf(*printable, self.settings.pdf_font)).decode("ascii")

    @rpc
    def record_payment(self, party: dict, invoice_id: str, payload: dict) -> dict:
        who, loaded = schemas.load_party(party), schemas.load_payment(payload)
        return self.store.transact_keyed(lambda uow: handlers.record_payment(uow, who, invoice_id, loaded))

    @rpc
    def record_refund(self, party: dict, contract_id: str, payload: dict) -> dict:
        who, loaded = schemas.load_party(party), schemas.load_refund(payload)
        return self.store.transact_keyed(lambda uow: handlers.record_refund(uow, who, contract_id, loaded))

    @rpc
    def issue_credit_note(self, party: dict, invoice_id: str, payload: dict,
                          idempotency_key: str | None = None) -> dict:
        who, loaded, key = schemas.load_party(party), schemas.load_credit_note(payload), load_key(idempotency_key)
        return self.store.transact_keyed(lambda uow: handlers.issue_credit_note(uow, who, invoice_id, loaded, key))

    @configured_timer("BILLING_OVERDUE_INTERVAL_SECONDS", 300.0)
    def detect_overdue(self) -> None:
        """Invoices with a balance past their due time are marked overdue and announced, once each."""
        handlers.mark_overdue_invoices(self.store.db, self.store.transact, repository.current_time(), TIMER_BATCH)

    # -- cost reports --------------------------------------------------------------------------------------------------

    @rpc
    def set_in_house_costs(self, tenant_id: str, payload: dict) -> dict:
        costs = schemas.load_in_house_costs(payload)
        return self.store.transact(lambda uow: handlers.set_in_house_costs(uow, tenant_id, costs))

    @rpc
    def get_in_house_costs(self, tenant_id: str) -> dict:
        return handlers.in_house_costs(Repository(self.store.db), tenant_id)

    @rpc
    def cost_report(self, tenant_id: str, start: str, months: int | None = None) -> dict:
        first, count = schemas.load_period(start, months)
        return handlers.cost_report(Repository(self.store.db), tenant_id, first, count)

    @rpc
    def cost_report_csv(self, tenant_id: str, start: str, months: int | None = None) -> str:
        first, count = schemas.load_period(start, months)
        report = handlers.cost_report(Repository(self.store.db), tenant_id, first, count)
        return documents.csv_text(domain.report_csv_rows(report))

    @rpc
    def health(self) -> dict:
        return handlers.health(Repository(self.store.db))
