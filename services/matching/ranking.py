"""The in-memory ranking index: every candidate row as numpy columns, ranked against a posting in one pass.

``MatchIndex.rank`` applies ``domain``'s hard constraints and soft components to all rows at once. Work that
depends only on *where and when* a row works is done per distinct schedule and per distinct (country, time zone)
— a few hundred of each, however many providers there are — and then gathered by row, so a posting costs a
handful of vector operations over the rows that pass the cheap checks (model, category, verified, availability,
NDA, languages). The arithmetic of every score mirrors ``domain`` operation by operation, so a row's vector score
equals its scalar ``domain.evaluate`` score exactly; ``naive_rank`` is that scalar loop, kept as the reference
(tests compare the two; the benchmark measures both).

The index holds no state of its own: it is rebuilt from matching's database on start and kept current by the
service (see ``service.MatchingIndex``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pycountry

from services.matching import domain, geography
from services.matching.domain import CandidateRow, PostingNeeds, Schedule
from services.matching.geography import SHORING_ORDER, WORDS
from shared.vocabulary import CATEGORY_IDS, Model

MODEL_BITS = {m.value: 1 << i for i, m in enumerate(Model)}
CATEGORY_BITS = {c: 1 << i for i, c in enumerate(CATEGORY_IDS)}
LANGUAGES = sorted(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))
LANGUAGE_BIT = {code: i for i, code in enumerate(LANGUAGES)}
LANGUAGE_WORDS = (len(LANGUAGES) + 63) // 64
NO_MONEY = -1


def _language_words(codes) -> list[int]:
    words = [0] * LANGUAGE_WORDS
    for code in codes:
        bit = LANGUAGE_BIT.get(code)
        if bit is not None:
            words[bit // 64] |= 1 << (bit % 64)
    return words


@dataclass(frozen=True, slots=True)
class Ranked:
    """A posting's ranking: the best ``k`` rows (index, score units) in order, and how many rows were eligible."""

    top: list[tuple[int, int]]
    eligible: int
    eligible_rows: np.ndarray
    eligible_units: np.ndarray


class _Sparse:
    """name -> rows having it, with a value (skills and their levels; units and their prices)."""

    DENSE_CACHE = 64

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}
        self.values: dict[str, list[int]] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._dense: OrderedDict[str, np.ndarray] = OrderedDict()

    def add(self, name: str, row: int, value: int) -> None:
        self.rows.setdefault(name, []).append(row)
        self.values.setdefault(name, []).append(value)
        self._arrays.pop(name, None)
        dense = self._dense.get(name)
        if dense is not None:
            if row < len(dense):
                dense[row] = value
            else:
                del self._dense[name]

    def arrays(self, name: str, dtype) -> tuple[np.ndarray, np.ndarray] | None:
        if name not in self.rows:
            return None
        arrays = self._arrays.get(name)
        if arrays is None:
            # Rows are appended in increasing order, so each list is sorted: lookups are binary searches.
            arrays = (np.asarray(self.rows[name], dtype=np.int64), np.asarray(self.values[name], dtype=dtype))
            self._arrays[name] = arrays
        return arrays

    def lookup(self, name: str, idx: np.ndarray, size: int, dtype, fill: int = 0) -> np.ndarray:
        """The value of ``name`` for each row in ``idx``, ``fill`` where a row does not have it.

        A dense column per name is kept for the most recently asked names (a bounded cache: a posting asks for a
        few skills, and the same skills come back), so a lookup is one gather.
        """
        dense = self._dense.get(name)
        if dense is None or len(dense) < size:
            dense = np.full(size, fill, dtype=dtype)
            arrays = self.arrays(name, dtype)
            if arrays is not None:
                dense[arrays[0]] = arrays[1]
            self._dense[name] = dense
            if len(self._dense) > self.DENSE_CACHE:
                self._dense.popitem(last=False)
        else:
            self._dense.move_to_end(name)
        return dense[idx]


