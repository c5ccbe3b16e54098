"""What billing alone reads: its invoice and overdue runs, tax rates, the invoices' font."""
from shared.runtime.config import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "billing_invoice_run_interval_seconds",
        3600.0,
        "How often billing's scheduled invoice run issues the invoices of every billing period that has ended.",
        cast=float,
    ),
    Setting(
        "billing_overdue_interval_seconds",
        300.0,
        "How often billing looks for invoices with a balance past their due time (announced once as overdue).",
        cast=float,
    ),
    Setting(
        "billing_run_batch_size",
        100,
        "Accounts of one tenant an invoice run invoices per transaction.",
        cast=int,
    ),
    Setting(
        "billing_tax_rates",
        "",
        "VAT/GST rates (percent) by the client's country, over billing's built-in table of standard rates "
        "(`services/billing/tax.py`): `DE=19,CH=8.1`. A country in neither is invoiced without tax.",
    ),
    Setting(
        "billing_pdf_font",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "TrueType font that PDF invoices are drawn in (its `-Bold` sibling for headings, when present); a missing "
        "file falls back to Helvetica, which prints only Latin-1 (other characters as `?`).",
    ),
)
