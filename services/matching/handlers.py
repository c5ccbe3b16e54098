"""Matching's use cases, one plain function each: what a fact about a provider, a contract or a posting changes in
the read model, which shortlists it re-ranks and what that announces; and the reads behind the RPC methods.

Each takes the unit of work of the event's transaction (or, for a read, a ``Repository`` on committed data), the
process's ranking index (``dependencies.LiveIndex``) and the decoded input. Rules come from ``domain`` and
``shortlists``, data from ``repository``, routing keys and payloads from ``events``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from services.matching import domain, events, rematching, shortlists
from services.matching.dependencies import LiveIndex
from services.matching.repository import Repository, today
from shared.runtime.persistence import Store, UnitOfWork
from shared.vocabulary.errors import NotFound
from shared.vocabulary.times import utc_now

log = logging.getLogger(__name__)

NOTICES_PER_TICK = 500


# -- providers -------------------------------------------------------------------------------------------------------


def provider_arrived(uow: UnitOfWork, matches: LiveIndex, profile: dict) -> None:
    """A profile snapshot (registration or update): kept when newer; facts that overtook it apply with it."""
    repo = Repository.of(uow)
    if repo.upsert_profile(profile):
        _apply_early_facts(repo, profile["id"])
        _adopt_waiting_track_record(repo, profile["id"])
        provider_changed(uow, matches, profile["id"])


def providers_changed(uow: UnitOfWork, matches: LiveIndex, change: Callable[[UnitOfWork, LiveIndex, dict], None],
                      facts: list[tuple[dict, dict]]) -> None:
    """A batch of provider facts (each its data and the event that brought it), applied in order in one
    transaction by ``change`` (``provider_arrived``, ``availability_changed``, ``provider_verified``): what each
    re-ranks is announced as caused by its event."""
    for data, event in facts:
        with uow.caused_by(event):
            change(uow, matches, data)


def availability_changed(uow: UnitOfWork, matches: LiveIndex, data: dict) -> None:
    repo = Repository.of(uow)
    changed = repo.set_availability(data)
    if changed is None:  # it overtook the registration: kept until the registration comes
        repo.hold_early_fact(data["provider_id"], "availability", data)
    elif changed:
        provider_changed(uow, matches, data["provider_id"])


def provider_verified(uow: UnitOfWork, matches: LiveIndex, data: dict) -> None:
    repo = Repository.of(uow)
    if _verify(repo, data):
        provider_changed(uow, matches, data["provider_id"])
    else:  # it overtook the registration: kept until the registration comes
        repo.hold_early_fact(data["provider_id"], "verification", data)


def _verify(repo: Repository, data: dict) -> bool:
    return repo.mark_verified(data["provider_id"], data["verified_at"], data["verified_by"])


def _apply_early_facts(repo: Repository, provider_id: str) -> None:
    """A verification or availability change that arrived before the registration applies now, in the
    registration's transaction, so the first ranking that sees the provider sees it too."""
    early = repo.take_early_facts(provider_id)
    if "verification" in early:
        _verify(repo, early["verification"])
    if "availability" in early:
        repo.set_availability(early["availability"])


def provider_changed(uow: UnitOfWork, matches: LiveIndex, provider_id: str) -> None:
    """Put the provider's new rows in the index and re-rank the open postings they can change.

    Which postings those are is answered from the process's in-memory view of the open postings, caught up with
    every posting committed before this call (``LiveIndex.postings_touched_by``): no database read. The view may be
    newer than this transaction's snapshot; a posting re-ranked here that another transaction changed since is a
    write conflict, and the retry decides again on the newer view.
    """
    profile = Repository.of(uow).provider(provider_id)
    matches.catch_up()
    # Applied before commit so this re-ranking sees the change; a transaction that fails is retried with the
    # same event, which applies the same profile again; once this one has ended the process reads the committed
    # profile again (``LiveIndex.catch_up``), and other processes only ever see committed ones (their stream).
    previous_rows = matches.index.provider_rows(provider_id)
    rows = matches.apply_uncommitted(profile, uow)
    touched = matches.postings_touched_by(provider_id, rows)  # exactly those whose shortlist it can change
    now = utc_now()
    admitted = rematching.admit_all(matches.postings, matches.index, touched, provider_id, rows, previous_rows,
                                    now=now)
    _store_and_announce(uow, [_reranked(matches, entry.posting, entry.needs, admitted[entry.posting["id"]], now)
                              for entry in touched])


