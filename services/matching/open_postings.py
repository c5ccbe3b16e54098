"""The open postings in memory: what deciding which postings a provider's change can affect needs of them.

A provider's change can affect the open postings of its markets (model and category) and those it is listed on
(it may have left that market). This view answers that without reading the postings: per open posting its needs
(``domain.PostingNeeds``) and its current shortlist without reasons or breakdowns, indexed by market and by listed
provider. ``shortlists.could_change`` then decides with the same rules as before.

Every matching process keeps its own view and several processes consume different events, so the view is kept
current the way the provider index is (see ``repository.mark_posting_changed``): every write to a posting gives
it the next number of ``counters.postings`` in its transaction, the counter serialising those transactions so the
numbers follow commit order; before deciding, a process reads the postings numbered above the last it applied
(one indexed query that returns only what changed since). A posting another process opened or re-ranked is
therefore seen by the next decision after its commit, and a restart rebuilds the view from the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.matching import domain, repository, shortlists
from services.matching.domain import CandidateRow


@dataclass(frozen=True, slots=True)
class OpenPosting:
    id: str
    needs: domain.PostingNeeds
    shortlist: dict | None  # candidates without reasons and breakdowns
    listed: frozenset[str]  # provider ids on the shortlist


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

    def __len__(self) -> int:
        return len(self.postings)

    def apply(self, document: dict) -> None:
        """Put a posting's stored state in the view (an open one) or take it out (any other status)."""
        self._remove(document["id"])
        if document.get("status") != repository.OPEN:
            return
        shortlist = _compact(document.get("shortlist"))
        entry = OpenPosting(document["id"], domain.posting_needs(document), shortlist,
                            frozenset(c["provider_id"] for c in (shortlist or {}).get("candidates", ())))
        self.postings[entry.id] = entry
        self.by_market.setdefault((entry.needs.model, entry.needs.category), set()).add(entry.id)
        for provider_id in entry.listed:
            self.by_provider.setdefault(provider_id, set()).add(entry.id)

    def _remove(self, posting_id: str) -> None:
        entry = self.postings.pop(posting_id, None)
        if entry is None:
            return
        self.by_market[(entry.needs.model, entry.needs.category)].discard(posting_id)
        for provider_id in entry.listed:
            listed_on = self.by_provider[provider_id]
            listed_on.discard(posting_id)
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
        """The open postings whose shortlist the provider, now with ``rows``, can change."""
        models = {m for row in rows for m in row.models}
        categories = {c for row in rows for c in row.categories}
        return [posting_id for posting_id in self.touched_by(provider_id, models, categories)
                if shortlists.could_change(self.postings[posting_id].shortlist, self.postings[posting_id].needs,
                                           provider_id, rows)]
