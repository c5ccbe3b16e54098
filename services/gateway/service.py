"""The HTTP gateway: one RPC call per route. Checks, errors and JSON live in entrypoints.py and errors.py."""

from __future__ import annotations

import base64
from typing import NoReturn

from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from werkzeug.wrappers import Request

from services.gateway import console, openapi
from services.gateway.audit import AuditTrail
from services.gateway.auth import Authentication
from services.gateway.commands import InboundCommands
from services.gateway.dependencies import DeadLetterCounts, HealthProbe, TenantSweeper, TimedRpc
from services.gateway.entrypoints import ApiRequest, Reply, console_files, fallback, route
from services.gateway.routes import CLIENT, OPERATOR
from services.gateway.webserver import unrouted
from shared.runtime.timers import configured_timer
from shared.runtime.tracing import Tracing, new_id
from shared.tools.tenantsweep import SEEN

DEFAULT_PAGE = 20
# How long a rotated key keeps working when the request does not say (KEY_ROTATION_GRACE_SECONDS).
DEFAULT_GRACE_SECONDS = 24 * 3600
PAGING = ("limit", "cursor")


def _page(request: ApiRequest) -> dict:
    """Which page a list route asks for: ``limit`` (default 20) and ``cursor``."""
    return {"limit": request.query.get("limit", DEFAULT_PAGE), "cursor": request.query.get("cursor")}


