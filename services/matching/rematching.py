"""Re-matching the open postings one provider change can affect, all at once, without explaining anyone twice.

``shortlists.admit`` puts a changed provider in its place on one shortlist and writes every candidate's entry again
from ``domain.evaluate`` (breakdown and reasons: most of a re-match's cost when a change enters hundreds of
shortlists). Here the same decision is made for every affected posting of one change (``admit_all``), with:

- the candidates that stay explained once: the view keeps their explanations (``explanations.Explanations``);
- the changed provider's rows evaluated against all those postings at once (``open_postings._RowDecision``:
  ``domain.evaluate``'s rules and arithmetic over numpy columns), their reasons written by ``domain``'s own
  function from per-facet values (a rate, coverage or shoring reason is computed once per distinct budget,
  client schedule or client location).

The result is exactly ``shortlists.admit``'s (a property test holds them equal, and to a full ranking).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from services.matching import domain, shortlists
from services.matching.domain import CandidateRow, PostingNeeds
from services.matching.explanations import BREAKDOWN, Explained, breakdown, candidate_entry, explained
from services.matching.open_postings import MAX_LEVEL, OpenPosting, OpenPostings, _RowDecision
from services.matching.ranking import MatchIndex
from shared.vocabulary.times import rfc3339


class _Facet:
    """A value of one row per distinct facet of the postings' needs, computed on first use."""

    def __init__(self, view: OpenPostings, name: str, compute) -> None:
        self.needs, self.compute = view.facets[name].needs, compute
        self.values: dict[int, object] = {}

    def of(self, facet: int):
        value = self.values.get(facet, self)
        if value is self:
            value = self.values[facet] = self.compute(self.needs[facet])
        return value


class _Newcomer:
    """One of the changed provider's rows on the affected postings: its eligibility, units and soft components on
    each (one vector pass, read back as Python values once), its explanation on one (``domain._reasons``, from
    values computed once per facet)."""

    def __init__(self, view: OpenPostings, row: CandidateRow, slots: np.ndarray, first: int = -1) -> None:
        self.row, self.first = row, first  # its provider's first row in the index
        markets = [view.markets[m] for m in ((mo, c) for mo in row.models for c in row.categories)
                   if m in view.markets]
        scores = _RowDecision(view, row).evaluate(slots[np.isin(view.columns.market[slots], markets)])
        self.at = {slot: j for j, slot in enumerate(scores.at.tolist())}
        self.units_of = scores.units.tolist()
        count = len(self.units_of)
        self.components = [value.tolist() if isinstance(value, np.ndarray) else [value] * count
                           for value in (scores.components.get(name) for name in BREAKDOWN)] if count else []
        columns = view.columns
        self.schedule, self.shoring, self.rate = (getattr(columns, name)[scores.at].tolist()
                                                  for name in ("schedule", "shoring", "rate"))
        self.per_day, self.classes = scores.per_day.tolist(), scores.classes
        self.rate_reason = _Facet(view, "rate", lambda needs: domain.rate_component(row, needs)[1])
        self.coverage_note = _Facet(view, "schedule", lambda needs: domain.covers(row, needs)[1])

    def units(self, slot: int) -> int | None:
        j = self.at.get(slot)
        return None if j is None else self.units_of[j]

    def explained(self, slot: int, needs: PostingNeeds) -> Explained:
        j = self.at[slot]
        components = dict(zip(BREAKDOWN, (column[j] for column in self.components), strict=True))
        schedule = self.schedule[j]
        reasons = domain._reasons(self.row, needs, components, self.rate_reason.of(self.rate[j]),
                                  self.classes[self.shoring[j]], self.per_day[schedule],
                                  self.coverage_note.of(schedule))
        return explained(self.first, self.units_of[j], breakdown(components), reasons)

    def listed_under(self, slot: int) -> dict:
        """The row as a firm's other centre, listed under the one that ranks it."""
        j = self.at[slot]
        return {"centre_id": self.row.centre_id, "score": domain.score_text(self.units_of[j]),
                "breakdown": breakdown(dict(zip(BREAKDOWN, (column[j] for column in self.components), strict=True)))}


