"""Re-matching the open postings one provider change can affect, all at once, without explaining anyone twice.

``shortlists.admit`` puts a changed provider in its place on one shortlist and writes every candidate's entry again
from ``domain.evaluate`` (breakdown and reasons: most of a re-match's cost when a change enters hundreds of
shortlists). Here the same decision is made for every affected posting of one change (``admit_all``), with:

- the candidates that stay explained once: the view keeps their explanations (``explanations.Explanations``);
- the changed provider's rows evaluated against all those postings at once (``open_postings._RowDecision``:
  ``domain.evaluate``'s rules and arithmetic over numpy columns), their scores and breakdowns written out for all
  of them at once (a breakdown's text once per value), their reasons assembled by ``domain``'s own function from
  parts made once per change (a rate, coverage, overlap or shoring reason once per distinct budget, client schedule
  or client location, a skills reason once per distinct set of asked skills);
- each new shortlist written in one pass over the old one, the provider's entry at its place among the others
  (which keep their order), each entry once, with its new place.

The result is exactly ``shortlists.admit``'s (a property test holds them equal, and to a full ranking).
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime

import numpy as np

from services.matching import domain, shortlists
from services.matching.domain import CandidateRow, PostingNeeds
from services.matching.explanations import (
    BREAKDOWN,
    Explained,
    breakdown_of,
    candidate_entry,
    component_text,
    kept_form,
)
from services.matching.open_postings import MAX_LEVEL, OpenPosting, OpenPostings, _RowDecision
from services.matching.ranking import MatchIndex
from shared.vocabulary.times import rfc3339


class _Facet:
    """A reason of one row per distinct facet of the postings' needs, computed on first use (``compute(needs,
    facet)``, ``needs`` a posting's with that facet) and interned (an explanation interns its reasons: one already
    interned costs it no look-up)."""

    def __init__(self, view: OpenPostings, name: str, compute) -> None:
        self.needs, self.compute = view.facets[name].needs, compute
        self.values: dict[int, str] = {}

    def of(self, facet: int) -> str:
        value = self.values.get(facet)
        if value is None:
            value = self.values[facet] = sys.intern(self.compute(self.needs[facet], facet))
        return value


class _Newcomer:
    """One of the changed provider's rows on the affected postings: its eligibility, units and soft components on
    each (one vector pass, read back as Python values once), with its score and breakdown texts on each written out
    at once (a text once per value), and its explanation on one (``domain.reasons_of``, from parts computed once
    per facet, per asked skills or once for the row)."""

    def __init__(self, view: OpenPostings, row: CandidateRow, slots: np.ndarray, first: int = -1) -> None:
        self.row, self.first = row, first  # its provider's first row in the index
        scores = _RowDecision(view, row).evaluate(_in_markets(view, row, slots))
        self.at = {slot: j for j, slot in enumerate(scores.at.tolist())}
        self.units_of = scores.units.tolist()
        count = len(self.units_of)
        self.texts: dict[float, str] = {}
        values = [self._values(scores.components[name], count) for name in BREAKDOWN] if count else [[]]
        self.boosts = values[-1]  # BREAKDOWN's last: the new-provider boost
        self.breakdowns = list(zip(*(map(self.text, column) for column in values), strict=True))
        self.scores = [domain.score_text(units) for units in self.units_of]
        columns = view.columns
        self.schedule, self.shoring, self.rate = (getattr(columns, name)[scores.at].tolist()
                                                  for name in ("schedule", "shoring", "rate"))
        per_day, classes = scores.per_day.tolist(), scores.classes
        self.skills_reasons: dict[tuple, str] = {}
        self.standing = tuple(map(sys.intern, domain.standing_reasons(row)))
        self.rate_reason = _Facet(view, "rate", lambda needs, _: domain.rate_component(row, needs)[1])
        self.coverage_note = _Facet(view, "schedule", lambda needs, _: domain.covers(row, needs)[1])
        self.overlap_reason = _Facet(view, "schedule", lambda needs, f: domain.overlap_reason(row, needs, per_day[f]))
        self.shoring_reason = _Facet(view, "shoring", lambda needs, f: domain.shoring_reason(row, needs, classes[f]))

    @staticmethod
    def _values(column: np.ndarray | float, count: int) -> list[float]:
        """A component's values on each slot (``RowScores.components``: an array, or one value for all)."""
        return column.tolist() if isinstance(column, np.ndarray) else [column] * count

    def units(self, slot: int) -> int | None:
        j = self.at.get(slot)
        return None if j is None else self.units_of[j]

    def text(self, value: float) -> str:
        """``explanations.component_text``, interned, once per value (0.0 and -0.0, one key, are written apart)."""
        found = self.texts.get(value)
        if found is None or not value:
            found = self.texts[value] = sys.intern(component_text(value))
        return found

    def skills_reason(self, requirements: tuple, label: str) -> str:
        found = self.skills_reasons.get((label, requirements))
        if found is None:
            found = self.skills_reasons[(label, requirements)] = sys.intern(
                domain.skills_reason(self.row, requirements, label))
        return found

    def explained(self, slot: int, needs: PostingNeeds) -> Explained:
        """``explanations.kept_form`` of the row's evaluation on the posting."""
        j = self.at[slot]
        schedule, shoring = self.schedule[j], self.shoring[j]
        reasons = domain.reasons_of(
            self.skills_reason(needs.required_skills, "required"),
            self.skills_reason(needs.nice_to_have_skills, "nice-to-have"), self.rate_reason.of(self.rate[j]),
            self.overlap_reason.of(schedule), self.shoring_reason.of(shoring), self.standing,
            self.coverage_note.of(schedule), self.boosts[j])
        return kept_form(self.first, self.units_of[j], self.breakdowns[j], reasons, self.scores[j])

    def listed_under(self, slot: int) -> dict:
        """The row as a firm's other centre, listed under the one that ranks it."""
        j = self.at[slot]
        return {"centre_id": self.row.centre_id, "score": self.scores[j], "breakdown": breakdown_of(self.breakdowns[j])}