class GatewayService(InboundCommands):
    """HTTP routes here; commands from tenants' systems over the broker in ``InboundCommands``."""

    name = "gateway"

    providers = RpcProxy("providers")
    postings = RpcProxy("postings")
    matching = RpcProxy("matching")
    contracting = RpcProxy("contracting")
    billing = RpcProxy("billing")
    tracing = Tracing()
    auth = Authentication()
    audit = AuditTrail()
    rpc = TimedRpc()
    probe = HealthProbe()
    dead_letters = DeadLetterCounts()
    tenant_sweep = TenantSweeper()
    config = Config()

    @configured_timer("TENANT_SWEEP_INTERVAL_SECONDS", 30.0)
    def sweep_tenant_access(self) -> None:
        """Remove what tenants' broker users declared beyond their rights, each removal on the audit trail."""
        if self.tenant_sweep is not None:
            self.tenant_sweep.run(self.audit.collection.database[SEEN], self.audit.swept)

    # --- tenants -----------------------------------------------------------------------------------------------

    @route("create_tenant")
    def create_tenant(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.create_tenant, request.body)

    @route("get_own_tenant")
    def get_own_tenant(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.get_tenant, request.caller.tenant_id)

    # --- providers ---------------------------------------------------------------------------------------------

    @route("register_provider")
    def register_provider(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.register, request.body)

    @route("search_providers")
    def search_providers(self, request: ApiRequest) -> dict:
        filters = {k: v for k, v in request.query.items() if k not in PAGING}
        return self.rpc(self.providers.search, filters, **_page(request))

    @route("get_provider")
    def get_provider(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.get, request.path["provider_id"])

    @route("update_provider")
    def update_provider(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.update, request.path["provider_id"], request.body)

    @route("set_provider_availability")
    def set_provider_availability(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.set_availability, request.path["provider_id"], request.body)

    @route("verify_provider")
    def verify_provider(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.providers.verify, request.path["provider_id"], request.caller.actor, note=request.body.get("note")
        )

    # --- postings ----------------------------------------------------------------------------------------------

    @route("create_posting")
    def create_posting(self, request: ApiRequest) -> dict:
        # Without a key from the client a retry after a timeout would create a second posting; a generated key
        # still makes nameko-level redelivery of this one call harmless.
        idempotency_key = request.headers.get("Idempotency-Key") or new_id()
        return self.rpc(
            self.postings.create_posting, request.caller.tenant_id, request.body, idempotency_key=idempotency_key
        )

    @route("list_postings")
    def list_postings(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.list_postings,
            request.caller.tenant_id,
            status=request.query.get("status"),
            **_page(request),
        )

    @route("get_posting")
    def get_posting(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.get_posting, request.caller.tenant_id, request.path["posting_id"])

    @route("update_posting")
    def update_posting(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.update_posting, request.caller.tenant_id, request.path["posting_id"], request.body
        )

    @route("publish_posting")
    def publish_posting(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.publish_posting,
            request.caller.tenant_id,
            request.path["posting_id"],
            confirm_core=bool(request.body.get("confirm_core", False)),
        )

    @route("cancel_posting")
    def cancel_posting(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.cancel_posting, request.caller.tenant_id, request.path["posting_id"], request.body["reason"]
        )

    # --- invitations and proposals -----------------------------------------------------------------------------------

    @staticmethod
    def _party(request: ApiRequest) -> dict:
        """Who negotiates: the calling client organisation or the calling provider."""
        caller = request.caller
        if caller.kind == CLIENT:
            return {"kind": "client", "tenant_id": caller.tenant_id}
        return {"kind": "provider", "provider_id": caller.provider_id}

    @route("invite_provider")
    def invite_provider(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.invite_provider, request.caller.tenant_id, request.path["posting_id"],
                        request.body["provider_id"])

    @route("list_posting_proposals")
    def list_posting_proposals(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.list_proposals, request.caller.tenant_id, request.path["posting_id"])

    @route("award_posting")
    def award_posting(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.award_posting, request.caller.tenant_id, request.path["posting_id"],
                        request.body["proposal_id"])

    @route("list_invitations")
    def list_invitations(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.postings.list_invitations,
            request.caller.provider_id,
            status=request.query.get("status"),
            **_page(request),
        )

    @route("accept_invitation")
    def accept_invitation(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.accept_invitation, request.caller.provider_id, request.path["invitation_id"])

    @route("decline_invitation")
    def decline_invitation(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.decline_invitation, request.caller.provider_id, request.path["invitation_id"],
                        reason=request.body.get("reason"))

    @route("submit_proposal")
    def submit_proposal(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.submit_proposal, request.caller.provider_id, request.path["invitation_id"],
                        request.body["terms"], note=request.body.get("note"))

    @route("get_proposal")
    def get_proposal(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.get_proposal, self._party(request), request.path["proposal_id"])

    @route("counter_proposal")
    def counter_proposal(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.counter_proposal, self._party(request), request.path["proposal_id"],
                        request.body["terms"], note=request.body.get("note"))

    @route("accept_proposal")
    def accept_proposal(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.accept_proposal, self._party(request), request.path["proposal_id"])

    # --- shortlists (matching) ----------------------------------------------------------------------------------

    @route("get_shortlist")
    def get_shortlist(self, request: ApiRequest) -> dict:
        return self.rpc(self.matching.get_shortlist, request.caller.tenant_id, request.path["posting_id"])

    @route("explain_match")
    def explain_match(self, request: ApiRequest) -> dict:
        return self.rpc(
            self.matching.explain, request.caller.tenant_id, request.path["posting_id"], request.path["provider_id"]
        )

    # --- API keys (the owning service keeps them) and the audit trail (the gateway's own) ----------------------

    @route("list_tenant_keys")
    def list_tenant_keys(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.list_keys, request.path["tenant_id"])

    @route("create_tenant_key")
    def create_tenant_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.create_key, request.path["tenant_id"], request.body["role"],
                        label=request.body.get("label"))

    @route("rotate_tenant_key")
    def rotate_tenant_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.rotate_key, request.path["tenant_id"], request.path["key_id"],
                        self._grace(request))

    @route("revoke_tenant_key")
    def revoke_tenant_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.postings.revoke_key, request.path["tenant_id"], request.path["key_id"])

    @route("list_provider_keys")
    def list_provider_keys(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.list_keys, request.path["provider_id"])

    @route("create_provider_key")
    def create_provider_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.create_key, request.path["provider_id"], label=request.body.get("label"))

    @route("rotate_provider_key")
    def rotate_provider_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.rotate_key, request.path["provider_id"], request.path["key_id"],
                        self._grace(request))

    @route("revoke_provider_key")
    def revoke_provider_key(self, request: ApiRequest) -> dict:
        return self.rpc(self.providers.revoke_key, request.path["provider_id"], request.path["key_id"])

    def _grace(self, request: ApiRequest) -> int:
        default = int(self.config.get("KEY_ROTATION_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))
        return request.body.get("grace_seconds", default)

    @route("list_tenant_audit")
    def list_tenant_audit(self, request: ApiRequest) -> dict:
        return self.audit.page(dict(request.query, tenant_id=request.path["tenant_id"]),
                               request.query.get("limit", DEFAULT_PAGE))

    @route("list_audit")
    def list_audit(self, request: ApiRequest) -> dict:
        return self.audit.page(request.query, request.query.get("limit", DEFAULT_PAGE))

    # --- contracts (contracting) --------------------------------------------------------------------------------

    def _contract_call(self, request: ApiRequest, method: str, *args, **kwargs):
        """One contracting call as the calling party, on the contract in the path."""
        return self.rpc(getattr(self.contracting, method), self._party(request), request.path["contract_id"],
                        *args, **kwargs)

    @route("list_contracts")
    def list_contracts(self, request: ApiRequest) -> dict:
        return self.rpc(self.contracting.list_contracts, self._party(request), status=request.query.get("status"),
                        **_page(request))

    @route("get_contract")
    def get_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "get_contract")

    @route("update_contract")
    def update_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "update_contract", request.body)

    @route("sign_contract")
    def sign_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "sign_contract", request.body)

    @route("propose_amendment")
    def propose_amendment(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "propose_amendment", request.body)

    @route("sign_amendment")
    def sign_amendment(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "sign_amendment", request.path["amendment_id"], request.body)

    @route("close_sla_window")
    def close_sla_window(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "close_sla_window", request.path["sla_id"], request.body)

    @route("withdraw_amendment")
    def withdraw_amendment(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "withdraw_amendment", request.path["amendment_id"])

    @route("submit_measurements")
    def submit_measurements(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "submit_measurements", request.body,
                                   idempotency_key=request.headers.get("Idempotency-Key"))

    @route("governance_summary")
    def governance_summary(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "governance_summary")

    @route("record_review")
    def record_review(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "record_review", request.body)

    @route("raise_issue")
    def raise_issue(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "raise_issue", request.body)

    @route("resolve_issue")
    def resolve_issue(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "resolve_issue", request.path["issue_id"], request.body)

    @route("complete_contract")
    def complete_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "complete_contract", request.body)

    @route("terminate_contract")
    def terminate_contract(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "terminate_contract", request.body)

    @route("rate_client")
    def rate_client(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "rate_client", request.body)

    @route("answer_rating")
    def answer_rating(self, request: ApiRequest) -> dict:
        return self._contract_call(request, "answer_rating", request.body)

    # --- billing --------------------------------------------------------------------------------------------------

    @classmethod
    def _payer(cls, request: ApiRequest) -> dict:
        """Who reads or changes billing records: a client organisation, a provider or the operator."""
        return {"kind": "operator"} if request.caller.kind == OPERATOR else cls._party(request)

    @route("submit_billable_items")
    def submit_billable_items(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.submit_items, self._party(request), request.path["contract_id"], request.body,
                        idempotency_key=request.headers.get("Idempotency-Key"))

    @route("list_billable_items")
    def list_billable_items(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.list_items, self._party(request), request.path["contract_id"],
                        status=request.query.get("status"), **_page(request))

    @route("approve_billable_item")
    def approve_billable_item(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.review_item, self._party(request), request.path["contract_id"],
                        request.path["item_id"], "approve")

    @route("reject_billable_item")
    def reject_billable_item(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.review_item, self._party(request), request.path["contract_id"],
                        request.path["item_id"], "reject", request.body)

    @route("get_billing_account")
    def get_billing_account(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.get_account, self._party(request), request.path["contract_id"])

    @route("record_refund")
    def record_refund(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.record_refund, self._payer(request), request.path["contract_id"], request.body)

    @route("run_invoices")
    def run_invoices(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.run_invoices, request.body)

    @route("list_invoices")
    def list_invoices(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.list_invoices, self._payer(request), status=request.query.get("status"),
                        contract_id=request.query.get("contract_id"), **_page(request))

    @route("get_invoice")
    def get_invoice(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.get_invoice, self._payer(request), request.path["invoice_id"])

    @route("get_invoice_document")
    def get_invoice_document(self, request: ApiRequest) -> str:
        return self.rpc(self.billing.render_invoice, self._payer(request), request.path["invoice_id"])

    @route("get_invoice_statement")
    def get_invoice_statement(self, request: ApiRequest) -> str:
        return self.rpc(self.billing.render_statement, self._payer(request), request.path["invoice_id"])

    @route("get_invoice_pdf")
    def get_invoice_pdf(self, request: ApiRequest) -> bytes:
        encoded = self.rpc(self.billing.render_invoice_pdf, self._payer(request), request.path["invoice_id"])
        return base64.b64decode(encoded)

    @route("record_payment")
    def record_payment(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.record_payment, self._payer(request), request.path["invoice_id"], request.body)

    @route("issue_credit_note")
    def issue_credit_note(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.issue_credit_note, self._payer(request), request.path["invoice_id"],
                        request.body, idempotency_key=request.headers.get("Idempotency-Key"))

    @route("get_cost_report")
    def get_cost_report(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.cost_report, request.caller.tenant_id, request.query["start"],
                        request.query["end"])

    @route("get_cost_report_csv")
    def get_cost_report_csv(self, request: ApiRequest) -> str:
        return self.rpc(self.billing.cost_report_csv, request.caller.tenant_id, request.query["start"],
                        request.query["end"])

    @route("get_in_house_costs")
    def get_in_house_costs(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.get_in_house_costs, request.caller.tenant_id)

    @route("set_in_house_costs")
    def set_in_house_costs(self, request: ApiRequest) -> dict:
        return self.rpc(self.billing.set_in_house_costs, request.caller.tenant_id, request.body)

    # --- operations ----------------------------------------------------------------------------------------------

    @route("openapi_document")
    def openapi_document(self, request: ApiRequest) -> dict:
        return openapi.document()

    @route("health")
    def health(self, request: ApiRequest) -> Reply:
        report = self.probe(self.audit.health)
        return Reply(report, status=200 if report["status"] == "ok" else 503)

    @route("operations_backlog")
    def operations_backlog(self, request: ApiRequest) -> dict:
        report = self.probe(self.audit.health)
        components = {**report["services"], "gateway": report["gateway"]}
        parked = self.dead_letters()
        return {"services": {
            name: {"status": components.get(name, {}).get("status", "unavailable"),
                   "outbox_backlog": components.get(name, {}).get("outbox_backlog"),
                   "dead_letters": parked.get(name)}
            for name in sorted(set(components) | set(parked))}}

    @console_files
    def console_file(self, request: Request, path: str = "") -> Reply:
        return console.asset(path)

    @fallback
    def unknown_route(self, request: Request, path: str = "") -> NoReturn:
        unrouted(request)
