"""The in-memory ranking index: candidate rows as numpy columns, ranked against a posting in one pass.

``MatchIndex.rank`` applies ``domain``'s hard constraints and soft components to many rows at once. The layout
follows what a posting asks first, the outsourcing model and category it serves: the rows offering each
(model, category) — a *market* — keep the columns a ranking reads in contiguous arrays of their own, so a posting
scans its market in order instead of gathering from columns the size of the whole index (a row offering several
models or categories is copied into each of its markets). Skills, per-unit prices and the rest of each row stay
index-wide, in columns indexed by row number (see ``MatchIndex``): the index holds no per-row Python object, and
``MatchIndex.row`` rebuilds a row, exactly, for the explanations.

Everything that does not depend on the posting is computed once, when a row is added, by ``domain``'s own scalar
functions: free capacity, the weighted track-record and load terms. Everything that depends on the posting only
through *where and when* a row works is computed per distinct schedule, (country, time zone) and language set —
a few thousand of each at most, cached per client time zone — and read through the row's small integer id; skill
and overlap scores come from small tables of ``domain``'s scalar values. So a posting costs a handful of vector
operations over its market and then over the rows that pass the hard constraints, and a row's vector score equals
its scalar ``domain.evaluate`` score exactly: every term is either a value ``domain`` computed or the same
floating-point operations in the same order. ``naive_rank`` is that scalar loop, kept as the reference (tests
compare the two; the benchmark measures both).

The index holds no state of its own: it is rebuilt from matching's database on start and kept current by the
service (see ``dependencies.LiveIndex``).
"""

from __future__ import annotations

import functools
import itertools
import math
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

import numpy as np

from services.matching import domain, geography
from services.matching.domain import CandidateRow, PostingNeeds, Schedule, TrackRecord
from services.matching.geography import SLOTS, WORDS

NO_MONEY = -1
OPEN_FOR_WORK = 1  # alive, verified and not marked unavailable
NDA_WILLING = 2
MAX_SKILL_LEVEL = 127  # skill levels are stored as int8 (the contract allows 1–5)
# Each index, and each compaction of one, numbers its rows anew: a generation names one numbering.
_GENERATIONS = itertools.count(1)



@functools.cache
def _per_day(business_hours: geography.BusinessHours) -> tuple[float, ...]:
    """Per count of overlapping slots: the overlap per business day, by ``domain``'s own scalar function."""
    return tuple(domain.overlap_per_day(slots, len(business_hours[0])) for slots in range(SLOTS + 1))


@functools.cache
def _overlap_term(business_hours: geography.BusinessHours) -> np.ndarray:
    """Per count of overlapping slots: the weighted overlap term (a row's is this table at its slot count)."""
    day_hours = geography.business_day_hours(business_hours)
    return np.array([domain.WEIGHTS["overlap"] * domain.overlap_score(per_day, day_hours)
                     for per_day in _per_day(business_hours)])


@functools.cache
def skill_scores(min_level: int) -> np.ndarray:
    """``domain.skill_score`` of every storable level for one asked level: a row's score is one lookup."""
    return np.array([domain.skill_score(level, min_level) for level in range(MAX_SKILL_LEVEL + 1)])


def _skill_pairs(asked: tuple[int, ...], count: int, weight: float, levels: int) -> np.ndarray:
    """By the levels (below ``levels``) of the first one or two skills asked (first level × ``levels`` + second
    level): the sum of their ``skill_score``s, and when no other skill is asked, divided by ``count`` and weighted —
    the operations ``domain.skills_score`` and ``domain.combine`` apply to a row, in the same order."""
    sums = skill_scores(asked[0])[:levels]
    if len(asked) == 2:
        sums = (sums[:, None] + skill_scores(asked[1])[None, :levels]).ravel()
    if count == len(asked):
        sums = sums / count
        sums *= weight
    return sums


@functools.cache
def _enough_overlap(min_hours: int, business_hours: geography.BusinessHours) -> np.ndarray:
    """Per count of overlapping slots: whether it gives the posting's minimum overlap per business day."""
    return np.array([not per_day < min_hours for per_day in _per_day(business_hours)], dtype=np.bool_)


@dataclass(frozen=True, slots=True)
class Ranked:
    """A posting's ranking: the best row (index, score units) of each of the best ``k`` providers in order, and how
    many rows were eligible: ``eligible_rows`` (ascending row numbers) with their ``eligible_units``."""

    top: list[tuple[int, int]]
    eligible: int
    eligible_rows: np.ndarray
    eligible_units: np.ndarray


class _Sparse:
    """name -> rows having it, with a value (skills and their levels; units and their prices)."""

    DENSE_CACHE = 64

    def __init__(self, value_type: str, dtype) -> None:
        # stdlib arrays: cheap to append to, and read by numpy without a copy when a dense column is built
        self.value_type, self.dtype = value_type, dtype
        self.rows: dict[str, array] = {}
        self.values: dict[str, array] = {}
        self.largest = 0  # of the values added
        self._dense: OrderedDict[str, np.ndarray] = OrderedDict()

    def add(self, name: str, row: int, value: int) -> None:
        rows = self.rows.get(name)
        if rows is None:
            rows = self.rows[name] = array("i")
            self.values[name] = array(self.value_type)
        rows.append(row)
        self.values[name].append(value)
        if value > self.largest:
            self.largest = value
        dense = self._dense.get(name)
        if dense is not None:
            if row < len(dense):
                dense[row] = value
            else:
                del self._dense[name]

    def warm(self, size: int, fill: int = 0) -> None:
        """The dense columns of the names the most rows have (as many as are kept), built ahead of any lookup."""
        for name in sorted(self.rows, key=lambda n: len(self.rows[n]), reverse=True)[: self.DENSE_CACHE]:
            self._dense_column(name, size, fill)

    def lookup(self, name: str, idx: np.ndarray, size: int, fill: int = 0) -> np.ndarray:
        """The value of ``name`` for each row in ``idx``, ``fill`` where a row does not have it.

        A dense column per name is kept for the most recently asked names (a bounded cache: a posting asks for a
        few skills, and the same skills come back), so a lookup is one gather.
        """
        return np.take(self._dense_column(name, size, fill), idx)

    def _dense_column(self, name: str, size: int, fill: int) -> np.ndarray:
        dense = self._dense.get(name)
        if dense is None or len(dense) < size:
            dense = np.full(size, fill, dtype=self.dtype)
            if name in self.rows:
                # intp positions: numpy scatters through int32 ones two to three times slower
                rows = np.frombuffer(self.rows[name], dtype=np.int32).astype(np.intp)
                dense[rows] = np.frombuffer(self.values[name], dtype=self.dtype)
            self._dense[name] = dense
            if len(self._dense) > self.DENSE_CACHE:
                self._dense.popitem(last=False)
        else:
            self._dense.move_to_end(name)
        return dense


