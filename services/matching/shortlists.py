"""Shortlists: what the ranking becomes on the wire, how two of them differ, and who a provider's change can touch.

A shortlist is ``{"version", "computed_at", "candidates": [...]}``; each candidate carries its rank, its score as a
4-decimal string, its breakdown (one decimal string per soft component) and human-readable reasons. The candidates'
breakdowns come from ``domain.evaluate`` — the same arithmetic the index ranked with — so what a client reads is
exactly why the candidate is where it is.

Stored (``stored``), a shortlist keeps its candidates as two JSON texts: what deciding and announcing a change read
of each (``listed``: provider, centre, rank, score, a firm's other centres with their scores) and their breakdowns
and reasons (``details``, 80% of the shortlist). The embedded database handles every value of a document in Python,
in each write, oplog entry and change stream that reads it (every stream reads every entry), so two strings cost it
far less than the ~50 values of the candidates as fields (stored so until 2026-12-07) or the ~170 of the nested form
(before that); the processes' views of the open postings never read ``details``. ``readable`` gives back the
shortlist of any stored form as it is on the wire, ``without_details`` as deciding reads it.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from services.matching import domain
from services.matching.domain import CandidateRow, PostingNeeds
from services.matching.explanations import breakdown
from services.matching.ranking import MatchIndex, Ranked
from shared.vocabulary import jsontext
from shared.vocabulary.times import rfc3339, utc_now

# What a stored shortlist keeps of a candidate in ``details``. A firm's other centres stay with the candidate, in
# ``listed``, breakdowns and all: they are few, and a re-match copies a kept firm's other centres from the view into
# the shortlist it publishes.
DETAILS = ("breakdown", "reasons")
# A stored shortlist's candidates without their details, as one JSON text (``stored``).
LISTED = "listed"


def stored(shortlist: dict | None) -> dict | None:
    """The shortlist as the database keeps it: its candidates as two JSON texts in their order, ``listed`` (each
    without its ``DETAILS``: what deciding and announcing a change read) in the candidates' place, and ``details``
    (their ``DETAILS``); ``readable`` and ``without_details`` put them back."""
    if not shortlist or "candidates" not in shortlist:
        return shortlist
    listed, details = [], []
    for candidate in shortlist["candidates"]:
        listed.append({k: v for k, v in candidate.items() if k not in DETAILS})
        details.append({k: candidate[k] for k in DETAILS if k in candidate})
    kept = {(LISTED if k == "candidates" else k): v for k, v in shortlist.items()}
    return {**kept, LISTED: jsontext.compact(listed), "details": jsontext.compact(details)}


def _listed(shortlist: dict) -> list[dict]:
    """The candidates of a stored shortlist without their ``DETAILS``: from its text, or, stored before (until
    2026-12-07), its fields."""
    text = shortlist.get(LISTED)
    return json.loads(text) if text is not None else shortlist["candidates"]


def _with_candidates(shortlist: dict, candidates: list[dict]) -> dict:
    """A stored shortlist's fields with ``candidates`` in its candidates' place (the wire's key order)."""
    return {("candidates" if k == LISTED else k): (candidates if k in (LISTED, "candidates") else v)
            for k, v in shortlist.items() if k != "details"}


def readable(shortlist: dict | None) -> dict | None:
    """A stored shortlist as the wire carries it (``wire``): any stored form, the nested one as it is."""
    if not shortlist or "details" not in shortlist:
        return shortlist
    candidates = []
    for candidate, detail in zip(_listed(shortlist), json.loads(shortlist["details"]), strict=True):
        entry = {k: v for k, v in candidate.items() if k != "other_centres"}
        entry.update(detail)
        if "other_centres" in candidate:
            entry["other_centres"] = candidate["other_centres"]
        candidates.append(entry)
    return _with_candidates(shortlist, candidates)


def without_details(shortlist: dict | None) -> dict | None:
    """The shortlist of any form (stored or as built) as deciding and announcing a change read it: its
    candidates without their ``DETAILS``. A built one's candidates (``candidate_entry``) are taken field by field,
    not copied and filtered: a re-match hands the view hundreds of them."""
    if not shortlist:
        return shortlist
    if LISTED in shortlist or "details" in shortlist:  # stored (the view reads it without its details)
        return _with_candidates(shortlist, _listed(shortlist))
    lean = []
    for c in shortlist.get("candidates", ()):
        entry = {"provider_id": c["provider_id"], "centre_id": c["centre_id"], "rank": c["rank"], "score": c["score"]}
        if "other_centres" in c:
            entry["other_centres"] = c["other_centres"]
        lean.append(entry)
    return {**shortlist, "candidates": lean}


def other_centre_entry(evaluation: domain.Evaluation) -> dict:
    """A firm's other eligible centre, listed under the one that ranks it."""
    return {"centre_id": evaluation.row.centre_id, "score": domain.score_text(evaluation.units),
            "breakdown": breakdown(evaluation.components)}


def candidate_entry(evaluation: domain.Evaluation, rank: int, other_centres: list[dict] | None = None) -> dict:
    entry = {
        "provider_id": evaluation.row.provider_id,
        "centre_id": evaluation.row.centre_id,
        "rank": rank,
        "score": domain.score_text(evaluation.units),
        "breakdown": breakdown(evaluation.components),
        "reasons": evaluation.reasons,
    }
    if other_centres:
        entry["other_centres"] = other_centres
    return entry


def _evaluated(index: MatchIndex, needs: PostingNeeds, row_index: int, units: int, *,
               explain: bool = True) -> domain.Evaluation:
    """The rules' evaluation of a row the index ranked eligible with ``units``; ``explain=False`` for a row whose
    reasons are not written (a firm's other centre): the same components, without the reasons' texts."""
    evaluation = domain.evaluate(index.row(row_index), needs, explain=explain)
    # the two forms of one rule disagreeing is a bug, never a tie-break
    if not evaluation.eligible or evaluation.units != units:
        raise AssertionError(f"index and domain disagree on {evaluation.row.key}: {units} != {evaluation.units}, "
                             f"excluded by {evaluation.exclusions}")
    return evaluation


def build(index: MatchIndex, needs: PostingNeeds, k: int, *, version: int, now: datetime) -> tuple[dict, Ranked]:
    """The top ``k`` providers, a firm in one place: its best centre ranks it, its other eligible centres are listed
    under it with their own scores."""
    ranked = index.rank(needs, k)
    candidates = []
    for place, (row_index, units) in enumerate(ranked.top, start=1):
        evaluation = _evaluated(index, needs, row_index, units)
        others = []
        if evaluation.row.centre_id is not None:
            for other_index, other_units in index.eligible_rows_of(ranked, evaluation.row.provider_id):
                if other_index != row_index:
                    others.append(other_centre_entry(_evaluated(index, needs, other_index, other_units,
                                                                explain=False)))
        candidates.append(candidate_entry(evaluation, place, others))
    shortlist = {"version": version, "computed_at": rfc3339(now), "candidates": candidates,
                 "eligible": ranked.eligible, "top_k": k}
    return shortlist, ranked


def admit(index: MatchIndex, needs: PostingNeeds, shortlist: dict | None, provider_id: str,
          rows: list[CandidateRow], previous_rows: list[CandidateRow], *, version: int,
          now: datetime) -> dict | None:
    """The shortlist after one provider changed (its rows were ``previous_rows``, now ``rows``), without ranking
    the market again, when the change alone decides it. No other row changed, and every provider off the
    shortlist sorts after its last place, so the new top ``k`` is the other candidates with the provider's best
    eligible row put in its place — when the shortlist had room (it then held every eligible provider), or when
    that row sorts before the old last place (no one off the shortlist can then overtake it). The candidates'
    entries are evaluated again from the index (as ``build`` writes them); ``eligible`` moves by the provider's
    rows.

    None when that does not hold and a full ``build`` is needed: the provider leaves a full shortlist, or falls
    to or below its old last place (someone below the cut may come up), or a kept candidate's row is gone or no
    longer scores what the shortlist says.
    """
    if not shortlist or not {"eligible", "top_k"} <= shortlist.keys():
        return None
    k, cut = shortlist["top_k"], cut_key(shortlist)
    evaluations = sorted((e for e in (domain.evaluate(row, needs) for row in rows) if e.eligible),
                         key=lambda e: domain.sort_key(e.units, e.row))
    if cut is not None and (not evaluations or domain.sort_key(evaluations[0].units, evaluations[0].row) >= cut):
        return None
    kept = []
    for candidate in shortlist["candidates"]:
        if candidate["provider_id"] == provider_id:
            continue
        row_index = index.row_of((candidate["provider_id"], candidate["centre_id"] or ""))
        if row_index is None:
            return None
        evaluation = domain.evaluate(index.rows[row_index], needs)
        if domain.score_text(evaluation.units) != candidate["score"]:
            return None
        kept.append((domain.sort_key(evaluation.units, evaluation.row), evaluation, candidate.get("other_centres")))
    if evaluations:
        best, *others = evaluations
        listed_under = [other_centre_entry(o) for o in others] if best.row.centre_id is not None else []
        kept.append((domain.sort_key(best.units, best.row), best, listed_under))
    ranked = sorted(kept, key=lambda item: item[0])
    was_eligible = sum(domain.evaluate(row, needs, explain=False).eligible for row in previous_rows)
    return {"version": version, "computed_at": rfc3339(now),
            "candidates": [candidate_entry(evaluation, place, listed)
                           for place, (_, evaluation, listed) in enumerate(ranked[:k], start=1)],
            "eligible": shortlist["eligible"] - was_eligible + len(evaluations), "top_k": k}


def order(shortlist: dict | None) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """Who is on the shortlist, in order: each provider, the centre that ranks it and its other centres listed."""
    return [(c["provider_id"], c["centre_id"], tuple(o["centre_id"] for o in c.get("other_centres", ())))
            for c in (shortlist or {}).get("candidates", [])]


def scores(shortlist: dict | None) -> list[tuple[str, ...]]:
    return [(c["score"], *(o["score"] for o in c.get("other_centres", ())))
            for c in (shortlist or {}).get("candidates", [])]


def really_changed(before: dict | None, after: dict) -> bool:
    """A shortlist changes when who is on it (a firm's centres listed included), or in which order, changes (not
    a score's last decimal): ``order(before) != order(after)``, compared place by place and stopped at the first
    difference (a change that enters a shortlist usually shows at its place or the last one)."""
    old, new = (before or {}).get("candidates", []), (after or {}).get("candidates", [])
    if len(old) != len(new):
        return True
    for was, now in zip(old, new, strict=True):
        if was["provider_id"] != now["provider_id"] or was["centre_id"] != now["centre_id"]:
            return True
        others_were, others_now = was.get("other_centres", ()), now.get("other_centres", ())
        if (others_were or others_now) and ([o["centre_id"] for o in others_were]
                                            != [o["centre_id"] for o in others_now]):
            return True
    return False


def changes(before: dict | None, after: dict) -> dict:
    """Provider ids added, removed, and moved (present in both at another rank)."""
    def ranks(shortlist: dict | None) -> dict[str, int]:
        best: dict[str, int] = {}
        for candidate in (shortlist or {}).get("candidates", []):
            best.setdefault(candidate["provider_id"], candidate["rank"])
        return best

    old, new = ranks(before), ranks(after)
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "moved": sorted(p for p in set(old) & set(new) if old[p] != new[p]),
    }


