"""What the open postings' shortlists say of their candidates, kept compact so a re-match does not explain them again.

``shortlists.admit`` writes every candidate's entry of a changed shortlist again from ``domain.evaluate`` (breakdown
and reasons): most of a re-match's cost when one provider change enters hundreds of shortlists. ``Explanations``
keeps, per open posting, the explanation of each row the posting's shortlist lists, by the row's number in the
ranking index — a number means one row, which never changes, for as long as the index's ``generation`` lasts —
and for the posting's needs (a posting whose needs change starts again). What it keeps is exactly what
``domain.evaluate`` of that row for those needs says; it is a cache, right whatever commits.

A row is found by its key (provider, centre) and known unchanged while its provider's first row number is the one
it was explained at (a provider's rows are replaced together, at new numbers). Explanations are tuples of shared
strings, which the garbage collector stops tracking: kept for every open posting, they cost it nothing.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable

from services.matching import domain
from services.matching.domain import PostingNeeds
from services.matching.ranking import MatchIndex

BREAKDOWN = (*domain.WEIGHTS, "new_provider_boost")  # the order ``domain.evaluate`` writes a breakdown in


# A row's entry on one posting's shortlist, but its rank, kept compact (texts shared: a breakdown value is one of at
# most 10,001 strings, and a reason often repeats across postings and rows), with the first row number of its provider
# it holds for: ``(first, units, score, breakdown in BREAKDOWN order, reasons)``. A plain tuple, not a NamedTuple: the
# garbage collector stops tracking a tuple of ints, strings and tuples of strings at the first collection that sees
# it, but never an instance of a tuple subclass, and explanations made after start (not frozen with what was loaded)
# would otherwise add to every full collection, which lands in whichever re-match allocates past its threshold.
Explained = tuple[int, int, str, tuple[str, ...], tuple[str, ...]]


def explained(first: int, units: int, breakdown: dict, reasons: list[str], score: str | None = None) -> Explained:
    return kept_form(first, units, [breakdown[n] for n in BREAKDOWN], reasons, score)


def kept_form(first: int, units: int, values: Iterable[str], reasons: Iterable[str],
              score: str | None = None) -> Explained:
    """An explanation from its breakdown's texts in ``BREAKDOWN`` order and its reasons (interned: shared). ``score``:
    the units' text (``domain.score_text``) when the caller has it, which the shortlist then shares: a re-match
    checks a kept score against the shortlist's by identity, without reading either text."""
    return (first, units, domain.score_text(units) if score is None else score, tuple(map(sys.intern, values)),
            tuple(map(sys.intern, reasons)))


# Components' texts by value, each made once (bounded: emptied when full). A shortlist writes eight per row, most of
# them values many rows share (a shoring, an overlap, a neutral track record, skills met): 0.9 against 2.2 µs a
# breakdown measured, at 20,000 providers.
_TEXTS: dict[float, str] = {}
TEXTS_KEPT = 50_000


def component_text(value: float) -> str:
    if not value:  # 0.0 and -0.0, one key, are written apart, never kept (most rows' new-provider boost: no format)
        return "-0.0000" if math.copysign(1.0, value) < 0 else "0.0000"
    if len(_TEXTS) >= TEXTS_KEPT:
        _TEXTS.clear()
    text = _TEXTS[value] = f"{value:.4f}"
    return text


def breakdown(components: dict) -> dict[str, str]:
    texts = _TEXTS
    return {name: texts.get(value) or component_text(value) for name, value in components.items()}


def candidate_entry(found: Explained, provider_id: str, centre_id: str | None, rank: int,
                    other_centres: list | None) -> dict:
    """``shortlists.candidate_entry`` of the row's evaluation."""
    entry = {"provider_id": provider_id, "centre_id": centre_id, "rank": rank, "score": found[2],
             "breakdown": breakdown_of(found[3]), "reasons": list(found[4])}
    if other_centres:
        entry["other_centres"] = other_centres
    return entry


