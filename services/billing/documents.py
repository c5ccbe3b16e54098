"""Invoices as readable documents (HTML and PDF) and cost reports as CSV.

HTML: every value is escaped (``html.escape``): titles and descriptions are the parties' free text.
PDF: drawn with fpdf2 (pure Python) in a Unicode TrueType font, DejaVu Sans by default
(``TASKLINKR_BILLING_PDF_FONT``), so names in any script the font covers print as written. Without that font file
the PDF falls back to the built-in Helvetica, which covers Latin-1 only: other characters print as ``?``.
"""

from __future__ import annotations

import csv
import io
import logging
from html import escape
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

log = logging.getLogger(__name__)


def _money(value: dict | None) -> str:
    return "" if value is None else f"{escape(value['amount'])} {escape(value['currency'])}"


def invoice_html(invoice: dict, tenant: dict | None, provider: dict | None) -> str:
    """``invoice`` in the API's wire form."""
    rows = "\n".join(
        f"<tr class=\"{escape(line['kind'])}\"><td>{escape(line['date'] or '')}</td>"
        f"<td>{escape(line['description'])}</td><td class=\"num\">{escape(line['quantity'])}</td>"
        f"<td class=\"num\">{_money(line['unit_price'])}</td><td class=\"num\">{_money(line['amount'])}</td></tr>"
        for line in invoice["lines"])
    client = escape(tenant["name"]) if tenant else escape(invoice["tenant_id"])
    supplier = escape(provider["name"]) if provider else escape(invoice["provider_id"])
    tax = invoice["tax"]
    payments = "".join(f"<li>{escape(p['received_at'][:10])}: {_money(p['amount'])} ({escape(p['reference'])})</li>"
                       for p in invoice["payments"])
    notes = "".join(f"<li>{escape(n['number'])}: {_money(n['amount'])} ({escape(n['reason'])})</li>"
                    for n in invoice["credit_notes"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {escape(invoice['number'])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }} table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3em .5em; text-align: left; }} .num {{ text-align: right; }}