def score_units(text: str) -> int:
    whole, point, fraction = text.partition(".")
    if point and len(fraction) == 4 and whole.isdecimal() and fraction.isdecimal():  # as ``domain.score_text`` writes
        return int(whole) * 10_000 + int(fraction)  # it: without a Decimal (each new shortlist's cut reads one)
    return int(Decimal(text).scaleb(4))


def cut_key(shortlist: dict) -> tuple | None:
    """The sort key of the last candidate: a row must sort before it to enter a full shortlist."""
    candidates = shortlist.get("candidates") or []
    if len(candidates) < shortlist.get("top_k", 0) or not candidates:
        return None
    last = candidates[-1]
    return (-score_units(last["score"]), last["provider_id"], last["centre_id"] or "")


def listed_providers(shortlist: dict | None) -> frozenset[str]:
    return frozenset(c["provider_id"] for c in (shortlist or {}).get("candidates", ()))


_UNKNOWN = object()


def could_change(shortlist: dict | None, needs: PostingNeeds, provider_id: str,
                 rows: list[CandidateRow], *, listed: frozenset[str] | None = None, cut=_UNKNOWN) -> bool:
    """Whether a provider whose rows are now ``rows`` can change this shortlist: it is on it (it may move or
    drop), or one of its rows now qualifies and beats the last place (or there is room). ``listed`` and ``cut``
    (``listed_providers``, ``cut_key``) may be given when the caller keeps them.

    A row whose score bound (``domain.score_bound_units``) is below the cut's score cannot beat it: it is not
    evaluated (most rows of a market, when a shortlist is full)."""
    if shortlist is None:
        return True
    if provider_id in (listed_providers(shortlist) if listed is None else listed):
        return True
    if cut is _UNKNOWN:
        cut = cut_key(shortlist)
    for row in rows:
        if cut is not None and -domain.score_bound_units(row, needs) > cut[0]:
            continue
        evaluation = domain.evaluate(row, needs, explain=False)
        if evaluation.eligible and (cut is None or domain.sort_key(evaluation.units, row) < cut):
            return True
    return False


