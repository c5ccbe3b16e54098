"""The open postings in memory: what deciding which postings a provider's change can affect needs of them.

A provider's change can affect the open postings of its markets (model and category) and those it is listed on
(it may have left that market). This view answers that without reading the postings: per open posting its needs
(``domain.PostingNeeds``) and its current shortlist without reasons or breakdowns, indexed by market and by listed
provider. ``shortlists.could_change`` then decides with the same rules as before, but only for the postings the
provider is listed on and those whose cut one of its rows can reach: per market, the postings' cuts, skill asks and
publication days are kept as arrays, and each row's score ceiling (``domain.score_ceiling_units``) is computed for
all of them at once, as ranking computes scores for all rows.

Every matching process keeps its own view and several processes consume different events, so the view is kept
current the way the provider index is (see ``repository.mark_posting_changed``): every write to a posting gives
it the next number of ``counters.postings`` in its transaction, the counter serialising those transactions so the
numbers follow commit order; before deciding, a process reads the postings numbered above the last it applied
(one indexed query that returns only what changed since). A posting another process opened or re-ranked is
therefore seen by the next decision after its commit, and a restart rebuilds the view from the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.matching import domain, repository, shortlists
from services.matching.domain import CandidateRow


@dataclass(frozen=True, slots=True)
class OpenPosting:
    id: str
    needs: domain.PostingNeeds
    shortlist: dict | None  # candidates without reasons and breakdowns
    listed: frozenset[str]  # provider ids on the shortlist
    cut_units: int  # the last place's score, -1 while the shortlist has room (anyone eligible enters)


class _Columns:
    """One market's open postings as arrays: what a row's score ceiling, the cut test and the cheapest hard
    constraints read."""

    def __init__(self, entries: list[OpenPosting]) -> None:
        self.ids = [entry.id for entry in entries]
        self.at = {posting_id: n for n, posting_id in enumerate(self.ids)}
        self.asks: dict[tuple, int] = {}
        self.languages: dict[tuple, int] = {}
        size = len(entries)
        self.cut = np.zeros(size, dtype=np.int64)
        self.published_days = np.zeros(size, dtype=np.float64)
        self.required = np.zeros(size, dtype=np.int32)
        self.nice = np.zeros(size, dtype=np.int32)
        self.language_set = np.zeros(size, dtype=np.int32)
        self.nda = np.zeros(size, dtype=np.bool_)
        self.weekly_hours = np.zeros(size, dtype=np.float64)  # 0: none asked
        self.start = np.zeros(size, dtype=np.int64)  # date ordinal, 0: none asked
        for entry in entries:
            self.update(entry)

    def update(self, entry: OpenPosting) -> None:
        n, needs = self.at[entry.id], entry.needs
        self.cut[n] = entry.cut_units
        self.published_days[n] = needs.published_days
        self.required[n] = self.asks.setdefault(needs.required_skills, len(self.asks))
        self.nice[n] = self.asks.setdefault(needs.nice_to_have_skills, len(self.asks))
        self.language_set[n] = self.languages.setdefault(needs.languages, len(self.languages))
        self.nda[n] = needs.nda_required
        self.weekly_hours[n] = needs.weekly_hours or 0
        self.start[n] = needs.start_date.toordinal() if needs.start_date else 0

    def reachable(self, row: CandidateRow) -> np.ndarray:
        """Positions of the postings the row may enter: it passes the hard constraints checked here (``domain.
        evaluate``'s availability, NDA, language and capacity checks) and its score ceiling reaches the cut
        (``domain.score_ceiling_units`` for every posting at once, term by term in the same order), or there is
        room on the shortlist."""
        if not row.verified or row.availability_status == "unavailable":
            return np.zeros(0, dtype=np.int64)
        possible = ~(self.nda & (not row.nda_willing))
        possible &= np.array([all(code in row.languages for code in asked) for asked in self.languages]
                             or [True])[self.language_set]
        free = row.capacity_hours - row.track.committed_hours_per_week
        possible &= ~((self.weekly_hours > 0) & (free < self.weekly_hours))
        if row.available_from:
            possible &= ~((self.start > 0) & (row.available_from.toordinal() > self.start))
        skill = np.array([domain.skills_score(row.skills, ask) for ask in self.asks] or [0.0])
        best = {**dict.fromkeys(domain.WEIGHTS, 1.0), "required_skills": skill[self.required],
                "nice_to_have_skills": skill[self.nice], "track_record": domain.track_record_score(row.track),
                "load": domain.load_score(row.track.committed_hours_per_week, row.capacity_hours)}
        if row.track.completed_contracts > 0:
            boost = 0.0
        else:
            freshness = 1.0 - (self.published_days - row.registered_days) / domain.NEW_PROVIDER_DAYS
            boost = domain.MAX_NEW_PROVIDER_BOOST * np.clip(freshness, 0.0, 1.0)
        ceiling = np.floor(domain.combine(best, boost) * domain.SCORE_UNITS + 0.5) + 1
        return np.flatnonzero(possible & (ceiling >= self.cut))  # a cut of -1 (room) lets every row in


def _market(entry: OpenPosting) -> tuple[str, str]:
    return (entry.needs.model, entry.needs.category)


def _compact(shortlist: dict | None) -> dict | None:
    if not shortlist:
        return None
    candidates = [{k: v for k, v in c.items() if k not in ("reasons", "breakdown")}
                  for c in shortlist.get("candidates") or ()]
    return {**shortlist, "candidates": candidates}


class OpenPostings:
    def __init__(self) -> None:
        self.postings: dict[str, OpenPosting] = {}
        self.by_market: dict[tuple[str, str], set[str]] = {}
        self.by_provider: dict[str, set[str]] = {}
        self.applied_seq = 0
        self._columns: dict[tuple[str, str], _Columns] = {}  # per market, built when asked, dropped on a change

    def __len__(self) -> int:
        return len(self.postings)

    def apply(self, document: dict) -> None:
        """Put a posting's stored state in the view (an open one) or take it out (any other status)."""
        before = self.postings.pop(document["id"], None)
        if before is not None:
            self._unindex(before)
        entry = self._entry(document) if document.get("status") == repository.OPEN else None
        if entry is not None:
            self.postings[entry.id] = entry
            self.by_market.setdefault(_market(entry), set()).add(entry.id)
            for provider_id in entry.listed:
                self.by_provider.setdefault(provider_id, set()).add(entry.id)
        columns = self._columns.get(_market(before)) if before is not None else None
        if columns is not None and entry is not None and _market(entry) == _market(before):
            columns.update(entry)  # the same posting re-ranked or edited in its market: its arrays change in place
            return
        for changed in (before, entry):  # a posting came, left or moved: those markets' arrays are built again
            if changed is not None:
                self._columns.pop(_market(changed), None)

    @staticmethod
    def _entry(document: dict) -> OpenPosting:
        shortlist = _compact(document.get("shortlist"))
        cut = shortlists.cut_key(shortlist) if shortlist else None
        return OpenPosting(document["id"], domain.posting_needs(document), shortlist,
                           frozenset(c["provider_id"] for c in (shortlist or {}).get("candidates", ())),
                           -1 if cut is None else -cut[0])

    def _unindex(self, entry: OpenPosting) -> None:
        self.by_market[_market(entry)].discard(entry.id)
        for provider_id in entry.listed:
            listed_on = self.by_provider[provider_id]
            listed_on.discard(entry.id)
            if not listed_on:
                del self.by_provider[provider_id]

    def touched_by(self, provider_id: str, models: set[str], categories: set[str]) -> list[str]:
        """The open postings in the provider's markets and those it is listed on (what
        ``repository.open_postings_touched_by`` reads from the database), in a stable order."""
        found = set(self.by_provider.get(provider_id, ()))
        for model in models:
            for category in categories:
                found |= self.by_market.get((model, category), set())
        return sorted(found)

    def could_change(self, provider_id: str, rows: list[CandidateRow]) -> list[str]:
        """The open postings whose shortlist the provider, now with ``rows``, can change: ``shortlists.could_change``
        over those it is listed on and those of its markets whose cut one of its rows can reach."""
        found = set(self.by_provider.get(provider_id, ()))
        for market in {(model, category) for row in rows for model in row.models for category in row.categories}:
            if not self.by_market.get(market):
                continue
            columns = self._columns.get(market)
            if columns is None:
                columns = self._columns[market] = _Columns([self.postings[i] for i in sorted(self.by_market[market])])
            for row in rows:
                if market[0] in row.models and market[1] in row.categories:
                    found.update(columns.ids[at] for at in columns.reachable(row))
        return [posting_id for posting_id in sorted(found)
                if shortlists.could_change(self.postings[posting_id].shortlist, self.postings[posting_id].needs,
                                           provider_id, rows)]
