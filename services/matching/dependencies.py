"""The ranking index as a nameko dependency: one per process, rebuilt from matching's own database at start.

Several matching processes may run (competing consumers); a provider event reaches only one of them. Each
process therefore catches up from the database before it ranks: it applies the providers whose change number
(``seq``) is above the last it applied — one indexed query that usually returns nothing. The process that handles
a provider event applies the new profile to its index at once, so the re-ranking in that same event sees it.
"""

from __future__ import annotations

import gc
import logging
import time

from eventlet.event import Event
from nameko.extensions import DependencyProvider

from services.matching import domain
from services.matching.ranking import MatchIndex
from services.matching.repository import Repository
from shared.persistence import Database

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 10


class LiveIndex:
    def __init__(self, top_k: int) -> None:
        self.index = MatchIndex()
        self.applied_seq = 0
        self.top_k = top_k
        self.repository: Repository | None = None  # the committed read model, from the rebuild at start-up on
        # Workers may start before the rebuild at start-up has finished: they wait for it instead of ranking
        # against a half-loaded index.
        self.ready = Event()

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

    def rebuild(self, repository: Repository) -> None:
        started = time.perf_counter()
        fresh = MatchIndex()
        highest = 0
        for profile in repository.all_providers():
            rows = domain.candidate_rows(profile, domain.TrackRecord.from_document(profile.get("track_record")))
            fresh.upsert(profile["id"], rows)
            highest = max(highest, int(profile.get("seq", 0)))
        self.index, self.applied_seq, self.repository = fresh, highest, repository
        # The index's long-lived objects (a provider id per provider, interned values): move them out of the
        # collector's way, so a full collection does not rescan them in the middle of a ranking.
        gc.collect()
        gc.freeze()
        if not self.ready.ready():
            self.ready.send(True)
        log.info("matching index rebuilt: %d rows in %.1fs", len(fresh), time.perf_counter() - started)


class MatchingIndex(DependencyProvider):
    """Gives each worker the process's ``LiveIndex``."""

    def setup(self) -> None:
        self.live = LiveIndex(int(self.container.config.get("MATCHING_TOP_K") or DEFAULT_TOP_K))

    def start(self) -> None:
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.live.rebuild(Repository(database.db))

    def get_dependency(self, worker_ctx) -> LiveIndex:
        return self.live