def wire(posting: dict, shortlist: dict) -> dict:
    """A shortlist as events and the API carry it."""
    return {
        "posting_id": posting["id"],
        "tenant_id": posting["tenant_id"],
        "shortlist": {k: shortlist[k] for k in ("version", "computed_at", "candidates")},
    }


def explanation(index: MatchIndex, needs: PostingNeeds, shortlist: dict | None, provider_id: str,
                rows: list[CandidateRow], k: int, now: datetime | None = None) -> dict:
    """Why a provider is where it is on a posting: per row (the provider, or each of its centres), the hard
    constraints that exclude it, or its score, breakdown, its provider's place among all eligible providers and
    distance to the cut.

    Status, rank and cut all come from one ranking, made now, of which the shortlist is the top ``k``: they cannot
    contradict each other. ``shortlist_version`` names the stored shortlist when it is that ranking; while a change
    is being re-ranked (the stored shortlist differs) it is null and ``shortlist_pending`` is true.
    """
    live, ranked = build(index, needs, k, version=(shortlist or {}).get("version", 0), now=now or utc_now())
    current = shortlist is not None and order(shortlist) == order(live)
    listed = {c["provider_id"]: c for c in live["candidates"]}
    candidates = live["candidates"]
    cut = candidates[-1]["score"] if len(candidates) >= k and candidates else None
    entries = []
    for row in rows:
        evaluation = domain.evaluate(row, needs)
        entry: dict = {"centre_id": row.centre_id, "centre_name": row.centre_name}
        place = listed.get(row.provider_id)
        if evaluation.exclusions:
            entry.update(status="excluded", excluded_by=[{"constraint": c, "reason": r}
                                                        for c, r in evaluation.exclusions])
        else:
            if place is not None:
                status = "shortlisted" if place["centre_id"] == row.centre_id else "listed_under_firm"
                rank = place["rank"]
            else:
                row_index = index.row_of(row.key)
                status, rank = "below_cut", None if row_index is None else index.position(ranked, row_index)
            entry.update(
                status=status,
                score=domain.score_text(evaluation.units),
                rank=rank,
                breakdown=breakdown(evaluation.components),
                reasons=evaluation.reasons,
            )
            if status == "below_cut" and cut is not None:
                entry["below_cut_by"] = domain.score_text(max(0, score_units(cut) - evaluation.units))
        entries.append(entry)
    statuses = {e["status"] for e in entries}
    status = next(s for s in ("shortlisted", "below_cut", "excluded") if s in statuses) if entries else "unknown"
    return {
        "posting_id": needs.posting_id,
        "provider_id": provider_id,
        "status": status,
        "shortlist_version": shortlist["version"] if current else None,
        "shortlist_pending": not current,
        "cut_score": cut,
        "top_k": k,
        "eligible": ranked.eligible,
        "rows": entries,
        "summary": _summary(status, entries, cut) + ("" if current else " The shortlist is being updated to "
                                                                         "this ranking."),
    }


def _summary(status: str, entries: list[dict], cut: str | None) -> str:
    if status == "shortlisted":
        best = min((e for e in entries if e["status"] == "shortlisted"), key=lambda e: e["rank"])
        return f"On the shortlist at rank {best['rank']} with score {best['score']}."
    if status == "below_cut":
        best = max((e for e in entries if e["status"] == "below_cut"), key=lambda e: score_units(e["score"]))
        gap = f", {best['below_cut_by']} below the cut ({cut})" if "below_cut_by" in best else ""
        return f"Eligible, ranked {best['rank']} with score {best['score']}{gap}."
    if status == "excluded":
        reasons = sorted({x["reason"] for e in entries for x in e["excluded_by"]})
        return "Excluded: " + "; ".join(reasons) + "."
    return "Matching knows no candidate rows for this provider."