# -- contract facts: load and track record ---------------------------------------------------------------------------


def contract_changed(uow: UnitOfWork, matches: LiveIndex, fact: dict) -> None:
    """A contract activated, amended, completed or terminated (``domain.contract_fact``)."""
    _track_record_changed(uow, matches, Repository.of(uow).apply_contract(fact))


def sla_evaluated(uow: UnitOfWork, matches: LiveIndex, result: dict) -> None:
    """An SLA window met or breached (``domain.sla_result``)."""
    _track_record_changed(uow, matches, Repository.of(uow).apply_sla_result(result))


def release_served_notices(store: Store, matches: LiveIndex) -> None:
    """A terminated contract's hours stay committed until its effective date; from that day they are free again:
    each such contract is released in a transaction of its own."""
    for fact in Repository(store.db).notices_served(today(), limit=NOTICES_PER_TICK):
        try:
            store.transact(lambda uow, f=fact: release_notice(uow, matches, f))
        except Exception as exc:  # another replica got there first, or a passing failure: next tick retries
            log.warning("releasing the load of contract %s deferred: %s", fact["_id"], exc)


def release_notice(uow: UnitOfWork, matches: LiveIndex, fact: dict) -> None:
    Repository.of(uow).mark_released(fact["_id"])
    _track_record_changed(uow, matches, {fact["provider_id"]})


def _track_record_changed(uow: UnitOfWork, matches: LiveIndex, provider_ids: set[str]) -> None:
    """Recompute each provider's track record from its facts; a provider whose record really changed is
    re-indexed and its open postings re-ranked. A provider matching does not know yet keeps its facts until
    its profile arrives (``_adopt_waiting_track_record``)."""
    repo = Repository.of(uow)
    for provider_id in sorted(provider_ids):
        record = repo.track_record(provider_id) or domain.track_record_document([], [], today())
        if repo.set_track_record(provider_id, record):
            provider_changed(uow, matches, provider_id)


def _adopt_waiting_track_record(repo: Repository, provider_id: str) -> None:
    """Contract facts that arrived before the provider's first profile (they travel on other queues) become its
    track record now."""
    if repo.stored_track_record(provider_id) is None:
        record = repo.track_record(provider_id)
        if record is not None:
            repo.set_track_record(provider_id, record)


# -- tenants and postings --------------------------------------------------------------------------------------------


def tenant_registered(uow: UnitOfWork, tenant: dict) -> None:
    Repository.of(uow).upsert_tenant(tenant)


