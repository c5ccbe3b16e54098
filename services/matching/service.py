"""Matching: ranked, explainable shortlists for published postings, kept current as providers change.

Inputs (all idempotent, each in one transaction with its outbox):
- provider.registered / updated / availability_changed / verified → the provider read model and the index; the
  open postings the provider can affect are re-ranked, ``shortlist.updated.v1`` when one really changes. A
  verification or availability change that overtakes the registration (another queue) is held and applied with it;
- tenant.registered → tenants (their segment is the lane of their postings' shortlists);
- posting.published → rank, store the shortlist, ``matches.proposed.v1``;
- posting.updated → re-rank (``shortlist.updated.v1`` when it changes);
- posting.cancelled / posting.awarded → the posting stops being re-ranked;
- contract.activated / amended / completed / terminated and sla.met / sla.breached (contracting) → one fact per
  contract and per evaluated SLA window; the provider's track record and load are recomputed from its facts and,
  when they change, its open postings are re-ranked like after a provider change. A terminated contract's load
  stays until its effective date; a timer (``MATCHING_NOTICE_RELEASE_INTERVAL_SECONDS``) releases it then.

Queries: ``get_shortlist`` and ``explain``, scoped to the posting's tenant (another tenant gets NotFound).
"""

from __future__ import annotations

import logging

from services.matching import domain, repository, shortlists
from services.matching.dependencies import LiveIndex, MatchingIndex
from services.matching.repository import POSTINGS, PROVIDERS, TENANTS
from shared.runtime.messaging import subscribe
from shared.runtime.outbox import pending_count
from shared.runtime.persistence import Database, UnitOfWork
from shared.runtime.rpc import rpc
from shared.runtime.timers import configured_timer
from shared.runtime.tracing import Tracing
from shared.vocabulary.errors import NotFound
from shared.vocabulary.times import utc_now

log = logging.getLogger(__name__)

TERMINAL = ("awarded", "cancelled", "closed", "expired")


def _without_id(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "id"}