def with_room(rows: int) -> int:
    """Columns' size after a bulk load: a sixteenth more than the rows they hold (growing by half as rows come leaves
    up to a third of them empty)."""
    return rows + rows // 16 + 16


class _Market:
    """The rows offering one (model, category): the columns a ranking reads, contiguous, in row order (gathering
    them from index-wide columns instead makes a ranking half again slower: the market's rows are spread out)."""

    # Row numbers and the ids every ranking looks up in a per-posting table (schedule, currency) are ``intp``: numpy
    # converts any other index to it before a gather, a pass over the eligible rows each time (a third of a
    # gather's cost); the ids read only for some postings stay int32 (memory).
    COLUMNS = (
        ("row", np.intp),
        ("flags", np.uint8),  # OPEN_FOR_WORK | NDA_WILLING
        ("available_from", np.int32),  # date ordinal, 0 when available now
        ("language_set", np.int32),
        ("free", np.float64),  # capacity minus committed hours a week
        ("schedule", np.intp),
        ("firm_schedule", np.int32),
        ("location", np.int32),
        ("currency", np.intp),
        ("hourly", np.int64),  # minor units, NO_MONEY when none
        ("retainer", np.int64),
        ("track_term", np.float64),  # weight × track-record score
        ("load_term", np.float64),  # weight × load score
        ("boost_from", np.float64),  # registration day; -inf once a contract is completed (no boost)
    )

    PASSING_KEPT = 8  # answers of ``passing`` kept per market

    def __init__(self) -> None:
        self.size = 0
        self.capacity = 0
        self.retainers = 0  # rows added with a monthly retainer (closed ones too): with none, it is not read
        self._passing: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._grow(16)

    def _grow(self, capacity: int) -> None:
        for name, dtype in self.COLUMNS:
            new = np.zeros(capacity, dtype=dtype)
            if self.capacity:
                new[: self.size] = getattr(self, name)[: self.size]
            setattr(self, name, new)
        self.capacity = capacity

    def passing(self, key: tuple, passes: np.ndarray, column: str) -> np.ndarray:
        """Whether each row passes a per-posting test: ``passes`` (a table by id) of the row's id in ``column``, the
        test named by ``key``; the answers to the few tests asked last are kept. A row's ids never change (a
        replaced row is closed and a new one added at the end), so a kept answer is only extended as rows come:
        one pass over a market's bytes instead of a gather by every row."""
        kept = self._passing.pop(key, None)
        if kept is None:
            kept = np.take(passes, getattr(self, column)[: self.size])
        elif len(kept) < self.size:
            kept = np.concatenate((kept, np.take(passes, getattr(self, column)[len(kept): self.size])))
        self._passing[key] = kept  # the last asked
        if len(self._passing) > self.PASSING_KEPT:
            self._passing.popitem(last=False)
        return kept

    def trim(self) -> None:
        """Room for a little more than it holds (``with_room``)."""
        self._grow(with_room(self.size))

    def append(self, values: tuple) -> None:
        if self.size == self.capacity:
            self._grow(self.capacity + self.capacity // 2)
        i = self.size
        for (name, _), value in zip(self.COLUMNS, values, strict=True):
            getattr(self, name)[i] = value
        if self.retainer[i] != NO_MONEY:
            self.retainers += 1
        self.size += 1

    def close(self, row: int) -> None:
        """``row`` no longer competes (removed or replaced)."""
        at = int(np.searchsorted(self.row[: self.size], row))
        if at < self.size and self.row[at] == row:
            self.flags[at] = 0


class _Interned:
    """Distinct values (schedules, locations, language sets, currencies, ...) and their small integer ids."""

    def __init__(self) -> None:
        self.ids: dict = {}
        self.values: list = []

    def id(self, value) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found

    def __len__(self) -> int:
        return len(self.values)


class _Tables:
    """Per-posting lookup tables (by client time zone, languages, ...), the most recently used of each kind kept.

    A key's first item names its kind. Each kind has its own bound, so one kind's many variants (coverage and
    overlap per client time zone, shoring preferences) do not push out another's: with one bound for all, the
    benchmark's 300 postings, needing 69 tables, rebuilt about twenty of them a pass (up to 0.4 ms each).
    """

    LIMIT = 64  # of each kind

    def __init__(self) -> None:
        self._kinds: dict[str, OrderedDict] = {}

    def get_or(self, key: tuple, make):
        tables = self._kinds.get(key[0])
        if tables is None:
            tables = self._kinds[key[0]] = OrderedDict()
        table = tables.get(key)
        if table is None:
            table = tables[key] = make()
            if len(tables) > self.LIMIT:
                tables.popitem(last=False)
        else:
            tables.move_to_end(key)
        return table


class _RowView:
    """``index.rows[i]``: row ``i`` as the ``CandidateRow`` it was added as (None once removed), rebuilt on demand
    from the columns — the index keeps no row objects."""

    __slots__ = ("_index",)

    def __init__(self, index: MatchIndex) -> None:
        self._index = index

    def __len__(self) -> int:
        return self._index.size

    def __getitem__(self, i: int) -> CandidateRow | None:
        if not 0 <= i < self._index.size:
            raise IndexError(i)
        return self._index.row(i) if self._index.alive[i] else None

    def __iter__(self):
        return (self[i] for i in range(self._index.size))


class MatchIndex:
    """Every row in index-wide columns (row number = position), a row's provider in ``by_provider``.

    A provider's rows are appended together, so they are consecutive: ``by_provider`` maps its id to its first row,
    and the ``provider`` column says which rows follow. What ranking reads per row is numbers in numpy columns
    (money as integer minor units, never floats); the few values many rows share (schedules, locations, language,
    model and category sets, currencies, statuses) are interned once and referenced by a small integer; display
    names and centres are UTF-8 in one buffer, skills (id, level) pairs in one int32 array (a provider's rows share
    theirs); only per-unit prices, which few rows have, stay Python tuples. ``row(i)`` rebuilds the
    ``CandidateRow`` exactly, for explanations. Removed rows' numbers are not reused (markets and the per-name lists
    are in row order): the index is rebuilt once a quarter of its rows is dead.
    """

    INITIAL = 1024
    ROWS_REBUILT = 4096
    COLUMNS = (
        ("alive", np.bool_),
        ("provider", np.int32),  # number of the provider (``_provider_ids``)
        # the rest of the row (what ranking reads is in the markets), for ``row(i)``
        ("hourly", np.int64),  # minor units, NO_MONEY when none
        ("retainer", np.int64),
        ("flags", np.uint8),  # VERIFIED | NDA_WILLING
        ("status", np.int32),
        ("available_from", np.int32),  # date ordinal, 0 when None
        ("models", np.int32),
        ("categories", np.int32),
        ("languages", np.int32),
        ("location", np.int32),
        ("schedule", np.int32),
        ("firm_schedule", np.int32),
        ("currency", np.int32),
        ("capacity_hours", np.float64),
        ("registered_days", np.float64),
        ("active_contracts", np.int64),
        ("completed_contracts", np.int64),
        ("committed_hours", np.float64),
        ("sla_compliance", np.float64),  # NaN when None
        ("rating", np.float64),  # NaN when None
        ("committed_seats", np.int64),
        ("sla_windows", np.int64),
        ("committed_by_centre", np.int32),
        ("text_at", np.int64),  # the row's texts in ``_text``: display name, then centre id and name
        ("name_len", np.int32),
        ("centre_len", np.int32),  # -1 when None
        ("centre_name_len", np.int32),  # -1 when None
        ("skills_at", np.int64),  # the row's (skill id, level) pairs in ``_skill_pairs``
        ("skills_len", np.int32),
    )
    VERIFIED = 1

    def __init__(self) -> None:
        self.size = 0
        self.live = 0
        self.capacity_rows = 0
        self.by_provider: dict[str, int] = {}  # provider id -> its first row
        self._provider_ids: list[str | None] = []  # by provider number (a new one per upsert)
        self._text = bytearray()  # UTF-8 texts of the rows, one after another
        self._skill_pairs = array("i")  # skill id, level, ... (a provider's rows share theirs)
        self._per_unit: dict[int, tuple] = {}  # row -> ((unit, price units), ...), for the rows that have any
        self.skills = _Sparse("b", np.int8)
        self.unit_prices = _Sparse("q", np.int64)
        self.markets: dict[tuple[str, str], _Market] = {}
        self._schedules = _Interned()
        # a schedule's 64-slot words down a column (word j of every schedule contiguous: a per-schedule table is a
        # few passes along rows, not a reduction over each schedule's short row)
        self._schedule_words = np.zeros((WORDS, 16), dtype=np.uint64)
        self._locations = _Interned()
        self._language_sets = _Interned()
        self._currencies = _Interned()
        self._sets = _Interned()  # model and category sets
        self._statuses = _Interned()
        self._centre_loads = _Interned()
        self._skill_names = _Interned()
        self._tables = _Tables()
        self._rows_rebuilt: dict[int, CandidateRow] = {}
        # A row number means the same row (its columns never change) as long as the generation does: what is
        # known of row ``i`` (``open_postings``' kept explanations) is kept with it.
        self.generation = next(_GENERATIONS)
        self._allocate(self.INITIAL)

    @property
    def rows(self) -> _RowView:
        return _RowView(self)

    # --- storage ----------------------------------------------------------------------------------------------

    def finish_loading(self) -> None:
        """After a bulk load (the service's rebuild, a compaction, a benchmark's market): the columns trimmed to
        their rows with a little room (``_Market.trim``), and the dense columns of the skills and units most rows
        have (``_Sparse.warm``) built now, so no early ranking pays for building them."""
        for market in self.markets.values():
            market.trim()
        self._allocate(with_room(self.size))
        self.skills.warm(self.capacity_rows)
        self.unit_prices.warm(self.capacity_rows, NO_MONEY)

    def _allocate(self, capacity: int) -> None:
        for name, dtype in self.COLUMNS:
            new = np.zeros(capacity, dtype=dtype)
            if self.capacity_rows:
                new[: self.size] = getattr(self, name)[: self.size]
            setattr(self, name, new)
        self.capacity_rows = capacity

    def _schedule_id(self, schedule: Schedule) -> int:
        sid = self._schedules.ids.get(schedule)
        if sid is not None:
            return sid
        # Its words first: a schedule that cannot be read (an unknown time zone) raises before it is interned.
        words = geography.words(domain.schedule_mask(schedule))
        sid = self._schedules.id(schedule)
        if sid >= self._schedule_words.shape[1]:
            grown = np.zeros((WORDS, self._schedule_words.shape[1] * 2), dtype=np.uint64)
            grown[:, :sid] = self._schedule_words[:, :sid]
            self._schedule_words = grown
        self._schedule_words[:, sid] = words
        return sid

    def _encode_skills(self, skills: dict[str, int]) -> tuple[int, int]:
        pairs = array("i")  # a level beyond int32 raises here, before anything is written
        for name, level in skills.items():
            pairs.append(self._skill_names.id(name))
            pairs.append(level)
        at = len(self._skill_pairs)
        self._skill_pairs.extend(pairs)
        return at, len(skills)

    def _add_text(self, text: str | None) -> int:
        if text is None:
            return -1
        encoded = text.encode()
        self._text += encoded
        return len(encoded)

    def _get_text(self, at: int, length: int) -> str | None:
        return None if length < 0 else self._text[at:at + length].decode()

    def _append(self, row: CandidateRow, provider: int, shared: dict) -> None:
        """Add ``row`` as the next row of provider number ``provider``. ``shared`` holds the encoded objects of the
        provider's previous row, reused when this row's are equal (a firm's centres share them)."""
        if self.size == self.capacity_rows:
            self._allocate(self.capacity_rows + self.capacity_rows // 2)
        i = self.size
        track = row.track
        committed = track.committed_hours_per_week
        schedule, firm_schedule = self._schedule_id(row.schedule), self._schedule_id(row.firm_schedule)
        location, language_set = self._locations.id((row.country, row.time_zone)), self._language_sets.id(row.languages)
        currency = self._currencies.id(row.currency)
        available_from = row.available_from.toordinal() if row.available_from else 0
        hourly = NO_MONEY if row.hourly_units is None else row.hourly_units
        retainer = NO_MONEY if row.retainer_units is None else row.retainer_units
        market_values = (
            i,
            (OPEN_FOR_WORK if row.verified and row.availability_status != "unavailable" else 0)
            | (NDA_WILLING if row.nda_willing else 0),
            available_from, language_set, row.capacity_hours - committed, schedule, firm_schedule, location, currency,
            hourly, retainer,
            domain.WEIGHTS["track_record"] * domain.track_record_score(track),
            domain.WEIGHTS["load"] * domain.load_score(committed, row.capacity_hours),
            -np.inf if track.completed_contracts > 0 else row.registered_days,
        )
        if shared.get("skills_of") != row.skills:
            shared["skills_of"], shared["skills"] = row.skills, self._encode_skills(row.skills)
        skills_at, skills_len = shared["skills"]
        per_unit = tuple(row.per_unit_units.items()) or None
        if per_unit is not None and shared.get("per_unit") == per_unit:
            per_unit = shared["per_unit"]
        shared["per_unit"] = per_unit
        text_at = len(self._text)
        name_len = self._add_text(row.display_name)
        centre_len, centre_name_len = self._add_text(row.centre_id), self._add_text(row.centre_name)
        values = {
            "provider": provider, "hourly": hourly, "retainer": retainer,
            "flags": (self.VERIFIED if row.verified else 0) | (NDA_WILLING if row.nda_willing else 0),
            "status": self._statuses.id(row.availability_status), "available_from": available_from,
            "models": self._sets.id(row.models), "categories": self._sets.id(row.categories),
            "languages": language_set, "location": location, "schedule": schedule, "firm_schedule": firm_schedule,
            "currency": currency, "capacity_hours": row.capacity_hours, "registered_days": row.registered_days,
            "active_contracts": track.active_contracts, "completed_contracts": track.completed_contracts,
            "committed_hours": committed,
            "sla_compliance": np.nan if track.sla_compliance is None else track.sla_compliance,
            "rating": np.nan if track.rating is None else track.rating,
            "committed_seats": track.committed_seats, "sla_windows": track.sla_windows,
            "committed_by_centre": self._centre_loads.id(track.committed_by_centre),
            "text_at": text_at, "name_len": name_len, "centre_len": centre_len, "centre_name_len": centre_name_len,
            "skills_at": skills_at, "skills_len": skills_len,
            "alive": True,  # last: a value a column cannot hold raises before the row counts
        }
        for name, value in values.items():
            getattr(self, name)[i] = value
        if per_unit is not None:
            self._per_unit[i] = per_unit
        self.size += 1
        self.live += 1
        for model in row.models:
            for category in row.categories:
                market = self.markets.get((model, category))
                if market is None:
                    market = self.markets[(model, category)] = _Market()
                market.append(market_values)
        for name, level in row.skills.items():
            self.skills.add(name, i, max(0, min(MAX_SKILL_LEVEL, level)))
        for unit, price in row.per_unit_units.items():
            self.unit_prices.add(unit, i, price)

    def row(self, i: int) -> CandidateRow:
        """Row ``i`` rebuilt from the columns: equal, field by field, to the row that was added.

        A row's number is never reused and its columns never change, so the rows rebuilt last are kept (a bounded
        cache: the shortlisted rows come back with every re-ranking); they are shared, never to be modified."""
        row = self._rows_rebuilt.get(i)
        if row is None:
            if len(self._rows_rebuilt) >= self.ROWS_REBUILT:
                self._rows_rebuilt.clear()
            row = self._rows_rebuilt[i] = self._rebuild(i)
        return row

    def _rebuild(self, i: int) -> CandidateRow:
        # columns read with ``item``, as Python numbers, not as numpy scalars converted (9.0 against 10.6 µs a row)
        at = self.skills_at.item(i)
        pairs = self._skill_pairs[at:at + 2 * self.skills_len.item(i)]
        names = self._skill_names.values
        text_at, name_len, centre_len = self.text_at.item(i), self.name_len.item(i), self.centre_len.item(i)
        centre_at = text_at + name_len
        country, time_zone = self._locations.values[self.location.item(i)]
        available_from = self.available_from.item(i)
        hourly, retainer = self.hourly.item(i), self.retainer.item(i)
        sla, rating = self.sla_compliance.item(i), self.rating.item(i)
        flags = self.flags.item(i)
        return CandidateRow(
            provider_id=self._provider_ids[self.provider.item(i)],
            centre_id=self._get_text(centre_at, centre_len),
            display_name=self._get_text(text_at, name_len),
            centre_name=self._get_text(centre_at + max(centre_len, 0), self.centre_name_len.item(i)),
            models=self._sets.values[self.models.item(i)],
            categories=self._sets.values[self.categories.item(i)],
            languages=self._language_sets.values[self.languages.item(i)],
            skills={names[pairs[j]]: pairs[j + 1] for j in range(0, len(pairs), 2)},
            country=country,
            time_zone=time_zone,
            schedule=self._schedules.values[self.schedule.item(i)],
            firm_schedule=self._schedules.values[self.firm_schedule.item(i)],
            capacity_hours=self.capacity_hours.item(i),
            verified=bool(flags & self.VERIFIED),
            availability_status=self._statuses.values[self.status.item(i)],
            available_from=date.fromordinal(available_from) if available_from else None,
            nda_willing=bool(flags & NDA_WILLING),
            currency=self._currencies.values[self.currency.item(i)],
            hourly_units=None if hourly == NO_MONEY else hourly,
            retainer_units=None if retainer == NO_MONEY else retainer,
            per_unit_units=dict(self._per_unit.get(i, ())),
            registered_days=self.registered_days.item(i),
            track=TrackRecord(
                active_contracts=self.active_contracts.item(i),
                completed_contracts=self.completed_contracts.item(i),
                committed_hours_per_week=self.committed_hours.item(i),
                sla_compliance=None if sla != sla else sla,
                rating=None if rating != rating else rating,
                committed_seats=self.committed_seats.item(i),
                committed_by_centre=self._centre_loads.values[self.committed_by_centre.item(i)],
                sla_windows=self.sla_windows.item(i),
            ),
        )

    def provider_of(self, i: int) -> str:
        return self._provider_ids[self.provider.item(i)]

    def centre_of(self, i: int) -> str | None:
        return self._get_text(self.text_at.item(i) + self.name_len.item(i), self.centre_len.item(i))

    def sort_key(self, units: int, i: int) -> tuple:
        """``domain.sort_key`` of row ``i``, read from the columns."""
        return (-units, self.provider_of(i), self.centre_of(i) or "")

    def _sort_names(self, rows: np.ndarray) -> list[tuple[str, str]]:
        """(provider id, centre id or "") of each row: ``domain.sort_key`` after the score."""
        ids = self._provider_ids
        names = [(ids[number], "") for number in self.provider[rows].tolist()]
        for at in np.flatnonzero(self.centre_len[rows] >= 0).tolist():
            names[at] = (names[at][0], self.centre_of(int(rows[at])))
        return names

    def rows_of(self, provider_id: str) -> range:
        """The row numbers of a provider's current rows (consecutive)."""
        first = self.by_provider.get(provider_id)
        if first is None:
            return range(0)
        provider = self.provider
        number, end = provider.item(first), first + 1
        while end < self.size and provider.item(end) == number:  # Python ints, not numpy scalars
            end += 1
        return range(first, end)

    def row_of(self, key: tuple[str, str]) -> int | None:
        """The row number of a (provider id, centre id or "") key, None when the index does not hold it."""
        for i in self.rows_of(key[0]):
            if (self.centre_of(i) or "") == key[1]:
                return i
        return None

    def remove(self, provider_id: str) -> None:
        rows = self.rows_of(provider_id)
        if not rows:
            return
        self._provider_ids[int(self.provider[rows.start])] = None
        del self.by_provider[provider_id]
        for i in rows:
            for model in self._sets.values[int(self.models[i])]:
                for category in self._sets.values[int(self.categories[i])]:
                    self.markets[(model, category)].close(i)
            self.alive[i] = False
            self.live -= 1
        # Rows are append-only (markets and the sparse skill lists are in row order, so a removed row's number is
        # not reused): rebuild once a quarter is dead.
        dead = self.size - self.live
        if dead > 1024 and dead > self.live // 3:
            self._compact()

    def upsert(self, provider_id: str, rows: list[CandidateRow]) -> None:
        for row in rows:  # an unreadable schedule raises here, with the provider's rows still in place
            self._schedule_id(row.schedule)
            self._schedule_id(row.firm_schedule)
        self.remove(provider_id)
        if not rows:
            return
        number, first = len(self._provider_ids), self.size
        self._provider_ids.append(provider_id)
        shared: dict = {}
        for row in rows:
            self._append(row, number, shared)
            self.by_provider[provider_id] = first

    def _compact(self) -> None:
        fresh = MatchIndex()
        for provider_id in sorted(self.by_provider, key=self.by_provider.__getitem__):
            fresh.upsert(provider_id, self.provider_rows(provider_id))
        fresh.finish_loading()
        self.__dict__.update(fresh.__dict__)

    def provider_rows(self, provider_id: str) -> list[CandidateRow]:
        return [self.row(i) for i in self.rows_of(provider_id)]

    def __len__(self) -> int:
        return self.live

    # --- per-posting tables, by distinct schedule, location, language set, currency --------------------------

    def _overlap_slots(self, needs: PostingNeeds) -> np.ndarray:
        """Per schedule: half-hour slots it shares with the client's business hours."""
        count = len(self._schedules)

        def make() -> np.ndarray:
            client = np.array(geography.words(needs.client_mask), dtype=np.uint64)
            return np.bitwise_count(self._schedule_words[:, :count] & client[:, None]).sum(axis=0, dtype=np.int16)

        return self._tables.get_or(("overlap", needs.client_time_zone, needs.business_hours, count), make)

    def _covering(self, needs: PostingNeeds) -> np.ndarray | None:
        """Per schedule: whether it covers the hours the posting asks (None when it asks none)."""
        required = needs.coverage_mask
        if not required:
            return None
        count = len(self._schedules)

        def make() -> np.ndarray:
            want = np.array(geography.words(required), dtype=np.uint64)[:, None]
            return np.all((self._schedule_words[:, :count] & want) == want, axis=0)

        return self._tables.get_or(("covering", needs.coverage, needs.client_time_zone, needs.business_hours, count),
                                   make)

    def _overlap_terms(self, needs: PostingNeeds) -> np.ndarray:
        """Per schedule: the weighted overlap term."""
        slots = self._overlap_slots(needs)
        return self._tables.get_or(("overlap terms", needs.client_time_zone, needs.business_hours, len(slots)),
                                   lambda: _overlap_term(needs.business_hours)[slots])

    def _schedule_ok(self, needs: PostingNeeds, covering: np.ndarray | None) -> np.ndarray | None:
        """Per schedule: enough overlap with the client's business hours, and (but for 24/7, which a firm may
        cover with several centres) the coverage asked. None when the posting asks neither."""
        own_coverage = covering if needs.coverage != "24x7" else None
        if not needs.min_overlap_hours and own_coverage is None:
            return None

        def make() -> np.ndarray:
            ok = np.ones(len(self._schedules), dtype=np.bool_)
            if needs.min_overlap_hours:
                ok &= _enough_overlap(needs.min_overlap_hours, needs.business_hours)[self._overlap_slots(needs)]
            if own_coverage is not None:
                ok &= own_coverage
            return ok

        return self._tables.get_or(("schedule ok", needs.client_time_zone, needs.business_hours,
                                    needs.min_overlap_hours, needs.coverage, len(self._schedules)), make)

    def _shoring(self, needs: PostingNeeds) -> list:
        """Per location: its shoring class for this client."""
        count = len(self._locations)
        return self._tables.get_or(
            ("shoring", needs.client_country, needs.client_time_zone, count),
            lambda: [geography.shoring_class(needs.client_country, needs.client_time_zone, country, zone)
                     for country, zone in self._locations.values[:count]],
        )

    def _budgets(self, needs: PostingNeeds) -> np.ndarray:
        """Per currency: the posting's budget converted into it, in units (NaN where it cannot be converted)."""
        count = len(self._currencies)

        def make() -> np.ndarray:
            converted = [domain.budget_units_in(needs, code) for code in self._currencies.values[:count]]
            return np.array([np.nan if units is None else float(units) for units in converted] or [np.nan])

        return self._tables.get_or(("budget", needs.budget, count), make)

    def _shoring_terms(self, needs: PostingNeeds, shoring: list) -> np.ndarray:
        """Per location: the weighted shoring term for the posting's preference."""
        return self._tables.get_or(
            ("shoring terms", needs.client_country, needs.client_time_zone, needs.shoring_preference, len(shoring)),
            lambda: np.array([domain.WEIGHTS["shoring"] * domain.shoring_score(s, needs.shoring_preference)
                              for s in shoring] or [0.0]),
        )

    def _speaking(self, languages: tuple[str, ...]) -> np.ndarray:
        """Per language set: whether it holds every language asked."""
        count = len(self._language_sets)
        return self._tables.get_or(
            ("languages", languages, count),
            lambda: np.array([all(code in spoken for code in languages)
                              for spoken in self._language_sets.values[:count]], dtype=np.bool_),
        )

    # --- ranking ----------------------------------------------------------------------------------------------

    def rank(self, needs: PostingNeeds, k: int) -> Ranked:
        market = self.markets.get((needs.model, needs.category))
        if market is None or market.size == 0:
            return Ranked([], 0, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64))
        n = market.size

        # hard constraints over the market, in one boolean mask
        wanted = OPEN_FOR_WORK | (NDA_WILLING if needs.nda_required else 0)
        eligible = (market.flags[:n] & wanted) == wanted
        if needs.start_date is not None:
            eligible &= market.available_from[:n] <= needs.start_date.toordinal()
        if needs.languages:
            _keep(eligible, market, ("languages", needs.languages), self._speaking(needs.languages), "language_set")
        if needs.weekly_hours:
            eligible &= ~(market.free[:n] < needs.weekly_hours)
        covering = self._covering(needs)
        schedule_ok = self._schedule_ok(needs, covering)
        if schedule_ok is not None:
            _keep(eligible, market, ("schedule ok", needs.client_time_zone, needs.business_hours,
                                     needs.min_overlap_hours, needs.coverage), schedule_ok, "schedule")
        if needs.coverage == "24x7" and covering is not None:  # follow-the-sun: the firm's centres together
            eligible &= np.take(covering, market.schedule[:n]) | np.take(covering, market.firm_schedule[:n])
        shoring = self._shoring(needs)
        if needs.shoring_accepted:
            accepted = np.array([s in needs.shoring_accepted for s in shoring] or [False], dtype=np.bool_)
            _keep(eligible, market, ("accepted", needs.client_country, needs.client_time_zone, needs.shoring_accepted),
                  accepted, "location")

        at = np.flatnonzero(eligible)
        idx = np.take(market.row, at)
        units = self._score_units(needs, market, at, idx, shoring)
        return Ranked(self._top(idx, units, k), len(idx), idx, units)

    def _skills_term(self, requirements, weight: float, idx: np.ndarray) -> np.ndarray | float:
        """``weight`` × ``domain.skills_score`` of each row: the first two skills asked are read together, their
        levels picking one entry of ``_skill_pairs``, the rest one by one; the same sum in the same order."""
        if not requirements:
            return weight * 1.0
        levels = [self.skills.lookup(name, idx, self.capacity_rows) for name, _ in requirements[:2]]
        asked = tuple(min_level for _, min_level in requirements[:2])
        width = self.skills.largest + 1  # levels stored are 0 (none) to the largest any row has
        table = self._tables.get_or(("skills", asked, len(requirements), weight, width),
                                    lambda: _skill_pairs(asked, len(requirements), weight, width))
        if len(levels) == 1:
            return np.take(table, levels[0].astype(np.intp))
        pair = levels[0].astype(np.intp)
        pair *= width
        pair += levels[1]
        total = np.take(table, pair)
        if len(requirements) > 2:
            for name, min_level in requirements[2:]:
                total += np.take(skill_scores(min_level), self.skills.lookup(name, idx, self.capacity_rows))
            total /= len(requirements)
            total *= weight
        return total

    def _rate_term(self, needs: PostingNeeds, market: _Market, at: np.ndarray) -> np.ndarray | float:
        weight = domain.WEIGHTS["rate"]
        if needs.budget is None or needs.engagement is None:
            return weight * domain.NO_BUDGET_SCORE
        # what each row would charge, in the unit of the budget (``domain.cost_units``), and where it cannot say
        if needs.engagement == "hourly":
            hourly = np.take(market.hourly, at)
            unknown, cost = hourly == NO_MONEY, hourly.astype(np.float64)
        elif needs.engagement == "fixed" and needs.estimated_hours is not None:
            hourly = np.take(market.hourly, at)
            unknown, cost = hourly == NO_MONEY, (hourly * needs.estimated_hours).astype(np.float64)
        elif needs.engagement == "retainer":
            retainer = np.take(market.retainer, at) if market.retainers else None  # None: no row has one
            if needs.weekly_hours:
                hourly = np.take(market.hourly, at)
                derived = (hourly * needs.weekly_hours * domain.WEEKS_PER_MONTH_NUMERATOR).astype(np.float64)
                derived /= 12.0
                unknown, cost = hourly == NO_MONEY, derived
                if retainer is not None:
                    no_retainer = retainer == NO_MONEY
                    unknown &= no_retainer
                    cost = np.where(no_retainer, derived, retainer.astype(np.float64))
            elif retainer is None:
                return weight * domain.UNKNOWN_RATE_SCORE
            else:
                unknown, cost = retainer == NO_MONEY, retainer.astype(np.float64)
        elif needs.engagement == "per_unit" and needs.unit:
            prices = self.unit_prices.lookup(needs.unit, np.take(market.row, at), self.capacity_rows, NO_MONEY)
            unknown, cost = prices == NO_MONEY, prices.astype(np.float64)
        else:
            return weight * domain.UNKNOWN_RATE_SCORE
        budgets = self._budgets(needs)
        budget = np.take(budgets, np.take(market.currency, at))
        if (budgets != budgets).any():
            unknown |= budget != budget  # NaN: no exchange rate for the row's currency
        # ``domain.ratio_of`` and ``domain.rate_score``, operation by operation
        finite = not (budgets <= 0.0).any()
        if finite:
            ratio = np.divide(cost, budget, out=cost)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(budget <= 0.0, np.where(cost > 0.0, np.inf, 1.0), cost / budget)
        within = 1.0 - ratio
        within /= 0.4
        np.minimum(within, 1.0, out=within)
        score = ratio - 1.0
        score *= 2.0
        np.subtract(0.8, score, out=score)
        np.maximum(score, 0.0, out=score)
        if finite:
            # The branch that applies is the smaller one once the within-budget branch is held at 0.8 or more: at a
            # ratio up to 1, 0.8 + 0.2·min(1, (1 − r)/0.4) ≤ 0.8 + 2·(1 − r) (a factor of 4 apart, which no rounding
            # closes; equal at 1), and above 1 the other is at most 0.8. Cheaper than choosing by a mask of mixed
            # rows (a tenth of the time); the same values, as the floor changes no within-budget one.
            np.maximum(within, 0.0, out=within)
            within *= 0.2
            within += 0.8
            score = np.minimum(within, score, out=score)
        else:  # an infinite ratio, where the within-budget branch is −inf
            within *= 0.2
            within += 0.8
            score = np.where(ratio <= 1.0, within, score)
        if unknown.any():
            np.copyto(score, domain.UNKNOWN_RATE_SCORE, where=unknown)
        score *= weight
        return score

    def _score_units(self, needs: PostingNeeds, market: _Market, at: np.ndarray, idx: np.ndarray,
                     shoring: list) -> np.ndarray:
        """``domain.combine`` of the eligible rows, term by term in the order of ``domain.WEIGHTS``, in units."""
        terms = {
            "required_skills": self._skills_term(needs.required_skills, domain.WEIGHTS["required_skills"], idx),
            "nice_to_have_skills": self._skills_term(needs.nice_to_have_skills,
                                                     domain.WEIGHTS["nice_to_have_skills"], idx),
            "rate": self._rate_term(needs, market, at),
            "overlap": np.take(self._overlap_terms(needs), np.take(market.schedule, at)),
            "track_record": np.take(market.track_term, at),
            "load": np.take(market.load_term, at),
            "shoring": self._per_row(self._shoring_terms(needs, shoring), market.location, at),
        }
        total = None
        for name in domain.WEIGHTS:  # every array term is a fresh array: the sum is built in place
            term = terms[name]
            if total is None:
                total = term
            elif isinstance(total, np.ndarray):
                total += term
            else:
                total = total + term
        total *= domain.FIT_SHARE
        # The new-provider boost of every row, in place: a row registered more than its fading period before the
        # posting gets 0.0 (a row with a completed contract has boost_from = -inf: 0.0 too), and adding 0.0 changes
        # no sum; cheaper than picking out the recent rows (a gather and a scatter of a mask's mixed rows).
        boost = np.take(market.boost_from, at)
        np.subtract(needs.published_days, boost, out=boost)
        boost /= domain.NEW_PROVIDER_DAYS
        np.subtract(1.0, boost, out=boost)
        np.minimum(boost, 1.0, out=boost)
        np.maximum(boost, 0.0, out=boost)
        boost *= domain.MAX_NEW_PROVIDER_BOOST
        total += boost
        # ``domain.to_units``
        total *= domain.SCORE_UNITS
        total += 0.5
        np.floor(total, out=total)
        return total.astype(np.int64)

    @staticmethod
    def _per_row(table: np.ndarray, ids: np.ndarray, at: np.ndarray) -> np.ndarray | float:
        """``table``'s value for each of the rows ``at`` (``ids`` their entries in it); when every entry is the same
        (a shoring term for a posting that prefers none), that value alone: added to a sum, it is the same."""
        if table.min() == table.max():
            return float(table[0])
        return np.take(table, np.take(ids, at))

    def _top(self, idx: np.ndarray, units: np.ndarray, k: int) -> list[tuple[int, int]]:
        """The best row of each of the best ``k`` providers: a firm takes one place, whichever centre ranks it.

        The candidates are the rows at or above the ``want``-th best score (every row tied with it included, for a
        fair tie-break); when they hold fewer than ``k`` providers (one firm's centres fill them), ``want`` doubles.
        A provider's best row is then the first of its rows in order, as none outside the candidates beats it.
        """
        if len(idx) == 0 or k <= 0:
            return []
        want = k
        while True:
            if len(idx) > want:
                chosen = _at_least_kth_best(units, want)
            else:
                chosen = np.arange(len(idx))
            rows = idx[chosen]
            ordered = sorted(zip((-units[chosen]).tolist(), self._sort_names(rows), rows.tolist(),
                                 self.provider[rows].tolist(), strict=True))  # ``domain.sort_key``, then the row
            best: list[tuple[int, int]] = []
            seen: set[int] = set()
            for negative_units, _, row_index, provider in ordered:
                if provider not in seen:
                    seen.add(provider)
                    best.append((row_index, -negative_units))
            if len(best) >= k or len(chosen) == len(idx):
                return best[:k]
            want *= 2

    def position(self, ranked: Ranked, row_index: int) -> int | None:
        """1-based place a row gives its provider among all eligible providers, each ranked by its best row (None
        when the row is not eligible)."""
        where = int(np.searchsorted(ranked.eligible_rows, row_index))  # they ascend (``eligible_rows_of``)
        if where == len(ranked.eligible_rows) or ranked.eligible_rows[where] != row_index:
            return None
        mine = int(ranked.eligible_units[where])
        key = self.sort_key(mine, row_index)
        ahead = set(self.provider[ranked.eligible_rows[ranked.eligible_units > mine]].tolist())
        ahead.update(int(self.provider[t]) for t in ranked.eligible_rows[ranked.eligible_units == mine]
                     if self.sort_key(mine, int(t)) < key)
        ahead.discard(int(self.provider[row_index]))
        return len(ahead) + 1

    def eligible_rows_of(self, ranked: Ranked, provider_id: str) -> list[tuple[int, int]]:
        """A provider's eligible rows (index, score units), best first.

        ``ranked.eligible_rows`` ascend (a market's rows are in row order) and a provider's rows are consecutive:
        its eligible ones are one slice, found by binary search rather than by comparing every eligible row (a
        shortlist's firms ask this for each, on markets of tens of thousands of rows), read as Python numbers one by
        one (a provider has a few rows), and ordered only when two or more."""
        rows = self.rows_of(provider_id)
        eligible, units = ranked.eligible_rows, ranked.eligible_units
        at, found = int(eligible.searchsorted(rows.start)), []
        while at < len(eligible) and (row := eligible.item(at)) < rows.stop:
            found.append((row, units.item(at)))
            at += 1
        if len(found) > 1:
            found.sort(key=lambda item: self.sort_key(item[1], item[0]))
        return found


def _keep(eligible: np.ndarray, market: _Market, key: tuple, passes: np.ndarray, column: str) -> None:
    """Narrow ``eligible`` to the market's rows whose id in ``column`` has a true entry in the per-value table
    ``passes`` (``_Market.passing``, the test named by ``key``); nothing to read when every value passes (a
    language set all rows speak, schedules all of which overlap enough)."""
    if not passes.all():
        eligible &= market.passing(key, passes, column)


def _at_least_kth_best(units: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``units`` at least the ``k``-th best (``0 < k < len(units)``), in order.

    The ``k``-th best of an evenly spaced sample (about √(k·n) of them) is no better than the ``k``-th best of all
    (a subset's is never above the set's), so the rows at or above it hold the ``k`` best: the ``k``-th best is
    found among those (about as many) instead of by partitioning all ``n``: 27 µs instead of 170 at 22,000 rows
    here. Ties only make the candidates more.
    """
    step = max(1, int(len(units) / math.sqrt(k * len(units))))
    sample = units[::step]
    if len(sample) > k:
        candidates = np.flatnonzero(units >= np.partition(sample, len(sample) - k)[len(sample) - k])
    else:
        candidates = np.arange(len(units))
    values = units[candidates]
    return candidates[values >= np.partition(values, len(values) - k)[len(values) - k]]


def naive_rank(rows: list[CandidateRow], needs: PostingNeeds, k: int) -> list[tuple[CandidateRow, int]]:
    """The straightforward loop: each row checked and scored in pure Python, then sorted. The reference."""
    scored = []
    for row in rows:
        evaluation = domain.evaluate(row, needs, explain=False)
        if evaluation.eligible:
            scored.append((row, evaluation.units))
    scored.sort(key=lambda item: domain.sort_key(item[1], item[0]))
    best, seen = [], set()
    for row, units in scored:  # a firm takes one place: its best row
        if row.provider_id not in seen:
            seen.add(row.provider_id)
            best.append((row, units))
    return best[:k]