def postings_published(uow: UnitOfWork, matches: LiveIndex, published: list[tuple[dict, str, dict]]) -> None:
    """A batch of published postings (each the posting, its lane and the event that brought it), in one
    transaction: their states read at once (on a second try), each new open one ranked in memory and announced,
    all stored with one bulk write. One published again (it already has a shortlist) is re-ranked like an update.

    A batch's first try (``uow.assume_new``) reads no states: every posting is taken as new, and each is then
    inserted, so one matching already has a document of (published again, cancelled before its publication came)
    fails the insert on its ``_id``; the batch is tried again reading them (``shared.runtime.batches``)."""
    repo = Repository.of(uow)
    states = {} if uow.assume_new else repo.posting_states([posting["id"] for posting, _, _ in published])
    new: dict[str, dict] = {}  # postings matching has no document of yet: inserted
    changed: dict[str, dict] = {}  # the others: updated
    matches.catch_up()
    for posting, lane, event in published:
        current = states.get(posting["id"])
        if current is not None and current.get("version", 0) >= posting.get("version", 0):
            continue  # a newer snapshot is already here
        stored = {**posting, "lane": lane, "status": domain.posting_status(current, posting)}
        with uow.caused_by(event):
            if current is not None and current.get("shortlist"):  # published again: an update of its shortlist
                repo.store_postings(list(new.values()), list(changed.values()))  # what it re-ranks reads them
                new, changed = {}, {}
                _published_again(uow, matches, stored, current["shortlist"])
                states[posting["id"]] = repo.posting_state(posting["id"])
                continue
            if stored["status"] == domain.OPEN:
                _announce_first_shortlist(uow, matches, stored)
        (new if current is None or posting["id"] in new else changed)[posting["id"]] = stored
        states[posting["id"]] = stored
    repo.store_postings(list(new.values()), list(changed.values()))


def _published_again(uow: UnitOfWork, matches: LiveIndex, stored: dict, shortlist: dict) -> None:
    Repository.of(uow).store_posting(stored)
    if stored["status"] == domain.OPEN:
        matches.catch_up()
        rerank(uow, matches, {**stored, "shortlist": shortlist}, domain.posting_needs(stored))


def posting_updated(uow: UnitOfWork, matches: LiveIndex, posting: dict, lane: str) -> None:
    """A newer snapshot of the posting: re-ranked, or, when the edit overtook the publication, proposed."""
    repo = Repository.of(uow)
    current = repo.posting_status(posting["id"])
    if not repo.upsert_posting(posting, {"lane": lane, "status": domain.posting_status(current, posting)}):
        return
    stored = repo.posting(posting["id"])
    if stored["status"] != domain.OPEN:
        return
    if stored.get("shortlist"):
        matches.catch_up()
        rerank(uow, matches, stored, domain.posting_needs(stored))
    else:  # edited right after publishing, and the edit overtook posting.published (which it makes stale)
        matches.catch_up()
        _announce_first_shortlist(uow, matches, stored)
        repo.save_shortlist(stored["id"], stored["shortlist"])


def posting_cancelled(uow: UnitOfWork, posting_id: str, cancelled_at: str) -> None:
    """The posting stops being re-ranked (even if its publication has not arrived yet)."""
    Repository.of(uow).set_posting_status(posting_id, "cancelled", cancelled_at=cancelled_at)


def posting_awarded(uow: UnitOfWork, posting_id: str) -> None:
    """The posting stops being re-ranked (even if its publication has not arrived yet)."""
    Repository.of(uow).set_posting_status(posting_id, "awarded")


def _announce_first_shortlist(uow: UnitOfWork, matches: LiveIndex, posting: dict) -> None:
    """The open posting's first shortlist, from an index already caught up, into ``posting["shortlist"]`` (the
    caller stores it), announced."""
    needs = domain.posting_needs(posting)
    posting["shortlist"], ranked = shortlists.build(matches.index, needs, matches.top_k, version=1, now=utc_now())
    matches.keep_explained(needs, posting["shortlist"], ranked.top)
    uow.emit(events.MATCHES_PROPOSED, subject=posting["id"],
             data=events.matches_proposed(posting, posting["shortlist"]), lane=posting["lane"],
             tenant=posting["tenant_id"])


def rerank(uow: UnitOfWork, matches: LiveIndex, posting: dict, needs: domain.PostingNeeds) -> None:
    """Rank the posting again; store and announce its shortlist when its members or order changed."""
    _store_and_announce(uow, [_reranked(matches, posting, needs, None, utc_now())])