class MatchingService:
    name = "matching"

    store = Database(ensure_indexes=repository.ensure_indexes)
    matches: LiveIndex = MatchingIndex()
    correlation_id = Tracing()

    # -- provider events -------------------------------------------------------------------------------------

    @subscribe("providers", "provider.registered.v1")
    def on_provider_registered(self, uow, envelope):
        self._profile_arrived(uow, envelope["data"]["provider"])

    @subscribe("providers", "provider.updated.v1")
    def on_provider_updated(self, uow, envelope):
        self._profile_arrived(uow, envelope["data"]["provider"])

    def _profile_arrived(self, uow: UnitOfWork, profile: dict) -> None:
        if repository.upsert_profile(uow.db, profile, uow.session):
            self._apply_early_facts(uow, profile["id"])
            self._adopt_waiting_track_record(uow, profile["id"])
            self._provider_changed(uow, profile["id"])

    @subscribe("providers", "provider.availability_changed.v1")
    def on_provider_availability_changed(self, uow, envelope):
        data = envelope["data"]
        changed = repository.set_availability(uow.db, data, uow.session)
        if changed is None:  # it overtook the registration: kept until the registration comes
            repository.hold_early_fact(uow.db, data["provider_id"], "availability", data, uow.session)
        elif changed:
            self._provider_changed(uow, data["provider_id"])

    @subscribe("providers", "provider.verified.v1")
    def on_provider_verified(self, uow, envelope):
        data = envelope["data"]
        if self._verify(uow, data):
            self._provider_changed(uow, data["provider_id"])
        else:  # it overtook the registration: kept until the registration comes
            repository.hold_early_fact(uow.db, data["provider_id"], "verification", data, uow.session)

    @staticmethod
    def _verify(uow: UnitOfWork, data: dict) -> bool:
        """Mark the provider verified; False when matching does not know it yet.

        ``verification`` is kept apart from the snapshot fields: verifying is final, and a profile snapshot taken
        before it (an update arriving late) must not make the provider unverified again here."""
        verification = {"verified_at": data["verified_at"], "verified_by": data["verified_by"]}
        return repository.set_fields(uow.db, PROVIDERS, data["provider_id"],
                                     {"verified": True, "verified_at": data["verified_at"],
                                      "verification": verification}, uow.session)

    def _apply_early_facts(self, uow: UnitOfWork, provider_id: str) -> None:
        """A verification or availability change that arrived before the registration applies now, in the
        registration's transaction, so the first ranking that sees the provider sees it too."""
        early = repository.take_early_facts(uow.db, provider_id, uow.session)
        if "verification" in early:
            self._verify(uow, early["verification"])
        if "availability" in early:
            repository.set_availability(uow.db, early["availability"], uow.session)

    def _provider_changed(self, uow: UnitOfWork, provider_id: str) -> None:
        repository.mark_provider_changed(uow.db, provider_id, uow.session)
        profile = repository.get(uow.db, PROVIDERS, provider_id, uow.session)
        self.matches.catch_up(self.store.db)
        # Applied before commit so this re-ranking sees the change; a transaction that fails is retried with the
        # same event, which applies the same profile again (and other processes only ever read committed ones).
        rows = self.matches.apply(profile)
        models = {m for row in rows for m in row.models}
        categories = {c for row in rows for c in row.categories}
        for posting in repository.open_postings_touched_by(uow.db, provider_id, models, categories, uow.session):
            needs = domain.posting_needs(posting)
            if shortlists.could_change(posting.get("shortlist"), needs, provider_id, rows):
                self._rerank(uow, posting, needs)

    # -- contracting events: load and track record ------------------------------------------------------------

    @subscribe("contracting", "contract.activated.v1")
    def on_contract_activated(self, uow, envelope):
        self._contract_changed(uow, domain.contract_fact(envelope["data"]["contract"], "active"))

    @subscribe("contracting", "contract.amended.v1")
    def on_contract_amended(self, uow, envelope):
        self._contract_changed(uow, domain.contract_fact(envelope["data"]["contract"], "active"))

    @subscribe("contracting", "contract.completed.v1")
    def on_contract_completed(self, uow, envelope):
        data = envelope["data"]
        self._contract_changed(uow, domain.contract_fact(data["contract"], "completed", ended_at=data["completed_at"],
                                                         rating=data["provider_rating"]["score"]))

    @subscribe("contracting", "contract.terminated.v1")
    def on_contract_terminated(self, uow, envelope):
        data = envelope["data"]
        self._contract_changed(uow, domain.contract_fact(data["contract"], "terminated",
                                                         ended_at=data["terminated_at"],
                                                         releases_on=data["effective_date"]))

    @subscribe("contracting", "sla.met.v1")
    def on_sla_met(self, uow, envelope):
        self._track_record_changed(uow, repository.apply_sla_result(uow.db, domain.sla_result(envelope["data"]),
                                                                    uow.session))

    @subscribe("contracting", "sla.breached.v1")
    def on_sla_breached(self, uow, envelope):
        self._track_record_changed(uow, repository.apply_sla_result(uow.db, domain.sla_result(envelope["data"]),
                                                                    uow.session))

    @configured_timer("MATCHING_NOTICE_RELEASE_INTERVAL_SECONDS", 3600.0)
    def release_served_notices(self) -> None:
        """A terminated contract's hours stay committed until its effective date; from that day they are free
        again: the provider's load is recomputed and its open postings re-ranked."""
        for fact in repository.notices_served(self.store.db, repository.today(), limit=500):
            try:
                self.store.transact(lambda uow, f=fact: self._release_notice(uow, f))
            except Exception as exc:  # another replica got there first, or a passing failure: next tick retries
                log.warning("releasing the load of contract %s deferred: %s", fact["_id"], exc)

    def _release_notice(self, uow: UnitOfWork, fact: dict) -> None:
        repository.mark_released(uow.db, fact["_id"], uow.session)
        self._track_record_changed(uow, {fact["provider_id"]})

    def _contract_changed(self, uow: UnitOfWork, fact: dict) -> None:
        self._track_record_changed(uow, repository.apply_contract(uow.db, fact, uow.session))

    def _track_record_changed(self, uow: UnitOfWork, provider_ids: set[str]) -> None:
        """Recompute each provider's track record from its facts; a provider whose record really changed is
        re-indexed and its open postings re-ranked. A provider matching does not know yet keeps its facts until
        its profile arrives (``_adopt_waiting_track_record``)."""
        for provider_id in sorted(provider_ids):
            record = (repository.track_record(uow.db, provider_id, uow.session)
                      or domain.track_record_document([], [], repository.today()))
            if repository.set_track_record(uow.db, provider_id, record, uow.session):
                self._provider_changed(uow, provider_id)

    @staticmethod
    def _adopt_waiting_track_record(uow: UnitOfWork, provider_id: str) -> None:
        """Contract facts that arrived before the provider's first profile (they travel on other queues) become
        its track record now."""
        if repository.get_track_record(uow.db, provider_id, uow.session) is None:
            record = repository.track_record(uow.db, provider_id, uow.session)
            if record is not None:
                repository.set_track_record(uow.db, provider_id, record, uow.session)

    # -- client and posting events ---------------------------------------------------------------------------

    @subscribe("postings", "tenant.registered.v1")
    def on_tenant_registered(self, uow, envelope):
        repository.upsert_snapshot(uow.db, TENANTS, envelope["data"]["tenant"], uow.session)

    @subscribe("postings", "posting.published.v1")
    def on_posting_published(self, uow, envelope):
        posting = envelope["data"]["posting"]
        current = uow.db[POSTINGS].find_one({"_id": posting["id"]}, {"status": 1, "version": 1, "shortlist": 1},
                                            session=uow.session)
        if current is not None and current.get("version", 0) >= posting.get("version", 0):
            return  # a newer snapshot is already here
        stored = {**posting, "lane": envelope["lane"], "status": self._status(current, posting)}
        if current is not None and current.get("shortlist"):  # published again: an update of its shortlist
            uow.db[POSTINGS].update_one({"_id": posting["id"]}, {"$set": _without_id(stored)}, session=uow.session)
            if stored["status"] == repository.OPEN:
                self.matches.catch_up(self.store.db)
                self._rerank(uow, {**stored, "shortlist": current["shortlist"]}, domain.posting_needs(stored))
            return
        if stored["status"] == repository.OPEN:
            self._propose(uow, stored)
        # One write: the posting and its first shortlist together.
        uow.db[POSTINGS].update_one({"_id": posting["id"]}, {"$set": _without_id(stored)}, upsert=True,
                                    session=uow.session)

    def _propose(self, uow: UnitOfWork, posting: dict) -> None:
        """The open posting's first shortlist, into ``posting["shortlist"]`` (the caller stores it), announced."""
        self.matches.catch_up(self.store.db)
        posting["shortlist"], _ = shortlists.build(self.matches.index, domain.posting_needs(posting),
                                                   self.matches.top_k, version=1, now=utc_now())
        uow.emit("matches.proposed.v1", subject=posting["id"], data=shortlists.wire(posting, posting["shortlist"]),
                 lane=posting["lane"], tenant=posting["tenant_id"])

    @subscribe("postings", "posting.updated.v1")
    def on_posting_updated(self, uow, envelope):
        posting = envelope["data"]["posting"]
        if not self._store_posting(uow, posting, envelope["lane"]):
            return
        stored = repository.get(uow.db, POSTINGS, posting["id"], uow.session)
        if stored["status"] != repository.OPEN:
            return
        if stored.get("shortlist"):
            self.matches.catch_up(self.store.db)
            self._rerank(uow, stored, domain.posting_needs(stored))
        else:  # edited right after publishing, and the edit overtook posting.published (which it makes stale)
            self._propose(uow, stored)
            repository.save_shortlist(uow.db, stored["id"], stored["shortlist"], uow.session)

    @subscribe("postings", "posting.cancelled.v1")
    def on_posting_cancelled(self, uow, envelope):
        data = envelope["data"]
        uow.db[POSTINGS].update_one(
            {"_id": data["posting_id"]}, {"$set": {"status": "cancelled", "cancelled_at": data["cancelled_at"]}},
            upsert=True, session=uow.session,
        )

    @subscribe("postings", "posting.awarded.v1")
    def on_posting_awarded(self, uow, envelope):
        posting_id = envelope["data"]["posting"]["id"]
        uow.db[POSTINGS].update_one({"_id": posting_id}, {"$set": {"status": "awarded"}}, upsert=True,
                                    session=uow.session)

    @staticmethod
    def _status(current: dict | None, posting: dict) -> str:
        """A posting that was awarded, cancelled or closed here stays so, whatever a late snapshot says."""
        if current is not None and current.get("status") in TERMINAL:
            return current["status"]
        return posting.get("status", repository.OPEN)

    def _store_posting(self, uow: UnitOfWork, posting: dict, lane: str) -> bool:
        """Keep the newest snapshot (with the status rule above); whether it changed."""
        current = uow.db[POSTINGS].find_one({"_id": posting["id"]}, {"status": 1}, session=uow.session)
        return repository.upsert_snapshot(uow.db, POSTINGS, posting, uow.session,
                                          extra={"lane": lane, "status": self._status(current, posting)})

    def _rerank(self, uow: UnitOfWork, posting: dict, needs: domain.PostingNeeds) -> None:
        before = posting.get("shortlist")
        version = (before or {}).get("version", 0) + 1
        after, _ = shortlists.build(self.matches.index, needs, self.matches.top_k, version=version, now=utc_now())
        if not shortlists.really_changed(before, after):
            # The same providers in the same order: nothing to announce, but a score that moved is stored, as it
            # is the cut a newcomer must beat and what the client reads.
            if shortlists.scores(before) != shortlists.scores(after):
                repository.save_shortlist(uow.db, posting["id"], {**after, "version": version - 1}, uow.session)
            return
        repository.save_shortlist(uow.db, posting["id"], after, uow.session)
        data = {**shortlists.wire(posting, after), "previous_version": version - 1,
                "changes": shortlists.changes(before, after)}
        uow.emit("shortlist.updated.v1", subject=posting["id"], data=data, lane=posting["lane"],
                 tenant=posting["tenant_id"])

    # -- queries ---------------------------------------------------------------------------------------------

    def _own_posting(self, tenant_id: str, posting_id: str) -> dict:
        posting = repository.get(self.store.db, POSTINGS, posting_id)
        if posting is None or posting.get("tenant_id") != tenant_id or not posting.get("shortlist"):
            raise NotFound(f"no shortlist for posting {posting_id}")
        return posting

    @rpc
    def get_shortlist(self, tenant_id: str, posting_id: str) -> dict:
        posting = self._own_posting(tenant_id, posting_id)
        return {**shortlists.wire(posting, posting["shortlist"]), "status": posting["status"],
                "eligible": posting["shortlist"].get("eligible", 0), "top_k": posting["shortlist"].get("top_k")}

    @rpc
    def explain(self, tenant_id: str, posting_id: str, provider_id: str) -> dict:
        posting = self._own_posting(tenant_id, posting_id)
        self.matches.catch_up(self.store.db)
        rows = self.matches.index.provider_rows(provider_id)
        if not rows:
            raise NotFound(f"matching knows no provider {provider_id}")
        needs = domain.posting_needs(posting)
        return shortlists.explanation(self.matches.index, needs, posting["shortlist"], provider_id, rows,
                                      posting["shortlist"].get("top_k", self.matches.top_k), utc_now())

    @rpc
    def free_capacity(self, provider_id: str, centre_id: str | None = None) -> dict:
        """A provider's free hours a week (a firm's: of the delivery centre, or of all its centres): its capacity
        less the hours its current contracts hold, as matching counts them for ranking. Postings asks before it
        takes a proposal (matching owns the load; postings keeps no copy)."""
        self.matches.catch_up(self.store.db)
        rows = [row for row in self.matches.index.provider_rows(provider_id)
                if centre_id is None or row.centre_id == centre_id]
        if not rows:
            raise NotFound(f"matching knows no provider {provider_id}" + (f" centre {centre_id}" if centre_id else ""))
        capacity = sum(row.capacity_hours for row in rows)
        committed = sum(row.track.committed_hours_per_week for row in rows)
        return {"provider_id": provider_id, "centre_id": centre_id, "capacity_hours_per_week": round(capacity, 2),
                "committed_hours_per_week": round(committed, 2),
                "free_hours_per_week": round(max(capacity - committed, 0.0), 2)}

    @rpc
    def get_provider(self, provider_id: str) -> dict:
        provider = repository.get(self.store.db, PROVIDERS, provider_id)
        if provider is None:
            raise NotFound(f"matching knows no provider {provider_id}")
        return provider

    @rpc
    def get_posting(self, posting_id: str) -> dict:
        posting = repository.get(self.store.db, POSTINGS, posting_id)
        if posting is None:
            raise NotFound(f"matching knows no posting {posting_id}")
        return posting

    @rpc
    def health(self) -> dict:
        self.store.db.command("ping")
        return {"database": "ok", "outbox_backlog": pending_count(self.store.db)}

    @rpc
    def read_model_counts(self) -> dict:
        return {**repository.counts(self.store.db), "index_rows": len(self.matches.index)}
