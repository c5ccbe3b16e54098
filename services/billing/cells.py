"""What each of billing's cells keeps of a billing database from before cells (``tasklinkr split billing``,
docs/operations.md "Upgrading from one billing database"): a contract's account and everything billed on it live in
the cell of the account's lane; what any lane may read is copied whole."""

from services.billing import repository as r
from shared.tools.backup import BY_LANE, WHOLE, belonging_to

SPLIT = {
    r.ACCOUNTS: BY_LANE,
    **{name: belonging_to(r.ACCOUNTS, "contract_id")
       for name in (r.ITEMS, r.INVOICES, r.PAYMENTS, r.REFUNDS, r.CREDITS, r.CREDIT_NOTES)},
    # A client's own lane reads its tenant record and in-house costs; providers are every cell's; each lane numbers
    # in a series of its own, so the counters go whole into both without giving a number twice.
    **{name: WHOLE for name in (r.TENANTS, r.IN_HOUSE_COSTS, r.PROVIDERS, r.COUNTERS)},
}
