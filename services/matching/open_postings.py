"""What re-matching needs of the open postings, in memory: which ones a changed provider can affect.

A provider can change a posting's shortlist only if it offers the posting's market — the (model, category) pair the
ranking index ranks a posting against (``MatchIndex.rank``: a row outside it is never a candidate) — or if it is
on the shortlist already (it may have left the market, or dropped out). So the view keeps, per open posting, its
needs (``domain.posting_needs``), its lane, tenant and current shortlist (without the candidates' reasons and
breakdowns, which deciding never reads), indexed by market and by shortlisted provider.

Which of them a changed row can enter is decided for all of them at once: the view keeps the postings' needs and
the score of their shortlist's last place in columns (``_Columns``), and ``_RowDecision`` evaluates the row against
every open posting of its markets with ``domain.evaluate``'s rules and arithmetic (hard constraints as boolean
arrays, the score to the last bit), so the postings it finds are exactly those ``shortlists.could_change`` names,
without a per-posting evaluation.

Pure: it is fed posting documents by whoever follows the database (``dependencies.LiveIndex``), in commit order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.matching import domain, geography, ranking, shortlists
from services.matching.domain import CandidateRow, PostingNeeds
from services.matching.explanations import Explanations

# The posting fields kept: what re-ranking and its announcement read (``handlers.rerank``, ``events``).
KEPT_FIELDS = ("tenant_id", "lane")
MAX_REQUIREMENTS = 8  # a posting asking more skills than this (of one kind) is decided by ``domain.evaluate``
MAX_ASKED = 15  # ... and one asking a level above this
MAX_LEVEL = ranking.MAX_SKILL_LEVEL  # a row with a skill level above this is decided by ``domain.evaluate``
NO_DATE = np.iinfo(np.int64).max


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


def _skill_table() -> np.ndarray:
    """``domain.skill_score`` by (level, asked level), from the ranking index's own tables; asked level 0 is
    padding and scores 0."""
    table = np.zeros((MAX_LEVEL + 1, MAX_ASKED + 1), dtype=np.float64)
    for asked in range(1, MAX_ASKED + 1):
        table[:, asked] = ranking.skill_scores(asked)
    return table


class _Facets:
    """Distinct values of one part of the postings' needs (a client's hours and coverage, a budget and engagement,
    ...), each with the needs of a posting that has it: a row's scalar value for each distinct one is computed
    once per decision, by ``domain``'s own functions, and read through the posting's small integer id."""

    def __init__(self, key) -> None:
        self.key = key
        self.ids: dict = {}
        self.needs: list[PostingNeeds] = []

    def id(self, needs: PostingNeeds) -> int:
        key = self.key(needs)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.needs)
            self.needs.append(needs)
        return found

    def values(self, of, dtype=np.float64) -> np.ndarray:
        return np.array([of(needs) for needs in self.needs] or [0], dtype=dtype)


def _schedule_key(needs: PostingNeeds) -> tuple:
    return (needs.client_time_zone, needs.business_hours, needs.coverage, needs.min_overlap_hours)


def _shoring_key(needs: PostingNeeds) -> tuple:
    return (needs.client_country, needs.client_time_zone, needs.shoring_accepted, needs.shoring_preference)


def _rate_key(needs: PostingNeeds) -> tuple:
    return (needs.budget, needs.engagement, needs.unit, needs.weekly_hours, needs.estimated_hours)


class _Columns:
    """The open postings' needs and shortlist cuts as columns (a slot each; a removed posting's slot takes the
    last one), so one row is evaluated against all of them in one vector pass with exactly ``domain.evaluate``'s
    arithmetic: hard constraints as boolean arrays, each soft component either a value ``domain`` computed (per
    distinct facet, see ``_Facets``) or the same floating-point operations in the same order."""

    SCALARS = (
        ("market", np.int32),
        ("start", np.int64),  # date ordinal, NO_DATE when none
        ("nda", np.bool_),
        ("weekly_hours", np.float64),  # 0 when none
        ("languages", np.int32),
        ("schedule", np.int32),
        ("shoring", np.int32),
        ("rate", np.int32),
        ("published", np.float64),
        ("wide", np.bool_),  # needs the columns cannot hold
        ("scalar", np.bool_),  # wide, or no shortlist: decided by ``domain.evaluate``
        ("room", np.bool_),  # the shortlist is not full: any eligible row enters
        ("cut", np.int64),  # the last place's score units
    )
    SKILLS = ("required_skills", "nice_to_have_skills")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.slot: dict[str, int] = {}
        self.capacity = 0
        self._grow(64)

    def _grow(self, capacity: int) -> None:
        def bigger(name: str, shape: tuple, dtype) -> None:
            new = np.zeros(shape, dtype=dtype)
            if self.capacity:
                new[: self.capacity] = getattr(self, name)
            setattr(self, name, new)

        for name, dtype in self.SCALARS:
            bigger(name, (capacity,), dtype)
        for kind in self.SKILLS:
            bigger(f"{kind}_names", (capacity, MAX_REQUIREMENTS), np.int64)
            bigger(f"{kind}_asked", (capacity, MAX_REQUIREMENTS), np.int64)
            bigger(f"{kind}_count", (capacity,), np.int64)
        self.capacity = capacity

    def put(self, entry: OpenPosting, market: int, facets: dict[str, _Facets], vocabulary: dict[str, int]) -> None:
        posting_id, needs = entry.posting["id"], entry.needs
        i = self.slot.get(posting_id)
        if i is None:
            if len(self.ids) == self.capacity:
                self._grow(self.capacity * 2)
            i = self.slot[posting_id] = len(self.ids)
            self.ids.append(posting_id)
        scalar = False
        for kind in self.SKILLS:
            requirements = getattr(needs, kind)
            names, asked = getattr(self, f"{kind}_names"), getattr(self, f"{kind}_asked")
            names[i], asked[i], getattr(self, f"{kind}_count")[i] = 0, 0, len(requirements)
            if len(requirements) > MAX_REQUIREMENTS or any(not 1 <= lvl <= MAX_ASKED for _, lvl in requirements):
                scalar = True
                continue
            for j, (name, level) in enumerate(requirements):
                names[i, j] = vocabulary.setdefault(name, len(vocabulary) + 1)
                asked[i, j] = level
        self.market[i] = market
        self.start[i] = NO_DATE if needs.start_date is None else needs.start_date.toordinal()
        self.nda[i] = needs.nda_required
        self.weekly_hours[i] = needs.weekly_hours or 0
        for name, facet in facets.items():
            getattr(self, name)[i] = facet.id(needs)
        self.published[i] = needs.published_days
        self.wide[i] = scalar
        self.shortlisted(entry)

    def shortlisted(self, entry: OpenPosting) -> None:
        """The posting's shortlist changed (its needs did not)."""
        i = self.slot[entry.posting["id"]]
        self.scalar[i] = self.wide[i] or entry.posting["shortlist"] is None  # no shortlist: any change re-ranks it
        self.room[i] = entry.cut is None
        self.cut[i] = 0 if entry.cut is None else -entry.cut[0]

    def remove(self, posting_id: str) -> None:
        i = self.slot.pop(posting_id)
        last = len(self.ids) - 1
        if i != last:
            moved = self.ids[last]
            self.ids[i], self.slot[moved] = moved, i
            for name, _ in self.SCALARS:
                column = getattr(self, name)
                column[i] = column[last]
            for kind in self.SKILLS:
                for part in ("names", "asked", "count"):
                    column = getattr(self, f"{kind}_{part}")
                    column[i] = column[last]
        self.ids.pop()


