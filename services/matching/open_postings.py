"""What re-matching needs of the open postings, in memory: which ones a changed provider can affect.

A provider can change a posting's shortlist only if it offers the posting's market — the (model, category) pair the
ranking index ranks a posting against (``MatchIndex.rank``: a row outside it is never a candidate) — or if it is
on the shortlist already (it may have left the market, or dropped out). So the view keeps, per open posting, its
needs (``domain.posting_needs``), its lane, tenant and current shortlist (without the candidates' reasons and
breakdowns, which deciding never reads), indexed by market and by shortlisted provider.

Most postings of a market have a full shortlist a changed row cannot enter. Per market the view keeps, in columns,
what bounds a row's score from above for each posting (``domain.score_bound_units``: its skill requirements and
publication day) and the score of its last place, so one vector pass leaves only the postings the row could
enter; ``shortlists.could_change`` decides exactly on those.

Pure: it is fed posting documents by whoever follows the database (``dependencies.LiveIndex``), in commit order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.matching import domain, shortlists
from services.matching.domain import CandidateRow, PostingNeeds

# The posting fields kept: what re-ranking and its announcement read (``handlers.rerank``, ``events``).
KEPT_FIELDS = ("tenant_id", "lane")
MAX_REQUIREMENTS = 8  # a posting asking more skills than this (of one kind) is always decided exactly
MAX_LEVEL = 127
ALWAYS = -1  # a posting's cut when any eligible row enters (room on its shortlist, or too many requirements)


@dataclass(slots=True)
class OpenPosting:
    posting: dict  # ``id``, ``tenant_id``, ``lane`` and ``shortlist`` (candidates without reasons, breakdown)
    needs: PostingNeeds
    listed: frozenset[str]  # the providers on its shortlist
    cut: tuple | None  # the sort key a newcomer must beat (``shortlists.cut_key``; None: there is room)

    @classmethod
    def of(cls, posting: dict, needs: PostingNeeds) -> OpenPosting:
        shortlist = posting["shortlist"]
        return cls(posting, needs, shortlists.listed_providers(shortlist),
                   shortlists.cut_key(shortlist) if shortlist else None)

    @property
    def market(self) -> tuple[str, str]:
        return (self.needs.model, self.needs.category)

    def could_change(self, provider_id: str, rows: list[CandidateRow]) -> bool:
        """``shortlists.could_change`` with what the view keeps of the shortlist."""
        return shortlists.could_change(self.posting["shortlist"], self.needs, provider_id, rows,
                                       listed=self.listed, cut=self.cut)


def compact_shortlist(shortlist: dict | None) -> dict | None:
    """The shortlist as deciding and announcing a change read it: without the candidates' reasons and breakdowns."""
    if not shortlist:
        return shortlist
    return {**shortlist, "candidates": [{k: v for k, v in c.items() if k not in ("reasons", "breakdown")}
                                        for c in shortlist.get("candidates", ())]}


def _skill_table() -> np.ndarray:
    """``domain.skill_score`` by (level, asked level); asked level 0 is padding and scores 0."""
    table = np.zeros((MAX_LEVEL + 1, MAX_REQUIREMENTS), dtype=np.float64)
    for level in range(MAX_LEVEL + 1):
        for asked in range(1, MAX_REQUIREMENTS):
            table[level, asked] = domain.skill_score(level, asked)
    return table