class MatchIndex:
    INITIAL = 1024

    def __init__(self) -> None:
        self.size = 0
        self.live = 0
        self.rows: list[CandidateRow | None] = []
        self.by_key: dict[tuple[str, str], int] = {}
        self.by_provider: dict[str, list[int]] = {}
        self.skills = _Sparse()
        self.unit_prices = _Sparse()
        # (model, category) -> rows offering both: a posting only ever looks at its own slice of the market.
        self.offers = _Sparse()
        self._schedules: dict[Schedule, int] = {}
        self._schedule_words = np.zeros((16, WORDS), dtype=np.uint64)
        self._locations: dict[tuple[str, str], int] = {}
        self._currencies: dict[str, int] = {}
        self._allocate(self.INITIAL)

    # --- storage ----------------------------------------------------------------------------------------------

    def _allocate(self, capacity: int) -> None:
        # one contiguous array per 64 languages, so a posting's language test reads memory in order
        old_languages = getattr(self, "languages", None)
        self.languages = np.zeros((LANGUAGE_WORDS, capacity), dtype=np.uint64)
        if old_languages is not None:
            self.languages[:, : old_languages.shape[1]] = old_languages

        def grow(name: str, dtype, shape=(), fill=0) -> None:
            old = getattr(self, name, None)
            new = np.full((capacity, *shape), fill, dtype=dtype)
            if old is not None:
                new[: len(old)] = old
            setattr(self, name, new)

        grow("alive", np.bool_)
        grow("models", np.uint8)
        grow("categories", np.uint16)
        grow("verified", np.bool_)
        grow("unavailable", np.bool_)
        # verified, not marked unavailable, and alive: what every posting asks first
        grow("open_for_work", np.bool_)
        grow("available_from", np.int32)
        grow("nda", np.bool_)
        grow("capacity", np.float64)
        grow("committed", np.float64)
        grow("schedule", np.int32)
        grow("firm_schedule", np.int32)
        grow("location", np.int32)
        grow("currency", np.int32)
        grow("hourly", np.int64, fill=NO_MONEY)
        grow("retainer", np.int64, fill=NO_MONEY)
        grow("completed", np.int32)
        grow("sla", np.float64, fill=np.nan)
        grow("rating", np.float64, fill=np.nan)
        grow("registered", np.float64)
        self.capacity_rows = capacity

    def _schedule_id(self, schedule: Schedule) -> int:
        found = self._schedules.get(schedule)
        if found is not None:
            return found
        sid = len(self._schedules)
        if sid >= len(self._schedule_words):
            grown = np.zeros((len(self._schedule_words) * 2, WORDS), dtype=np.uint64)
            grown[:sid] = self._schedule_words[:sid]
            self._schedule_words = grown
        self._schedule_words[sid] = geography.words(domain.schedule_mask(schedule))
        self._schedules[schedule] = sid
        return sid

    @staticmethod
    def _intern(table: dict, key) -> int:
        if key not in table:
            table[key] = len(table)
        return table[key]

    def _append(self, row: CandidateRow) -> None:
        if self.size == self.capacity_rows:
            self._allocate(self.capacity_rows * 2)
        i = self.size
        self.size += 1
        self.live += 1
        self.rows.append(row)
        self.by_key[row.key] = i
        self.by_provider.setdefault(row.provider_id, []).append(i)
        self.alive[i] = True
        self.models[i] = sum(MODEL_BITS.get(m, 0) for m in row.models)
        self.categories[i] = sum(CATEGORY_BITS.get(c, 0) for c in row.categories)
        self.languages[:, i] = _language_words(row.languages)
        self.verified[i] = row.verified
        self.unavailable[i] = row.availability_status == "unavailable"
        self.open_for_work[i] = row.verified and not self.unavailable[i]
        self.available_from[i] = row.available_from.toordinal() if row.available_from else 0
        self.nda[i] = row.nda_willing
        self.capacity[i] = row.capacity_hours
        self.committed[i] = row.track.committed_hours_per_week
        self.schedule[i] = self._schedule_id(row.schedule)
        self.firm_schedule[i] = self._schedule_id(row.firm_schedule)
        self.location[i] = self._intern(self._locations, (row.country, row.time_zone))
        self.currency[i] = self._intern(self._currencies, row.currency)
        self.hourly[i] = NO_MONEY if row.hourly_units is None else row.hourly_units
        self.retainer[i] = NO_MONEY if row.retainer_units is None else row.retainer_units
        self.completed[i] = row.track.completed_contracts
        self.sla[i] = np.nan if row.track.sla_compliance is None else row.track.sla_compliance
        self.rating[i] = np.nan if row.track.rating is None else row.track.rating
        self.registered[i] = row.registered_days
        for name, level in row.skills.items():
            self.skills.add(name, i, level)
        for unit, price in row.per_unit_units.items():
            self.unit_prices.add(unit, i, price)
        for model in row.models:
            for category in row.categories:
                self.offers.add(f"{model}|{category}", i, 1)

    def remove(self, provider_id: str) -> None:
        for i in self.by_provider.pop(provider_id, ()):
            row = self.rows[i]
            self.by_key.pop(row.key, None)
            self.rows[i] = None
            self.alive[i] = False
            self.open_for_work[i] = False
            self.live -= 1
        # Rows are append-only (the sparse skill lists point at row numbers); rebuild once a quarter is dead.
        dead = self.size - self.live
        if dead > 1024 and dead > self.live // 3:
            self._compact()

    def upsert(self, provider_id: str, rows: list[CandidateRow]) -> None:
        self.remove(provider_id)
        for row in rows:
            self._append(row)

    def _compact(self) -> None:
        live = [row for row in self.rows if row is not None]
        fresh = MatchIndex()
        for row in live:
            fresh._append(row)
        self.__dict__.update(fresh.__dict__)

    def provider_rows(self, provider_id: str) -> list[CandidateRow]:
        return [self.rows[i] for i in self.by_provider.get(provider_id, ())]

    def __len__(self) -> int:
        return self.live

    # --- ranking ----------------------------------------------------------------------------------------------

    def _cheap_filter(self, needs: PostingNeeds) -> np.ndarray:
        """Rows offering the model and category, verified, available, NDA-willing and speaking the languages."""
        offering = self.offers.arrays(f"{needs.model}|{needs.category}", np.int8)
        if offering is None or any(code not in LANGUAGE_BIT for code in needs.languages):
            return np.zeros(0, dtype=np.int64)
        idx = offering[0]
        idx = idx[self.open_for_work[idx]]
        if needs.start_date is not None:
            idx = idx[self.available_from[idx] <= needs.start_date.toordinal()]
        if needs.nda_required:
            idx = idx[self.nda[idx]]
        for w, want in enumerate(_language_words(needs.languages)):
            if want:
                want64 = np.uint64(want)
                idx = idx[(self.languages[w, idx] & want64) == want64]
        return idx

    def _location_classes(self, needs: PostingNeeds) -> np.ndarray:
        classes = np.zeros(max(1, len(self._locations)), dtype=np.int8)
        for (country, zone), lid in self._locations.items():
            shoring = geography.shoring_class(needs.client_country, needs.client_time_zone, country, zone)
            classes[lid] = SHORING_ORDER.index(shoring)
        return classes

    def rank(self, needs: PostingNeeds, k: int) -> Ranked:
        idx = self._cheap_filter(needs)
        schedules = self._schedule_words[: max(1, len(self._schedules))]

        free = self.capacity[idx] - self.committed[idx]
        if needs.hours_per_week:
            keep = ~(free < needs.hours_per_week)
            idx = idx[keep]

        required = domain.required_coverage_mask(needs)
        if required:
            want = np.array(geography.words(required), dtype=np.uint64)
            covering = np.all((schedules & want) == want, axis=1)
            covered = covering[self.schedule[idx]]
            if needs.coverage == "24x7":
                covered |= covering[self.firm_schedule[idx]]
            idx = idx[covered]

        classes = self._location_classes(needs)
        shoring = classes[self.location[idx]]
        if needs.shoring_required and needs.shoring_preference != "any":
            keep = shoring == SHORING_ORDER.index(needs.shoring_preference)
            idx, shoring = idx[keep], shoring[keep]

        client = np.array(geography.words(geography.business_hours_mask(needs.client_time_zone)), dtype=np.uint64)
        overlap_slots = np.bitwise_count(schedules & client).sum(axis=1, dtype=np.int64)
        per_day = overlap_slots[self.schedule[idx]] * 0.5 / 5.0
        if needs.min_overlap_hours:
            keep = ~(per_day < needs.min_overlap_hours)
            idx, shoring, per_day = idx[keep], shoring[keep], per_day[keep]

        units = self._score_units(needs, idx, shoring, per_day)
        return Ranked(self._top(idx, units, k), len(idx), idx, units)

    def _skills(self, requirements, idx: np.ndarray) -> np.ndarray | float:
        if not requirements:
            return 1.0
        total = np.zeros(len(idx), dtype=np.float64)
        for name, min_level in requirements:
            levels = self.skills.lookup(name, idx, self.capacity_rows, np.int8)
            lvf = levels.astype(np.float64)
            mn = float(min_level)
            at_or_above = 1.0 if min_level >= 5 else 0.8 + 0.2 * (lvf - mn) / (5 - min_level)
            total = total + np.where(levels <= 0, 0.0, np.where(levels < min_level, 0.8 * lvf / mn, at_or_above))
        return total / len(requirements)

    def _rate(self, needs: PostingNeeds, idx: np.ndarray) -> np.ndarray | float:
        if needs.budget is None or needs.engagement is None:
            return domain.NO_BUDGET_SCORE
        budgets = np.full(max(1, len(self._currencies)), np.nan)
        for code, cid in self._currencies.items():
            converted = domain.budget_units_in(needs, code)
            if converted is not None:
                budgets[cid] = float(converted)
        budget = budgets[self.currency[idx]]
        hourly = self.hourly[idx]
        known = np.zeros(len(idx), dtype=bool)
        cost = np.zeros(len(idx), dtype=np.float64)
        if needs.engagement == "hourly":
            known = hourly != NO_MONEY
            cost = hourly.astype(np.float64)
        elif needs.engagement == "fixed":
            hours = needs.estimated_hours
            if hours is not None:
                known = hourly != NO_MONEY
                cost = (hourly * hours).astype(np.float64)
        elif needs.engagement == "retainer":
            retainer = self.retainer[idx]
            has_retainer = retainer != NO_MONEY
            if needs.hours_per_week:
                derived = (hourly * needs.hours_per_week * domain.WEEKS_PER_MONTH_NUMERATOR).astype(np.float64) / 12.0
                known = has_retainer | (hourly != NO_MONEY)
                cost = np.where(has_retainer, retainer.astype(np.float64), derived)
            else:
                known, cost = has_retainer, retainer.astype(np.float64)
        elif needs.engagement == "per_unit" and needs.unit:
            prices = self.unit_prices.lookup(needs.unit, idx, self.capacity_rows, np.int64, NO_MONEY)
            known, cost = prices != NO_MONEY, prices.astype(np.float64)
        convertible = ~np.isnan(budget)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(budget <= 0.0, np.where(cost > 0.0, np.inf, 1.0), cost / budget)
            within = 0.8 + 0.2 * np.minimum(1.0, (1.0 - ratio) / 0.4)
            over = np.maximum(0.0, 0.8 - 2.0 * (ratio - 1.0))
        score = np.where(ratio <= 1.0, within, over)
        return np.where(known & convertible, score, domain.UNKNOWN_RATE_SCORE)

    def _score_units(self, needs: PostingNeeds, idx: np.ndarray, shoring: np.ndarray,
                     per_day: np.ndarray) -> np.ndarray:
        sla, rating = self.sla[idx], self.rating[idx]
        no_sla, no_rating = np.isnan(sla), np.isnan(rating)
        track = np.where(
            no_sla & no_rating, domain.NEUTRAL_TRACK_RECORD,
            np.where(no_rating, sla, np.where(no_sla, (rating - 1.0) / 4.0, (sla + (rating - 1.0) / 4.0) / 2.0)),
        )
        capacity, committed = self.capacity[idx], self.committed[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            load = np.where(capacity <= 0, 0.0, np.maximum(0.0, 1.0 - committed / capacity))
        if needs.shoring_preference == "any":
            shoring_fit = 1.0
        else:
            shoring_fit = 1.0 - 0.5 * np.abs(shoring.astype(np.int64) - SHORING_ORDER.index(needs.shoring_preference))
        freshness = 1.0 - (needs.published_days - self.registered[idx]) / domain.NEW_PROVIDER_DAYS
        boost = np.where(self.completed[idx] > 0, 0.0,
                         domain.MAX_NEW_PROVIDER_BOOST * np.maximum(0.0, np.minimum(1.0, freshness)))
        components = {
            "required_skills": self._skills(needs.required_skills, idx),
            "nice_to_have_skills": self._skills(needs.nice_to_have_skills, idx),
            "rate": self._rate(needs, idx),
            "overlap": np.minimum(1.0, per_day / 8.0),
            "track_record": track,
            "load": load,
            "shoring": shoring_fit,
        }
        score = domain.combine(components, boost)
        score = np.broadcast_to(score, idx.shape)
        return np.floor(score * domain.SCORE_UNITS + 0.5).astype(np.int64)

    def _top(self, idx: np.ndarray, units: np.ndarray, k: int) -> list[tuple[int, int]]:
        if len(idx) == 0 or k <= 0:
            return []
        if len(idx) > k:
            threshold = np.partition(units, len(units) - k)[len(units) - k]
            chosen = np.flatnonzero(units >= threshold)  # every row tied with the k-th, for a fair tie-break
        else:
            chosen = np.arange(len(idx))
        ordered = sorted(
            ((int(idx[j]), int(units[j])) for j in chosen),
            key=lambda item: domain.sort_key(item[1], self.rows[item[0]]),
        )
        return ordered[:k]

    def position(self, ranked: Ranked, row_index: int) -> int | None:
        """1-based place of an eligible row among all eligible rows (None when it is not eligible)."""
        where = np.flatnonzero(ranked.eligible_rows == row_index)
        if len(where) == 0:
            return None
        mine = int(ranked.eligible_units[where[0]])
        better = int(np.count_nonzero(ranked.eligible_units > mine))
        tied = ranked.eligible_rows[ranked.eligible_units == mine]
        key = domain.sort_key(mine, self.rows[row_index])
        better += sum(1 for t in tied if domain.sort_key(mine, self.rows[int(t)]) < key)
        return better + 1


def naive_rank(rows: list[CandidateRow], needs: PostingNeeds, k: int) -> list[tuple[CandidateRow, int]]:
    """The straightforward loop: each row checked and scored in pure Python, then sorted. The reference."""
    scored = []
    for row in rows:
        evaluation = domain.evaluate(row, needs, explain=False)
        if evaluation.eligible:
            scored.append((row, evaluation.units))
    scored.sort(key=lambda item: domain.sort_key(item[1], item[0]))
    return scored[:k]
