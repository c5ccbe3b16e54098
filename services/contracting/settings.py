"""Contracting's own settings (read by ``shared.runtime.config``, which finds this module by name): how often SLA
windows are evaluated and issues escalated, the measurements' grace, and how far back a contract may start."""
from shared.runtime.config import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "contracting_sla_evaluation_interval_seconds",
        60.0,
        "How often contracting looks for SLA measurement windows that fell due and evaluates them.",
        cast=float,
    ),
    Setting(
        "contracting_sla_grace_seconds",
        3600.0,
        "How long after a window ends (or after activation, for a backdated contract's past windows) its "
        "measurements still count; then the window is evaluated once. Later ones are recorded as late. A window "
        "both parties close early is evaluated at once.",
        cast=float,
    ),
    Setting(
        "contracting_escalation_interval_seconds",
        60.0,
        "How often contracting escalates open issues past their due time one level up the governance plan.",
        cast=float,
    ),
    Setting(
        "contracting_max_backdate_days",
        31,
        "How far in the past a draft contract's start date may lie (formalising work already under way); "
        "postings refuses (409) an award whose agreed start lies further back, so every award becomes a contract.",
        cast=int,
    ),
)