class _MarketColumns:
    """One market's open postings as columns (a slot each; a removed posting's slot takes the last one)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.slot: dict[str, int] = {}
        self.cut = np.zeros(16, dtype=np.int64)
        self.days = np.zeros(16, dtype=np.float64)
        self.skills = {kind: (np.zeros((16, MAX_REQUIREMENTS), dtype=np.int64),
                              np.zeros((16, MAX_REQUIREMENTS), dtype=np.int64), np.zeros(16, dtype=np.int64))
                       for kind in ("required_skills", "nice_to_have_skills")}

    def _grow(self) -> None:
        def bigger(a: np.ndarray) -> np.ndarray:
            out = np.zeros((a.shape[0] * 2, *a.shape[1:]), dtype=a.dtype)
            out[: a.shape[0]] = a
            return out

        self.cut, self.days = bigger(self.cut), bigger(self.days)
        self.skills = {kind: tuple(bigger(a) for a in arrays) for kind, arrays in self.skills.items()}

    def put(self, entry: OpenPosting, vocabulary: dict[str, int]) -> None:
        posting_id = entry.posting["id"]
        i = self.slot.get(posting_id)
        if i is None:
            if len(self.ids) == len(self.cut):
                self._grow()
            i = self.slot[posting_id] = len(self.ids)
            self.ids.append(posting_id)
        exact = False
        for kind, (names, asked, count) in self.skills.items():
            requirements = getattr(entry.needs, kind)
            names[i], asked[i], count[i] = 0, 0, len(requirements)
            if len(requirements) > MAX_REQUIREMENTS or any(not 1 <= lvl < MAX_REQUIREMENTS for _, lvl in requirements):
                exact = True
                continue
            for j, (name, level) in enumerate(requirements):
                names[i, j] = vocabulary.setdefault(name, len(vocabulary) + 1)
                asked[i, j] = level
        self.cut[i] = ALWAYS if entry.cut is None or exact else -entry.cut[0]
        self.days[i] = entry.needs.published_days

    def remove(self, posting_id: str) -> None:
        i = self.slot.pop(posting_id)
        last = len(self.ids) - 1
        if i != last:
            moved = self.ids[last]
            self.ids[i], self.slot[moved] = moved, i
            self.cut[i], self.days[i] = self.cut[last], self.days[last]
            for arrays in self.skills.values():
                for a in arrays:
                    a[i] = a[last]
        self.ids.pop()

    def reachable(self, row: CandidateRow, vocabulary: dict[str, int], table: np.ndarray) -> list[str]:
        """The postings whose last place the row's score bound reaches (every one with room)."""
        n = len(self.ids)
        if any(level > MAX_LEVEL for level in row.skills.values()):
            return list(self.ids)
        levels = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        for name, level in row.skills.items():
            at = vocabulary.get(name)
            if at is not None:
                levels[at] = max(0, level)
        components: dict = {"rate": 1.0, "overlap": 1.0, "shoring": 1.0,
                            "track_record": domain.track_record_score(row.track),
                            "load": domain.load_score(row.track.committed_hours_per_week, row.capacity_hours)}
        for kind, (names, asked, count) in self.skills.items():
            scores = table[levels[names[:n]], asked[:n]].sum(axis=1)
            components[kind] = np.where(count[:n] == 0, 1.0, scores / np.maximum(count[:n], 1))
        if row.track.completed_contracts > 0:
            boost = 0.0
        else:
            freshness = 1.0 - (self.days[:n] - row.registered_days) / domain.NEW_PROVIDER_DAYS
            boost = domain.MAX_NEW_PROVIDER_BOOST * np.clip(freshness, 0.0, 1.0)
        # ``domain.to_units`` of ``domain.combine``, plus one unit for the vector sum's other rounding order
        bound = np.floor(domain.combine(components, boost) * domain.SCORE_UNITS + 0.5) + 1
        return [self.ids[i] for i in np.flatnonzero(bound >= self.cut[:n])]


class OpenPostings:
    """The open postings by id, by market (with its columns) and by shortlisted provider."""

    def __init__(self) -> None:
        self.entries: dict[str, OpenPosting] = {}
        self.markets: dict[tuple[str, str], _MarketColumns] = {}
        self.by_provider: dict[str, set[str]] = {}
        self._vocabulary: dict[str, int] = {}
        self._table = _skill_table()

    def __len__(self) -> int:
        return len(self.entries)

    def apply(self, posting_id: str, document: dict | None) -> None:
        """The posting's current document (``None``: deleted); only an open posting is kept."""
        self.discard(posting_id)
        if document is None or document.get("status") != domain.OPEN:
            return
        posting = {"id": posting_id, **{k: document.get(k) for k in KEPT_FIELDS},
                   "shortlist": compact_shortlist(document.get("shortlist"))}
        self._add(OpenPosting.of(posting, domain.posting_needs({**document, "id": posting_id})))

    def set_shortlist(self, posting_id: str, shortlist: dict) -> None:
        """An open posting's new shortlist (its needs unchanged)."""
        entry = self.entries.pop(posting_id)
        for provider_id in entry.listed:
            _remove(self.by_provider, provider_id, posting_id)
        self._add(OpenPosting.of({**entry.posting, "shortlist": compact_shortlist(shortlist)}, entry.needs))

    def _add(self, entry: OpenPosting) -> None:
        posting_id = entry.posting["id"]
        self.entries[posting_id] = entry
        self.markets.setdefault(entry.market, _MarketColumns()).put(entry, self._vocabulary)
        for provider_id in entry.listed:
            self.by_provider.setdefault(provider_id, set()).add(posting_id)

    def discard(self, posting_id: str) -> None:
        entry = self.entries.pop(posting_id, None)
        if entry is None:
            return
        market = self.markets[entry.market]
        market.remove(posting_id)
        if not market.ids:
            del self.markets[entry.market]
        for provider_id in entry.listed:
            _remove(self.by_provider, provider_id, posting_id)

    def touched_by(self, provider_id: str, rows: list[CandidateRow]) -> list[OpenPosting]:
        """The open postings a provider whose rows are now ``rows`` may change: those it is shortlisted on, and
        those of its markets whose last place one of its rows can reach by its score bound (or with room), each
        once, in posting id order (a stable order of writes). ``OpenPosting.could_change`` decides on each."""
        found = set(self.by_provider.get(provider_id, ()))
        for row in rows:
            for model in row.models:
                for category in row.categories:
                    market = self.markets.get((model, category))
                    if market is not None:
                        found.update(market.reachable(row, self._vocabulary, self._table))
        return [self.entries[posting_id] for posting_id in sorted(found)]

    def in_markets_of(self, rows: list[CandidateRow]) -> int:
        """How many open postings the rows' markets hold (what deciding without the bound would look at)."""
        markets = {(m, c) for row in rows for m in row.models for c in row.categories}
        return sum(len(self.markets[m].ids) for m in markets if m in self.markets)


def _remove(index: dict, key, posting_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(posting_id)
        if not ids:
            del index[key]
