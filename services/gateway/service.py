"""The HTTP gateway: one RPC call per route. Checks, errors and JSON live in entrypoints.py and errors.py."""

from __future__ import annotations

from typing import NoReturn

from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from werkzeug.wrappers import Request

from services.gateway import console
from services.gateway.audit import AuditTrail
from services.gateway.auth import Authentication
from services.gateway.commands import InboundCommands
from services.gateway.dependencies import DeadLetterCounts, HealthProbe, TenantSweeper, TimedRpc
from services.gateway.endpoints.billing import BillingRoutes
from services.gateway.endpoints.contracts import ContractRoutes
from services.gateway.endpoints.matching import MatchingRoutes
from services.gateway.endpoints.operations import OperationRoutes
from services.gateway.endpoints.postings import PostingRoutes
from services.gateway.endpoints.providers import ProviderRoutes
from services.gateway.endpoints.reports import ReportRoutes
from services.gateway.endpoints.tenants import TenantRoutes
from services.gateway.entrypoints import Reply, console_files, fallback
from services.gateway.webserver import unrouted
from shared.runtime.timers import configured_timer
from shared.runtime.tracing import Tracing
from shared.tools.tenantsweep import SEEN


class GatewayService(TenantRoutes, ProviderRoutes, PostingRoutes, MatchingRoutes, ContractRoutes, BillingRoutes,
                     ReportRoutes, OperationRoutes, InboundCommands):
    """The HTTP routes' methods, one mixin per route group (``endpoints/``); commands from tenants' systems over the
    broker in ``InboundCommands``; here the dependencies they use, the tenant sweep and the console's files."""

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

    @console_files
    def console_file(self, request: Request, path: str = "") -> Reply:
        return console.asset(path)

    @fallback
    def unknown_route(self, request: Request, path: str = "") -> NoReturn:
        unrouted(request)
