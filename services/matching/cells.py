"""What each of matching's cells keeps of a matching database from before cells (``tasklinkr split matching``,
docs/operations.md "Cells"): a posting and its shortlist live in the cell of the posting's lane (a provider change
re-ranks the open postings a cell holds); the projections of providers, tenants, contracts and SLA results are
every cell's."""

from services.matching import repository as r
from shared.tools.backup import BY_LANE, WHOLE

SPLIT = {
    r.POSTINGS: BY_LANE,
    **{name: WHOLE for name in (r.PROVIDERS, r.TENANTS, r.CONTRACTS, r.SLA_RESULTS, r.EARLY_FACTS)},
}
