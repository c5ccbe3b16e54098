"""The routes of reports: the audit trail, the cost reports and the in-house costs they compare against."""

from __future__ import annotations

from services.gateway import schemas
from services.gateway.routes.common import _AUTH, _BODY, _UPSTREAM, CLIENT, FINANCE, OPERATOR, OWNER, Route

AUDIT: tuple[Route, ...] = (
    Route(
        "list_tenant_audit", "GET", "/v1/tenants/{tenant_id}/audit",
        "The audit trail of a client organisation: every state-changing request by it or about it",
        who=(OWNER, OPERATOR), tag="audit",
        query=schemas.AuditQuerySchema, response=schemas.AuditPageSchema,
        errors=(422, *_AUTH, 404, *_UPSTREAM),
        description="Newest first. Who (principal and key id, never the key), when (UTC), what (operation, "
        "resource ids, HTTP status) and the correlation id.",
    ),
    Route(
        "list_audit", "GET", "/v1/audit", "The whole audit trail",
        who=(OPERATOR,), tag="audit",
        query=schemas.OperatorAuditQuerySchema, response=schemas.AuditPageSchema,
        errors=(422, *_AUTH, *_UPSTREAM),
        description="Newest first; filter by tenant, operation, key, actor, resource, outcome or time.",
    ),
)

COSTS: tuple[Route, ...] = (
    Route(
        "get_cost_report", "GET", "/v1/reports/costs", "Spend by category, model, shoring and provider; savings",
        who=(CLIENT, FINANCE), tag="billing", query=schemas.CostReportQuerySchema,
        response=schemas.CostReportSchema, errors=(422, *_AUTH, *_UPSTREAM),
        description="Over the invoices whose period starts in the `months` months from `from` (a year unless "
        "`months` says otherwise): spend net of SLA credits "
        "and credit notes, before tax, fixed (retainer, milestones) vs variable (time, usage), and per category the "
        "saving against the in-house monthly cost estimate x the months its invoices cover.",
    ),
    Route(
        "get_cost_report_csv", "GET", "/v1/reports/costs.csv", "The cost report as CSV",
        who=(CLIENT, FINANCE), tag="billing", query=schemas.CostReportQuerySchema,
        errors=(422, *_AUTH, *_UPSTREAM), media_type="text/csv",
        description="Rows: section (total, category, model, shoring, provider, saving), key, currency, amount, "
        "in_house_cost, saving.",
    ),
    Route(
        "get_in_house_costs", "GET", "/v1/reports/in-house-costs", "The in-house monthly cost estimates",
        who=(CLIENT, FINANCE), tag="billing", response=schemas.InHouseCostsSchema,
        errors=(*_AUTH, *_UPSTREAM),
    ),
    Route(
        "set_in_house_costs", "PUT", "/v1/reports/in-house-costs",
        "Set what each category of work would cost in-house a month", who=(CLIENT,), tag="billing",
        request=schemas.InHouseCostsSchema, response=schemas.InHouseCostsSchema,
        errors=(*_BODY, *_AUTH, *_UPSTREAM),
    ),
)