def _in_markets(view: OpenPostings, row: CandidateRow, slots: np.ndarray) -> np.ndarray:
    markets = [view.markets[m] for m in ((mo, c) for mo in row.models for c in row.categories) if m in view.markets]
    return slots[np.isin(view.columns.market[slots], markets)]


def admit_all(view: OpenPostings, index: MatchIndex, entries: list[OpenPosting], provider_id: str,
              rows: list[CandidateRow], previous_rows: list[CandidateRow], *, now: datetime) -> dict[str, dict | None]:
    """``shortlists.admit`` of each entry's shortlist (version: its own plus one) after the provider's rows went
    from ``previous_rows`` to ``rows`` (the index holds ``rows``), by posting id; the new shortlists' explanations
    are kept (``view.explanations``). Postings the columns cannot decide, and rows with skill levels beyond them,
    take ``shortlists.admit`` itself."""
    result: dict[str, dict | None] = {}
    columns = view.columns
    all_slots = np.array([columns.slot[e.posting["id"]] for e in entries], dtype=np.int64)
    by_columns = ~columns.scalar[all_slots]
    if any(level > MAX_LEVEL for row in (*rows, *previous_rows) for level in row.skills.values()):
        by_columns[:] = False
    flags = by_columns.tolist()
    for entry, columnar in zip(entries, flags, strict=True):
        if not columnar:
            before = entry.posting["shortlist"]
            result[entry.posting["id"]] = shortlists.admit(
                index, entry.needs, before, provider_id, rows, previous_rows,
                version=(before or {}).get("version", 0) + 1, now=now)
    if not by_columns.any():
        return result
    slots = all_slots[by_columns]
    newcomers = [_Newcomer(view, row, slots, index.by_provider[provider_id]) for row in rows]
    was_eligible = Counter(slot for row in previous_rows
                           for slot in _RowDecision(view, row).eligible(_in_markets(view, row, slots))[0].tolist())
    computed_at = rfc3339(now)
    for entry, slot in zip([e for e, c in zip(entries, flags, strict=True) if c], slots.tolist(), strict=True):
        result[entry.posting["id"]] = _admit(view, index, entry, slot, provider_id, newcomers, was_eligible[slot],
                                             computed_at)
    return result


