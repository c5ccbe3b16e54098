"""The postings service: client organisations (tenants), their task postings, and the negotiation that awards them.

Entrypoints only, grouped by aggregate in ``entrypoints`` (tenants and keys, postings, negotiation) and mixed into
the one nameko class, so the service name, every RPC method and every queue are those of ``PostingsService``. Use
cases live in ``handlers``, rules in ``domain``, validation and the wire form in ``schemas``, storage in
``repository``, routing keys and event payloads in ``events``.
"""

from __future__ import annotations

from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy

from shared.runtime.persistence import Database
from shared.runtime.rpc import rpc
from shared.runtime.tracing import Tracing

from . import repository
from .entrypoints.negotiation import NegotiationEntrypoints
from .entrypoints.postings import PostingEntrypoints
from .entrypoints.tenants import TenantEntrypoints
from .handlers import common
from .repository import Repository


class PostingsService(TenantEntrypoints, PostingEntrypoints, NegotiationEntrypoints):
    name = "postings"

    store = Database(ensure_indexes=repository.ensure_indexes)
    correlation_id = Tracing()
    config = Config()
    # Matching owns shortlists and providers' load: asked for the current shortlist when postings' copy has not
    # caught up, and for a provider's free capacity before terms are taken.
    matching = RpcProxy("matching")

    @rpc
    def health(self) -> dict:
        return common.health(Repository(self.store.db))