def _reranked(matches: LiveIndex, posting: dict, needs: domain.PostingNeeds, admitted: dict | None,
              now: datetime) -> tuple[dict, dict | None, dict]:
    """The posting, its shortlist before and after: ``admitted`` (the change put in place without ranking the
    market again, ``rematching.admit_all``) or, without it, the market ranked again."""
    before = posting.get("shortlist")
    after = admitted
    if after is None:
        after, ranked = shortlists.build(matches.index, needs, matches.top_k,
                                         version=(before or {}).get("version", 0) + 1, now=now)
        matches.keep_explained(needs, after, ranked.top)
    return posting, before, after


def _store_and_announce(uow: UnitOfWork, reranked: list[tuple[dict, dict | None, dict]]) -> None:
    """Store the shortlists whose members or order changed, and announce them; a shortlist with the same providers
    in the same order is not announced, but stored when a score moved (it is the cut a newcomer must beat and what
    the client reads). One bulk write for all of them; their events go into the outbox in the same transaction."""
    stored, announced = [], []
    for posting, before, after in reranked:
        if not shortlists.really_changed(before, after):
            if shortlists.scores(before) != shortlists.scores(after):
                stored.append((posting["id"], {**after, "version": after["version"] - 1}))
            continue
        stored.append((posting["id"], after))
        announced.append(dict(routing_key=events.SHORTLIST_UPDATED, subject=posting["id"],
                              data=events.shortlist_updated(posting, before, after), lane=posting["lane"],
                              tenant=posting["tenant_id"]))
    Repository.of(uow).save_shortlists(stored)
    uow.emit_many(announced)


# -- reads -----------------------------------------------------------------------------------------------------------


def _own_posting(repo: Repository, tenant_id: str, posting_id: str) -> dict:
    posting = repo.posting(posting_id)
    if posting is None or posting.get("tenant_id") != tenant_id or not posting.get("shortlist"):
        raise NotFound(f"no shortlist for posting {posting_id}")
    return posting


def shortlisted_posting(repo: Repository, tenant_id: str, posting_id: str) -> dict:
    """The posting with its current shortlist, for its own tenant only (another tenant gets NotFound)."""
    return _own_posting(repo, tenant_id, posting_id)


def explain(repo: Repository, matches: LiveIndex, tenant_id: str, posting_id: str, provider_id: str) -> dict:
    posting = _own_posting(repo, tenant_id, posting_id)
    matches.catch_up()
    rows = matches.index.provider_rows(provider_id)
    if not rows:
        raise NotFound(f"matching knows no provider {provider_id}")
    needs = domain.posting_needs(posting)
    return shortlists.explanation(matches.index, needs, posting["shortlist"], provider_id, rows,
                                  posting["shortlist"].get("top_k", matches.top_k), utc_now())


def capacity_and_load(matches: LiveIndex, provider_id: str, centre_id: str | None) -> tuple[float, float]:
    """A provider's capacity and the hours its current contracts hold, a week (a firm's: of the delivery centre, or
    of all its centres), as matching counts them for ranking."""
    matches.catch_up()
    rows = [row for row in matches.index.provider_rows(provider_id) if centre_id is None or row.centre_id == centre_id]
    if not rows:
        raise NotFound(f"matching knows no provider {provider_id}" + (f" centre {centre_id}" if centre_id else ""))
    capacity = sum(row.capacity_hours for row in rows)
    committed = sum(row.track.committed_hours_per_week for row in rows)
    return capacity, committed


def provider(repo: Repository, provider_id: str) -> dict:
    found = repo.provider(provider_id)
    if found is None:
        raise NotFound(f"matching knows no provider {provider_id}")
    return found


def posting(repo: Repository, posting_id: str) -> dict:
    found = repo.posting(posting_id)
    if found is None:
        raise NotFound(f"matching knows no posting {posting_id}")
    return found


def health(repo: Repository) -> dict:
    repo.ping()
    return {"database": "ok", "outbox_backlog": repo.outbox_backlog()}


def read_model_counts(repo: Repository, matches: LiveIndex) -> dict:
    return {**repo.counts(), "index_rows": len(matches.index)}