def _admit(view: OpenPostings, index: MatchIndex, entry: OpenPosting, slot: int, provider_id: str,
           newcomers: list[_Newcomer], was_eligible: int, computed_at: str) -> dict | None:
    """``shortlists.admit`` of one posting's shortlist, in one pass over its candidates. The others keep their
    order (their scores are checked unchanged, and a shortlist is in ``domain.sort_key`` order: one that is not is
    declined, to a full ranking), so the provider's best row is written at its place among them when the pass
    reaches it, and each candidate's entry with its new place; those pushed past the last place are dropped."""
    shortlist, needs = entry.posting["shortlist"], entry.needs
    if not shortlist or not {"eligible", "top_k"} <= shortlist.keys():
        return None
    k, cut = shortlist["top_k"], entry.cut
    eligible = _eligible(newcomers, slot)
    if cut is not None and (not eligible or eligible[0][0] >= cut):
        return None
    kept = view.explanations.of(index, needs)
    candidates, dropped, last = [], [], None
    pending, admitted = bool(eligible), None  # the provider's best row: not written yet; its explanation once it is
    for candidate in shortlist["candidates"]:
        provider, centre = candidate["provider_id"], candidate["centre_id"]
        if provider == provider_id:
            continue
        row_key = (provider, centre or "")
        found = kept.get(index, row_key)
        if found is None or found[2] != candidate["score"]:  # its score
            return None
        key = (-found[1], provider, row_key[1])  # ``domain.sort_key``
        if last is not None and key <= last:
            return None
        last = key
        if pending and eligible[0][0] < key:
            admitted, pending = _write_newcomer(candidates, k, eligible, slot, needs), False
        if len(candidates) < k:
            candidates.append(candidate_entry(found, provider, centre, len(candidates) + 1,
                                              candidate.get("other_centres")))
        else:
            dropped.append(row_key)
    if pending:  # it sorts after every other candidate
        admitted = _write_newcomer(candidates, k, eligible, slot, needs)
    if eligible:
        if admitted is None:
            dropped.append(eligible[0][2].row.key)
        else:
            kept.put(eligible[0][2].row.key, admitted)
    for row_key in dropped:
        kept.drop(row_key)
    return {"version": shortlist["version"] + 1, "computed_at": computed_at, "candidates": candidates,
            "eligible": shortlist["eligible"] - was_eligible + len(eligible), "top_k": k}


def _eligible(newcomers: list[_Newcomer], slot: int) -> list[tuple[tuple, int, _Newcomer]]:
    """The provider's rows eligible on the posting, best first: (``domain.sort_key``, number, row)."""
    if len(newcomers) == 1:  # most providers: one row
        units = newcomers[0].units(slot)
        return [] if units is None else [(domain.sort_key(units, newcomers[0].row), 0, newcomers[0])]
    return sorted((domain.sort_key(units, n.row), i, n) for i, n in enumerate(newcomers)
                  if (units := n.units(slot)) is not None)


def _write_newcomer(candidates: list[dict], k: int, eligible: list, slot: int, needs: PostingNeeds) -> Explained | None:
    """The entry of the provider's best row (``eligible``'s first), its other eligible centres listed under it, after
    ``candidates`` when a place is left; its explanation, or None."""
    if len(candidates) >= k:
        return None
    (_, _, best), *others = eligible
    found = best.explained(slot, needs)
    listed = [other.listed_under(slot) for _, _, other in others] if best.row.centre_id is not None else []
    candidates.append(candidate_entry(found, best.row.provider_id, best.row.centre_id, len(candidates) + 1, listed))
    return found