tr.sla_credit td {{ color: #a33; }} tfoot td {{ font-weight: bold; }}
</style></head>
<body>
<h1>Invoice {escape(invoice['number'])}</h1>
<p>From <strong>{supplier}</strong> to <strong>{client}</strong><br>
Contract: {escape(invoice['title'])} ({escape(invoice['contract_id'])})<br>
Period: {escape(invoice['period']['start'])} to {escape(invoice['period']['end'])}<br>
Issued: {escape(invoice['issued_at'][:10])} &middot; Due: {escape(invoice['due_date'])} &middot;
Status: {escape(invoice['status'])}</p>
<table>
<thead><tr><th>Date</th><th>Description</th><th class="num">Quantity</th><th class="num">Unit price</th>
<th class="num">Amount</th></tr></thead>
<tbody>
{rows}
</tbody>
<tfoot>
<tr><td colspan="4">Charges</td><td class="num">{_money(invoice['charges'])}</td></tr>
<tr><td colspan="4">SLA credits</td><td class="num">-{_money(invoice['credits'])}</td></tr>
<tr><td colspan="4">Net</td><td class="num">{_money(invoice['net'])}</td></tr>
<tr><td colspan="4">{escape(tax['name'])}</td><td class="num">{_money(tax['amount'])}</td></tr>
<tr><td colspan="4">Total</td><td class="num">{_money(invoice['total'])}</td></tr>
<tr><td colspan="4">Paid</td><td class="num">{_money(invoice['paid'])}</td></tr>
<tr><td colspan="4">Credit notes</td><td class="num">{_money(invoice['credited'])}</td></tr>
<tr><td colspan="4">Balance</td><td class="num">{_money(invoice['balance'])}</td></tr>
</tfoot>
</table>
{f'<h2>Payments</h2><ul>{payments}</ul>' if payments else ''}
{f'<h2>Credit notes</h2><ul>{notes}</ul>' if notes else ''}
<p><small>Each line is rounded once, half up, to the currency's minor unit; tax is computed once on the net.</small></p>
</body></html>
"""


def _plain_money(value: dict | None) -> str:
    return "" if value is None else f"{value['amount']} {value['currency']}"


class _InvoicePdf(FPDF):
    def __init__(self, font_path: str | None):
        super().__init__(format="A4")
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)
        regular = Path(font_path) if font_path else None
        if regular is not None and regular.is_file():
            bold = regular.with_name(regular.stem + "-Bold" + regular.suffix)
            self.add_font("Body", "", str(regular))
            self.add_font("Body", "B", str(bold if bold.is_file() else regular))
            self.family, self.latin1_only = "Body", False
        else:
            if font_path:
                log.warning("PDF font %s not found: invoices print in Helvetica (Latin-1 only)", font_path)
            self.family, self.latin1_only = "Helvetica", True

    def text_of(self, value: str) -> str:
        return value.encode("latin-1", "replace").decode("latin-1") if self.latin1_only else value

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="R")

    def line_of_text(self, text: str, size: float = 10, style: str = "", height: float = 5.5) -> None:
        self.set_font(self.family, style, size)
        self.multi_cell(0, height, self.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def invoice_pdf(invoice: dict, tenant: dict | None, provider: dict | None, font_path: str | None) -> bytes:
    """``invoice`` (wire form) as a PDF document: the same content as ``invoice_html``."""
    pdf = _InvoicePdf(font_path)
    pdf.set_title(f"Invoice {invoice['number']}")
    pdf.add_page()
    pdf.line_of_text(f"Invoice {invoice['number']}", size=18, style="B", height=10)
    client = tenant["name"] if tenant else invoice["tenant_id"]
    supplier = provider["name"] if provider else invoice["provider_id"]
    pdf.line_of_text(f"From {supplier} to {client}", style="B")
    pdf.line_of_text(f"Contract: {invoice['title']} ({invoice['contract_id']})")
    pdf.line_of_text(f"Period: {invoice['period']['start']} to {invoice['period']['end']}")
    pdf.line_of_text(f"Issued: {invoice['issued_at'][:10]} · Due: {invoice['due_date']} · "
                     f"Status: {invoice['status']}")
    pdf.ln(4)
    pdf.set_font(pdf.family, "", 9)
    with pdf.table(col_widths=(22, 88, 20, 25, 25), text_align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
                   line_height=5.5, first_row_as_headings=True) as table:
        table.row(["Date", "Description", "Quantity", "Unit price", "Amount"])
        for line in invoice["lines"]:
            table.row([pdf.text_of(line["date"] or ""), pdf.text_of(line["description"]), line["quantity"],
                       _plain_money(line["unit_price"]), _plain_money(line["amount"])])
    pdf.ln(3)
    tax = invoice["tax"]
    totals = [("Charges", _plain_money(invoice["charges"])), ("SLA credits", "-" + _plain_money(invoice["credits"])),
              ("Net", _plain_money(invoice["net"])), (tax["name"], _plain_money(tax["amount"])),
              ("Total", _plain_money(invoice["total"])), ("Paid", _plain_money(invoice["paid"])),
              ("Credit notes", _plain_money(invoice["credited"])), ("Balance", _plain_money(invoice["balance"]))]
    for label, amount in totals:
        pdf.set_font(pdf.family, "B" if label in ("Total", "Balance") else "", 10)
        pdf.cell(150, 6, pdf.text_of(label), align="R")
        pdf.cell(30, 6, amount, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for heading, entries in (
        ("Payments", [f"{p['received_at'][:10]}: {_plain_money(p['amount'])} ({p['reference']})"
                      for p in invoice["payments"]]),
        ("Credit notes", [f"{n['number']}: {_plain_money(n['amount'])} ({n['reason']})"
                          for n in invoice["credit_notes"]]),
    ):
        if entries:
            pdf.ln(3)
            pdf.line_of_text(heading, size=12, style="B", height=7)
            for entry in entries:
                pdf.line_of_text(entry)
    pdf.ln(4)
    pdf.line_of_text("Each line is rounded once, half up, to the currency's minor unit; tax is computed once on the "
                     "net.", size=8, height=4)
    return bytes(pdf.output())


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()
