"""Matching's own settings: the shortlist's length and how often the load of terminated contracts is released.

``shared.runtime.config`` finds this module by its name (docs/configuration.md lists what it declares).
"""
from shared.runtime.config import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting("matching_top_k", 10, "Candidates on a posting's shortlist (matching).", cast=int),
    Setting(
        "matching_notice_release_interval_seconds",
        3600.0,
        "How often matching frees the load of terminated contracts whose notice period has ended (their hours "
        "count against the provider's capacity until the effective date).",
        cast=float,
    ),
)