def admit_all(view: OpenPostings, index: MatchIndex, entries: list[OpenPosting], provider_id: str,
              rows: list[CandidateRow], previous_rows: list[CandidateRow], *, now: datetime) -> dict[str, dict | None]:
    """``shortlists.admit`` of each entry's shortlist (version: its own plus one) after the provider's rows went
    from ``previous_rows`` to ``rows`` (the index holds ``rows``), by posting id; the new shortlists' explanations
    are kept (``view.explanations``). Postings the columns cannot decide, and rows with skill levels beyond them,
    take ``shortlists.admit`` itself."""
    result: dict[str, dict | None] = {}
    columnar = [e for e in entries if not view.columns.scalar[view.columns.slot[e.posting["id"]]]]
    if any(level > MAX_LEVEL for row in (*rows, *previous_rows) for level in row.skills.values()):
        columnar = []
    decided = {e.posting["id"] for e in columnar}
    for entry in entries:
        if entry.posting["id"] not in decided:
            before = entry.posting["shortlist"]
            result[entry.posting["id"]] = shortlists.admit(
                index, entry.needs, before, provider_id, rows, previous_rows,
                version=(before or {}).get("version", 0) + 1, now=now)
    if not columnar:
        return result
    slots = np.array([view.columns.slot[e.posting["id"]] for e in columnar], dtype=np.int64)
    newcomers = [_Newcomer(view, row, slots, index.by_provider[provider_id]) for row in rows]
    was_eligible = np.zeros(len(view.columns.ids), dtype=np.int64)
    for row in previous_rows:
        np.add.at(was_eligible, list(_Newcomer(view, row, slots).at), 1)
    computed_at = rfc3339(now)
    for entry, slot in zip(columnar, slots.tolist(), strict=True):
        result[entry.posting["id"]] = _admit(view, index, entry, slot, provider_id, newcomers,
                                             int(was_eligible[slot]), computed_at)
    return result


def _admit(view: OpenPostings, index: MatchIndex, entry: OpenPosting, slot: int, provider_id: str,
           newcomers: list[_Newcomer], was_eligible: int, computed_at: str) -> dict | None:
    shortlist, needs = entry.posting["shortlist"], entry.needs
    if not shortlist or not {"eligible", "top_k"} <= shortlist.keys():
        return None
    k, cut = shortlist["top_k"], entry.cut
    eligible = sorted((domain.sort_key(units, n.row), i, n) for i, n in enumerate(newcomers)
                      if (units := n.units(slot)) is not None)
    if cut is not None and (not eligible or eligible[0][0] >= cut):
        return None
    kept = view.explanations.of(index, needs)
    placed = []
    for candidate in shortlist["candidates"]:
        provider, centre = candidate["provider_id"], candidate["centre_id"]
        if provider == provider_id:
            continue
        found = kept.get(index, (provider, centre or ""))
        if found is None or found.score != candidate["score"]:
            return None
        placed.append(((-found.units, provider, centre or ""), provider, centre, found, candidate.get("other_centres")))
    if eligible:
        (best_key, _, best), *others = eligible
        found = best.explained(slot, needs)
        kept.put(best.row.key, found)
        listed = [other.listed_under(slot) for _, _, other in others] if best.row.centre_id is not None else []
        placed.append((best_key, best.row.provider_id, best.row.centre_id, found, listed))
    placed.sort(key=lambda item: item[0])
    for key, *_ in placed[k:]:
        kept.drop(key[1:])
    return {"version": shortlist["version"] + 1, "computed_at": computed_at,
            "candidates": [candidate_entry(found, provider, centre, place, listed)
                           for place, (_, provider, centre, found, listed) in enumerate(placed[:k], start=1)],
            "eligible": shortlist["eligible"] - was_eligible + len(eligible), "top_k": k}
