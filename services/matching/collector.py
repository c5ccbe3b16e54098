"""How matching sets up Python's garbage collector once its index and open postings are loaded.

What was loaded lives as long as the process: it is moved out of the collector's way (``gc.freeze``), or a full
collection (a quarter of a second over 10,000 open postings) lands in the middle of whichever ranking allocates past
its threshold. The youngest generation's threshold is raised too: a re-match keeps a few thousand new objects (the
shortlists and explanations it keeps), and at the default threshold (700) the worst change paid about 5 ms in
collections of them; reference counting frees what a re-match drops. The price: rarer but larger collections
(a middle one, every tenth young one, scans their survivors: tens of milliseconds when it comes, see
docs/design/matching.md).
"""

from __future__ import annotations

import gc

#: Allocations (less deallocations) of tracked objects between two collections of the youngest generation.
YOUNG_THRESHOLD = 50_000


def settle() -> None:
    """Collect once, freeze what survived and raise the youngest generation's threshold; the service calls it after
    each rebuild, the benchmark after loading its market, so both run under the same collector."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
