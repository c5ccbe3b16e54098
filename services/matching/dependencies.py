"""The ranking index as a nameko dependency: one per process, rebuilt from matching's own database at start.

Several matching processes may run (competing consumers); an event reaches only one of them. Each process keeps
in memory, and follows through a change stream of the collection it is built from (``Followed``, over
``repository.Changes``), the ranking index (``ranking.MatchIndex``) from ``providers``, loaded at start. The open
postings a provider change can affect (``open_postings.OpenPostings``, from ``postings``) are kept only by a process
that handles provider changes: matching's provider and contract queues have a single active consumer (the catalog's
``single_active``), so one process of a lane does, and builds that view (``follow_postings``) before the transaction
of the first provider change it handles, then follows it. A standby process never follows the postings (following
them costs the database per posting written); once the broker makes it active it builds the view on its first
delivery. A stream carries committed changes only, in commit order, whichever process committed them. Each is
loaded once followed (the stream opened first), a background thread drains both every 0.2 s, and a ranking drains
the providers' stream again first (``catch_up``),
as a provider change drains the postings' one before deciding which postings it affects: a drain returns when the
server answers "nothing more" to a read issued after the drain began, so a change committed before a ranking is
never missed by it, in any process. No shared counter or other document: followers cost the writers nothing.

The process handling a provider change applies the new profile to its index before commit, so the re-ranking in
that same transaction sees it (``apply_uncommitted``). Until that transaction ends, the stream's documents of that
provider (older: the transaction holds the provider's document) are not applied over it; once it has ended,
committed or aborted, the provider is read again from the committed data (``catch_up``), so a profile of an aborted
transaction does not stay in the index (a retry applies it again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import eventlet
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from pymongo.errors import PyMongoError

from services.matching import collector, domain
from services.matching.open_postings import OpenPosting, OpenPostings
from services.matching.ranking import MatchIndex
from services.matching.repository import Changes, Repository, posting_fields
from shared.runtime.persistence import Database, UnitOfWork

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 10
FOLLOW_INTERVAL_SECONDS = 0.2


class Followed:
    """One of matching's collections as this process holds it in memory: loaded, then followed.

    ``start`` opens the change stream first and then loads the collection (``load``): a change committed after the
    load is in the stream (applying one already loaded again is harmless: it carries the current document).
    ``drain`` applies (``apply(id, document or None)``) every committed change not applied yet and returns when the
    stream has none left, asked after the call began, then runs ``settle`` (if given), still the only one applying
    anything of the collection. A lost stream (the server restarted, the oplog moved past it) is reopened and the
    collection loaded again.
    """

    def __init__(self, name: str, follow: Callable[[], Changes], load: Callable[[], None],
                 apply: Callable[[str, dict | None], None], settle: Callable[[], int] | None = None) -> None:
        self.name = name
        self._follow, self._load, self._apply, self._settle = follow, load, apply, settle
        self._changes: Changes | None = None
        self._draining = Semaphore(1)  # one greenthread drains the stream at a time

    def start(self) -> None:
        if self._changes is not None:
            try:
                self._changes.close()
            except PyMongoError:
                pass  # a broken stream: nothing to release on the server
        self._changes = self._follow()
        self._load()

    def drain(self) -> int:
        with self._draining:
            applied = 0
            try:
                while (change := self._changes.next_change()) is not None:
                    self._apply(*change)
                    applied += 1
            except PyMongoError as exc:
                log.warning("following matching's %s failed (%s): loading them again", self.name, exc)
                self.start()
            return applied + (self._settle() if self._settle else 0)


def _profile(provider_id: str, document: dict) -> dict:
    return {**{k: v for k, v in document.items() if k != "_id"}, "id": provider_id}


class LiveIndex:
    def __init__(self, top_k: int) -> None:
        self.index = MatchIndex()
        self.top_k = top_k
        self.repository: Repository | None = None  # the committed read model, from the rebuild at start-up on
        # Workers may start before the rebuild at start-up has finished: they wait for it instead of ranking
        # against a half-loaded index.
        self.ready = Event()
        self.postings = OpenPostings()
        self._providers: Followed | None = None
        self._postings: Followed | None = None
        self.following_postings = False  # whether the view of the open postings is built and followed
        self._building_postings = Semaphore(1)
        # Providers this process applied before commit, with the sessions of the transactions that did.
        self._uncommitted: dict[str, list] = {}
        self.stopping = False

    def apply(self, profile: dict) -> list[domain.CandidateRow]:
        """Put a provider's current profile in the index; returns its rows."""
        rows = domain.candidate_rows(profile, domain.TrackRecord.from_document(profile.get("track_record")))
        self.index.upsert(profile["id"], rows)
        return rows

    def apply_uncommitted(self, profile: dict, uow: UnitOfWork) -> list[domain.CandidateRow]:
        """``apply`` a profile written by the unit of work, before its commit (read again once it has ended)."""
        sessions = self._uncommitted.setdefault(profile["id"], [])
        if not any(s is uow.session for s in sessions):
            sessions.append(uow.session)
        return self.apply(profile)

    def _pending(self, provider_id: str) -> bool:
        """Whether a transaction of this process that applied the provider before commit is still open."""
        return any(s.in_transaction for s in self._uncommitted.get(provider_id, ()))

    def _put(self, provider_id: str, profile: dict | None) -> None:
        if profile is None:
            self.index.remove(provider_id)
        else:
            self.apply(profile)

    def _provider_committed(self, provider_id: str, document: dict | None) -> None:
        """A change of the stream: the provider's current committed document."""
        if self._pending(provider_id):
            return  # older than the open transaction's change; it is read again once that transaction ends
        self._put(provider_id, None if document is None else _profile(provider_id, document))

    def _settle_uncommitted(self) -> int:
        """Read again the providers this process applied in a transaction that has ended since (committed or
        aborted). Run by the drain of the providers' stream, so no change of the stream is applied meanwhile: one
        committed after this read is applied after it."""
        settled = 0
        for provider_id in [p for p in self._uncommitted if not self._pending(p)]:
            profile = self.repository.provider(provider_id)
            if not self._pending(provider_id):  # no transaction of this process applied it again meanwhile
                self._uncommitted.pop(provider_id, None)
                self._put(provider_id, profile)
                settled += 1
        return settled

    def catch_up(self) -> int:
        """Apply every committed change of the providers not applied yet (returns when the stream has none left,
        asked after this call began), and read again the providers this process applied in a transaction that
        has ended since."""
        self.ready.wait()
        return self._providers.drain()

    def catch_up_postings(self) -> int:
        """Apply every committed change of the postings not applied yet (returns when the stream has none left,
        asked after this call began); nothing while the view is not built."""
        self.ready.wait()
        return self._postings.drain() if self.following_postings else 0

    def follow_postings(self) -> None:
        """Build the view of the open postings, unless built already, and follow it from then on. Called before
        the transaction of a provider change (``MatchingService``), and by ``postings_touched_by`` on demand."""
        self.ready.wait()
        if self.following_postings:
            return
        with self._building_postings:
            if not self.following_postings:
                started = time.perf_counter()
                self._postings.start()
                self.following_postings = True
                log.info("matching's view of the open postings built: %d open postings in %.1fs",
                         len(self.postings), time.perf_counter() - started)

    def postings_touched_by(self, provider_id: str, rows: list[domain.CandidateRow]) -> list[OpenPosting]:
        """The open postings a provider whose rows are now ``rows`` can affect, as committed up to now."""
        self.follow_postings()
        self.catch_up_postings()
        return self.postings.touched_by(provider_id, rows)

    def keep_explained(self, needs: domain.PostingNeeds, shortlist: dict, top: list[tuple[int, int]]) -> None:
        """Keep the explanations of a shortlist just built from the index with the view, which drops them when the
        posting closes; a process not following the view keeps none (nothing would drop them)."""
        if self.following_postings:
            self.postings.explanations.keep_built(self.index, needs, shortlist, top)

    def follow(self) -> None:
        """Background: keep the index and the view of the open postings near their streams' heads."""
        while not self.stopping:
            for catch_up in (self.catch_up, self.catch_up_postings):
                try:
                    catch_up()
                except Exception:  # noqa: BLE001 - never let the follower die; the next drain retries
                    log.exception("following matching's database")
            eventlet.sleep(FOLLOW_INTERVAL_SECONDS)

    def _load_providers(self) -> None:
        fresh = MatchIndex()
        for profile in self.repository.all_providers():
            rows = domain.candidate_rows(profile, domain.TrackRecord.from_document(profile.get("track_record")))
            fresh.upsert(profile["id"], rows)
        fresh.finish_loading()
        self.index = fresh

    def _load_postings(self) -> None:
        fresh = OpenPostings()
        for document in self.repository.open_postings():
            fresh.apply(document["_id"], document)
        self.postings = fresh

    def rebuild(self, repository: Repository) -> None:
        started = time.perf_counter()
        self.repository = repository
        self._providers = Followed("providers", repository.follow_providers, self._load_providers,
                                   self._provider_committed, self._settle_uncommitted)
        self._postings = Followed("postings", repository.follow_postings, self._load_postings,
                                  lambda posting_id, document: self.postings.apply(posting_id,
                                                                                   posting_fields(document)))
        self._providers.start()
        if self.following_postings:  # a stream lost meanwhile: the view is loaded again with it
            self._postings.start()
        # The index's long-lived objects (a provider id per provider, interned values) move out of the collector's
        # way, so a full collection does not rescan them in the middle of a ranking.
        collector.settle()
        if not self.ready.ready():
            self.ready.send(True)
        log.info("matching index rebuilt: %d rows in %.1fs", len(self.index), time.perf_counter() - started)


class MatchingIndex(DependencyProvider):
    """Gives each worker the process's ``LiveIndex``."""

    def setup(self) -> None:
        self.live = LiveIndex(int(self.container.config.get("MATCHING_TOP_K") or DEFAULT_TOP_K))

    def start(self) -> None:
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.live.rebuild(Repository(database.db))
        self.container.spawn_managed_thread(self.live.follow)

    def stop(self) -> None:
        self.live.stopping = True

    def get_dependency(self, worker_ctx) -> LiveIndex:
        return self.live