@dataclass(slots=True)
class RowScores:
    """One row's evaluation against several open postings (``_RowDecision.evaluate``): the slots it is eligible
    for and, on each, its units and soft components (an array over those slots, or one value for all of them),
    with the per-facet values its reasons are written from (``domain._reasons``'s inputs)."""

    at: np.ndarray
    units: np.ndarray
    components: dict  # ``domain.WEIGHTS``' names, then "new_provider_boost"
    per_day: np.ndarray  # by schedule facet
    classes: list  # shoring class by shoring facet

    def component(self, name: str, j: int) -> float:
        value = self.components[name]
        return float(value[j]) if isinstance(value, np.ndarray) else value


class _RowDecision:
    """One candidate row against the open postings of its markets: which it qualifies for, and its score units
    there — ``domain.evaluate`` term by term, over the postings at once."""

    def __init__(self, view: OpenPostings, row: CandidateRow) -> None:
        self.view, self.row = view, row

    def units(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of the postings in slots ``at``: the ones (slots) the row is eligible for, and its units on each."""
        scores = self.evaluate(at)
        return scores.at, scores.units

    def eligible(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """Of the postings in slots ``at`` (all in the row's markets): the ones (slots) the row is eligible for
        (``domain.evaluate``'s hard constraints), with its overlap per day by schedule facet and its shoring class by
        shoring facet."""
        view, row, columns = self.view, self.row, self.view.columns
        if not row.verified or row.availability_status == "unavailable":
            return at[:0], np.zeros(0), []
        eligible = np.ones(len(at), dtype=np.bool_)
        if row.available_from:
            eligible &= columns.start[at] >= row.available_from.toordinal()
        if not row.nda_willing:
            eligible &= ~columns.nda[at]
        eligible &= view.facets["languages"].values(
            lambda needs: all(code in row.languages for code in needs.languages), np.bool_)[columns.languages[at]]
        free = row.capacity_hours - row.track.committed_hours_per_week
        weekly = columns.weekly_hours[at]
        eligible &= ~((weekly != 0) & (free < weekly))
        schedules = view.facets["schedule"]
        per_day = schedules.values(lambda needs: domain.row_overlap_per_day(row, needs))
        eligible &= schedules.values(lambda needs: domain.covers(row, needs)[0], np.bool_)[columns.schedule[at]]
        shoring = view.facets["shoring"]
        classes = [geography.shoring_class(n.client_country, n.client_time_zone, row.country, row.time_zone)
                   for n in shoring.needs]
        eligible &= np.array([not n.shoring_accepted or c in n.shoring_accepted for n, c in
                              zip(shoring.needs, classes, strict=True)] or [False])[columns.shoring[at]]
        minimum = np.array([n.min_overlap_hours for n in schedules.needs] or [0])
        eligible &= ~((minimum != 0) & (per_day < minimum))[columns.schedule[at]]
        return at[eligible], per_day, classes

    def evaluate(self, at: np.ndarray) -> RowScores:
        """``domain.evaluate`` of the row on each posting in slots ``at`` (all in the row's markets)."""
        view, row, columns = self.view, self.row, self.view.columns
        at, per_day, classes = self.eligible(at)
        if not len(at):
            return RowScores(at, np.zeros(0, dtype=np.int64), {}, per_day, classes)
        schedules, shoring = view.facets["schedule"], view.facets["shoring"]
        components = {
            "rate": view.facets["rate"].values(lambda needs: domain.rate_component(row, needs, False)[0])[
                columns.rate[at]],
            "overlap": np.array([domain.overlap_score(d, n.day_hours)
                                 for n, d in zip(schedules.needs, per_day, strict=True)] or [0.0])[
                columns.schedule[at]],
            "track_record": domain.track_record_score(row.track),
            "load": domain.load_score(row.track.committed_hours_per_week, row.capacity_hours),
            "shoring": np.array([domain.shoring_score(c, n.shoring_preference)
                                 for n, c in zip(shoring.needs, classes, strict=True)] or [0.0])[columns.shoring[at]],
        }
        levels = np.zeros(len(view.vocabulary) + 1, dtype=np.int64)
        for name, level in row.skills.items():
            found = view.vocabulary.get(name)
            if found is not None:
                levels[found] = max(0, level)  # ``domain.skill_score`` of a level at or below 0 is 0
        for kind in _Columns.SKILLS:
            names, asked = getattr(columns, f"{kind}_names")[at], getattr(columns, f"{kind}_asked")[at]
            count = getattr(columns, f"{kind}_count")[at]
            total = np.zeros(len(at))
            for j in range(MAX_REQUIREMENTS):  # ``domain.skills_score``'s sum, in its order (padding adds 0.0)
                total += view.table[levels[names[:, j]], asked[:, j]]
            components[kind] = np.where(count == 0, 1.0, total / np.maximum(count, 1))
        if row.track.completed_contracts > 0:
            boost = 0.0
        else:  # ``domain.new_provider_boost``
            freshness = 1.0 - (columns.published[at] - row.registered_days) / domain.NEW_PROVIDER_DAYS
            boost = domain.MAX_NEW_PROVIDER_BOOST * np.maximum(0.0, np.minimum(1.0, freshness))
        score = domain.combine(components, boost)
        units = np.floor(score * domain.SCORE_UNITS + 0.5).astype(np.int64)  # ``domain.to_units``
        components = {name: components[name] for name in domain.WEIGHTS}
        components["new_provider_boost"] = boost
        return RowScores(at, units, components, per_day, classes)


class OpenPostings:
    """The open postings by id, in columns (``_Columns``) and by shortlisted provider."""

    def __init__(self) -> None:
        self.entries: dict[str, OpenPosting] = {}
        self.columns = _Columns()
        self.markets: dict[tuple[str, str], int] = {}  # market -> its number in the ``market`` column
        self.market_sizes: dict[int, int] = {}
        self.by_provider: dict[str, set[str]] = {}
        self.vocabulary: dict[str, int] = {}
        self.facets = {"languages": _Facets(lambda needs: needs.languages), "schedule": _Facets(_schedule_key),
                       "shoring": _Facets(_shoring_key), "rate": _Facets(_rate_key)}
        self.table = _skill_table()
        self.explanations = Explanations(self.needs_of)  # of the candidates of each open posting's shortlist

    def __len__(self) -> int:
        return len(self.entries)

    def needs_of(self, posting_id: str) -> PostingNeeds | None:
        entry = self.entries.get(posting_id)
        return None if entry is None else entry.needs

    def apply(self, posting_id: str, document: dict | None) -> None:
        """The posting's current document (``None``: deleted); only an open posting is kept."""
        if document is None or document.get("status") != domain.OPEN:
            self.discard(posting_id)
            self.explanations.forget(posting_id)
            return
        needs = domain.posting_needs({**document, "id": posting_id})
        current = self.entries.get(posting_id)
        kept = {k: document.get(k) for k in KEPT_FIELDS}
        if current is not None and current.needs == needs and all(current.posting[k] == v for k, v in kept.items()):
            self.set_shortlist(posting_id, document.get("shortlist"))  # most changes: a new shortlist
            return
        self.discard(posting_id)
        shortlist = shortlists.without_details(document.get("shortlist"))
        self._add(OpenPosting.of({"id": posting_id, **kept, "shortlist": shortlist}, needs))

    def set_shortlist(self, posting_id: str, shortlist: dict | None) -> None:
        """An open posting's new shortlist (its needs unchanged)."""
        before = self.entries[posting_id]
        entry = self.entries[posting_id] = OpenPosting.of(
            {**before.posting, "shortlist": shortlists.without_details(shortlist)}, before.needs)
        self.columns.shortlisted(entry)
        for provider_id in before.listed - entry.listed:  # most changes move one provider in or out
            _remove(self.by_provider, provider_id, posting_id)
        for provider_id in entry.listed - before.listed:
            self.by_provider.setdefault(provider_id, set()).add(posting_id)

    def _add(self, entry: OpenPosting) -> None:
        self.entries[entry.posting["id"]] = entry
        self.explanations.adopt(entry.needs)
        market = self.markets.setdefault(entry.market, len(self.markets))
        self.market_sizes[market] = self.market_sizes.get(market, 0) + 1
        self._index(entry)

    def _index(self, entry: OpenPosting) -> None:
        posting_id = entry.posting["id"]
        self.columns.put(entry, self.markets[entry.market], self.facets, self.vocabulary)
        for provider_id in entry.listed:
            self.by_provider.setdefault(provider_id, set()).add(posting_id)

    def discard(self, posting_id: str) -> None:
        entry = self.entries.pop(posting_id, None)
        if entry is None:
            return
        self.columns.remove(posting_id)
        self.market_sizes[self.markets[entry.market]] -= 1
        for provider_id in entry.listed:
            _remove(self.by_provider, provider_id, posting_id)

    def touched_by(self, provider_id: str, rows: list[CandidateRow]) -> list[OpenPosting]:
        """Exactly the open postings a provider whose rows are now ``rows`` can change (``shortlists.could_change``
        of each): those it is shortlisted on (it may move or drop), and those one of its rows now qualifies for
        and sorts before the last place of (or has room on), in posting id order (a stable order of writes).

        Each row is evaluated against all open postings of its markets at once (``_RowDecision``)."""
        found = set(self.by_provider.get(provider_id, ()))
        n = len(self.columns.ids)
        for row in rows:
            markets = [self.markets[m] for m in ((model, category) for model in row.models
                                                 for category in row.categories) if m in self.markets]
            if not markets or n == 0:
                continue
            at = np.flatnonzero(np.isin(self.columns.market[:n], markets))
            if any(level > MAX_LEVEL for level in row.skills.values()):
                found.update(self._decided_one_by_one(provider_id, row, at))
                continue
            scalar = self.columns.scalar[at]
            if scalar.any():
                found.update(self._decided_one_by_one(provider_id, row, at[scalar]))
                at = at[~scalar]
            at, units = _RowDecision(self, row).units(at)
            cut = self.columns.cut[at]
            enters = self.columns.room[at] | (units > cut)
            found.update(self.columns.ids[i] for i in at[enters])
            tied = ~enters & (units == cut)
            for i, tied_units in zip(at[tied].tolist(), units[tied].tolist(), strict=True):  # the ids decide
                posting_id = self.columns.ids[i]
                if domain.sort_key(tied_units, row) < self.entries[posting_id].cut:
                    found.add(posting_id)
        return [self.entries[posting_id] for posting_id in sorted(found)]

    def _decided_one_by_one(self, provider_id: str, row: CandidateRow, at: np.ndarray) -> list[str]:
        ids = [self.columns.ids[i] for i in at]
        return [posting_id for posting_id in ids if self.entries[posting_id].could_change(provider_id, [row])]

    def in_markets_of(self, rows: list[CandidateRow]) -> int:
        """How many open postings the rows' markets hold (what deciding one posting at a time would look at)."""
        markets = {self.markets[m] for m in ((mo, c) for row in rows for mo in row.models for c in row.categories)
                   if m in self.markets}
        return sum(self.market_sizes[m] for m in markets)


def _remove(index: dict, key, posting_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(posting_id)
        if not ids:
            del index[key]