def breakdown_of(values: tuple[str, ...]) -> dict[str, str]:
    """``dict(zip(BREAKDOWN, values, strict=True))`` written out, in under half its time (0.24 against 0.63 µs
    measured; a re-match writes thousands); a test holds the two equal, and the unpacking checks the length."""
    required, nice_to_have, rate, overlap, track_record, load, shoring, boost = values
    return {"required_skills": required, "nice_to_have_skills": nice_to_have, "rate": rate, "overlap": overlap,
            "track_record": track_record, "load": load, "shoring": shoring, "new_provider_boost": boost}


Key = tuple[str, str]  # (provider id, centre id or "")


class Kept:
    """One posting's explanations, by row key."""

    __slots__ = ("needs", "generation", "rows")

    def __init__(self, needs: PostingNeeds, generation: int) -> None:
        self.needs, self.generation = needs, generation
        self.rows: dict[Key, Explained] = {}

    def get(self, index: MatchIndex, key: Key) -> Explained | None:
        """The row's explanation, kept or evaluated now and kept; None when the index no longer holds the row, or
        the row is not eligible."""
        first = index.by_provider.get(key[0])
        if first is None:
            return None
        found = self.rows.get(key)
        if found is not None and found[0] == first:
            return found
        row_index = index.row_of(key)
        if row_index is None:
            return None
        evaluation = domain.evaluate(index.rows[row_index], self.needs)
        if not evaluation.eligible:
            return None
        made = self.rows[key] = explained(first, evaluation.units, breakdown(evaluation.components),
                                          evaluation.reasons)
        return made

    def put(self, key: Key, found: Explained) -> None:
        self.rows[key] = found

    def drop(self, key: Key) -> None:
        self.rows.pop(key, None)


class Explanations:
    """Per open posting, the explanations of the rows its shortlist lists (see the module)."""

    def __init__(self, needs_of: Callable[[str], PostingNeeds | None] = lambda posting_id: None) -> None:
        self._kept: dict[str, Kept] = {}
        self._needs_of = needs_of  # the view's own needs of a posting, when it has the posting

    def __len__(self) -> int:
        return sum(len(kept.rows) for kept in self._kept.values())

    def of(self, index: MatchIndex, needs: PostingNeeds) -> Kept:
        """The posting's explanations, for its needs and the index's numbering (empty when either changed)."""
        kept = self._kept.get(needs.posting_id)
        if kept is None or kept.generation != index.generation or (kept.needs is not needs and kept.needs != needs):
            kept = self._kept[needs.posting_id] = Kept(needs, index.generation)
        kept.needs = needs  # equal: the caller's object, so its next look-up compares identities
        return kept

    def keep_built(self, index: MatchIndex, needs: PostingNeeds, shortlist: dict, top: list[tuple[int, int]]) -> None:
        """Keep the explanations of a shortlist ``shortlists.build`` just wrote from the index (``top``: its
        ranking's rows, one per candidate, in order), in place of the posting's others."""
        own = self._needs_of(needs.posting_id)
        kept = self._kept[needs.posting_id] = Kept(own if own is not None and own == needs else needs,
                                                   index.generation)
        for (_, units), candidate in zip(top, shortlist["candidates"], strict=True):
            kept.put((candidate["provider_id"], candidate["centre_id"] or ""),
                     explained(index.by_provider[candidate["provider_id"]], units, candidate["breakdown"],
                               candidate["reasons"], candidate["score"]))

    def adopt(self, needs: PostingNeeds) -> None:
        """The view's own object for the posting's needs, when they equal those kept: a re-match's look-up
        (``of``) then compares identities, not two sets of needs a field at a time (a shortlist built before the view
        had the posting was kept with the builder's own)."""
        kept = self._kept.get(needs.posting_id)
        if kept is not None and kept.needs is not needs and kept.needs == needs:
            kept.needs = needs

    def forget(self, posting_id: str) -> None:
        self._kept.pop(posting_id, None)
