"""The ranking index as a nameko dependency: one per process, rebuilt from matching's own database at start.

Several matching processes may run (competing consumers); a provider event reaches only one of them. Each
process therefore catches up from the database before it ranks: it applies the providers whose change number
(``seq``) is above the last it applied — one indexed query that usually returns nothing. The process that handles
a provider event applies the new profile to its index at once, so the re-ranking in that same event sees it.

Each process also keeps the open postings a provider change can affect in memory (``open_postings.OpenPostings``),
loaded at start and then fed by a change stream on its own ``postings`` collection (``Repository.follow_postings``):
committed changes only, in commit order, whichever process committed them. A background thread follows it, and
``catch_up_postings`` drains it again before a provider change decides which postings it affects, so a posting
committed before that transaction began is never missed. No shared counter: the view costs the writers nothing.
"""

from __future__ import annotations

import gc
import logging
import time

import eventlet
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from pymongo.errors import PyMongoError

from services.matching import domain
from services.matching.open_postings import OpenPosting, OpenPostings
from services.matching.ranking import MatchIndex
from services.matching.repository import PostingChanges, Repository
from shared.runtime.persistence import Database

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 10
FOLLOW_INTERVAL_SECONDS = 0.2


class LiveIndex:
    def __init__(self, top_k: int) -> None:
        self.index = MatchIndex()
        self.applied_seq = 0
        self.top_k = top_k
        self.repository: Repository | None = None  # the committed read model, from the rebuild at start-up on
        # Workers may start before the rebuild at start-up has finished: they wait for it instead of ranking
        # against a half-loaded index.
        self.ready = Event()
        self.postings = OpenPostings()
        self._changes: PostingChanges | None = None
        self._following = Semaphore(1)  # one greenthread drains the change stream at a time
        self.stopping = False

    def apply(self, profile: dict) -> list[domain.CandidateRow]:
        """Put a provider's current profile in the index; returns its rows."""
        rows = domain.candidate_rows(profile, domain.TrackRecord.from_document(profile.get("track_record")))
        self.index.upsert(profile["id"], rows)
        return rows

    def catch_up(self) -> int:
        """Apply the providers changed (and committed) since the last one this process applied."""
        self.ready.wait()
        applied = 0
        for profile in self.repository.providers_changed_since(self.applied_seq):
            self.apply(profile)
            self.applied_seq = max(self.applied_seq, int(profile.get("seq", 0)))
            applied += 1
        return applied

    def catch_up_postings(self) -> int:
        """Apply every committed change of the postings not applied yet (returns when the stream has none left,
        asked after this call began). A lost stream (the server restarted, the oplog moved past it) is reopened
        and the view reloaded from the collection."""
        self.ready.wait()
        with self._following:
            applied = 0
            try:
                while (change := self._changes.next_change()) is not None:
                    self.postings.apply(*change)
                    applied += 1
            except PyMongoError as exc:
                log.warning("following matching's postings failed (%s): reloading the open postings", exc)
                self._load_postings(self.repository)
            return applied

    def postings_touched_by(self, provider_id: str, rows: list[domain.CandidateRow]) -> list[OpenPosting]:
        """The open postings a provider whose rows are now ``rows`` can affect, as committed up to now."""
        self.catch_up_postings()
        return self.postings.touched_by(provider_id, rows)

    def follow_postings(self) -> None:
        """Background: keep the view of the open postings near the stream's head between provider changes."""
        while not self.stopping:
            try:
                self.catch_up_postings()
            except Exception:  # noqa: BLE001 - never let the follower die; the next drain retries
                log.exception("following matching's postings")
            eventlet.sleep(FOLLOW_INTERVAL_SECONDS)

    def _load_postings(self, repository: Repository) -> None:
        """Open the change stream first, then read the open postings: a change committed after the read is in the
        stream (applying one already read again is harmless: it carries the posting's current document)."""
        if self._changes is not None:
            try:
                self._changes.close()
            except PyMongoError:
                pass  # a broken stream: nothing to release on the server
        self._changes = repository.follow_postings()
        fresh = OpenPostings()
        for document in repository.open_postings():
            fresh.apply(document["_id"], document)
        self.postings = fresh

    def rebuild(self, repository: Repository) -> None:
        started = time.perf_counter()
        fresh = MatchIndex()
        highest = 0
        for profile in repository.all_providers():
            rows = domain.candidate_rows(profile, domain.TrackRecord.from_document(profile.get("track_record")))
            fresh.upsert(profile["id"], rows)
            highest = max(highest, int(profile.get("seq", 0)))
        self.index, self.applied_seq, self.repository = fresh, highest, repository
        self._load_postings(repository)
        # The index's long-lived objects (a provider id per provider, interned values): move them out of the
        # collector's way, so a full collection does not rescan them in the middle of a ranking.
        gc.collect()
        gc.freeze()
        if not self.ready.ready():
            self.ready.send(True)
        log.info("matching index rebuilt: %d rows, %d open postings in %.1fs", len(fresh), len(self.postings),
                 time.perf_counter() - started)


class MatchingIndex(DependencyProvider):
    """Gives each worker the process's ``LiveIndex``."""

    def setup(self) -> None:
        self.live = LiveIndex(int(self.container.config.get("MATCHING_TOP_K") or DEFAULT_TOP_K))

    def start(self) -> None:
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.live.rebuild(Repository(database.db))
        self.container.spawn_managed_thread(self.live.follow_postings)

    def stop(self) -> None:
        self.live.stopping = True

    def get_dependency(self, worker_ctx) -> LiveIndex:
        return self.live
