"""Lookups and the versioned write every aggregate's use cases share."""

from __future__ import annotations

from typing import Any

from shared.vocabulary.errors import Conflict, NotFound

from ..repository import Repository


def health(repo: Repository) -> dict:
    return repo.health()


def tenant_of(repo: Repository, tenant_id: Any) -> dict:
    tenant = repo.tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"Tenant {tenant_id} not found.")
    return tenant


def posting_of(repo: Repository, tenant_id: Any, posting_id: Any) -> dict:
    """A tenant's posting; another tenant's is as absent as an unknown one."""
    posting = repo.posting(tenant_id, posting_id)
    if posting is None:
        raise NotFound(f"Posting {posting_id} not found.")
    return posting


def store_posting(repo: Repository, before: dict, after: dict) -> None:
    # The transaction already conflicts with a concurrent writer; the version filter keeps that guarantee
    # explicit, and holds even on a server that would let both commit.
    if not repo.replace_posting(after, expected_version=before["version"]):
        raise Conflict("The posting was changed by someone else meanwhile; reload it and try again.")
