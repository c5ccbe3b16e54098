"""Invoices as readable documents (HTML and PDF), their statements, and cost reports as CSV.

An invoice document shows the invoice as issued — the parties as named then, each line's quantity with its unit,
unit price and (a retainer's) proration basis, the totals, the tax treatment's wording, how to pay — and nothing
that changes afterwards: status, payments and balance are on its statement (``statement_html``).

HTML: every value is escaped (``html.escape``): titles and descriptions are the parties' free text.
PDF: drawn with fpdf2 (pure Python) in a Unicode TrueType font, DejaVu Sans by default
(``TASKLINKR_BILLING_PDF_FONT``), so names in any script the font covers print as written. Without that font file
the PDF falls back to the built-in Helvetica, which covers Latin-1 only: other characters print as ``?``.

Layer: domain-like. Pure rendering of values the handlers give it (no database, no broker); the only thing it
reads is the configured font file.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime
from html import escape
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

log = logging.getLogger(__name__)


def _money(value: dict | None) -> str:
    return "" if value is None else f"{escape(value['amount'])} {escape(value['currency'])}"


def _plain_money(value: dict | None) -> str:
    return "" if value is None else f"{value['amount']} {value['currency']}"


def parties_of(invoice: dict, tenant: dict | None, provider: dict | None) -> tuple[dict, dict]:
    """(supplier, client) as the invoice named them when issued; an invoice issued before parties were kept on it
    falls back to billing's current projections."""
    supplier = invoice.get("supplier") or {"id": invoice["provider_id"], **(provider or {})}
    client = invoice.get("client") or {"id": invoice["tenant_id"], **(tenant or {})}
    return supplier, client


def party_lines(party: dict) -> list[str]:
    """A party's block on the invoice: legal name (or name, or id), address lines, country, tax id."""
    lines = [party.get("legal_name") or party.get("name") or party["id"]]
    if party.get("legal_name") and party.get("name") and party["name"] != party["legal_name"]:
        lines.append(f"({party['name']})")
    lines += [line for line in (party.get("address") or "").splitlines() if line.strip()]
    if party.get("country"):
        lines.append(party["country"])
    if party.get("tax_id"):
        lines.append(f"Tax id: {party['tax_id']}")
    return lines


def quantity_of(line: dict) -> str:
    return f"{line['quantity']} {line['unit']}" if line.get("unit") else line["quantity"]


def description_of(line: dict) -> str:
    return f"{line['description']} ({line['basis']})" if line.get("basis") else line["description"]


def totals_of(invoice: dict) -> list[tuple[str, dict | None]]:
    tax = invoice["tax"]
    return [("Charges", invoice["charges"]), ("SLA credits", invoice["credits"]), ("Net", invoice["net"]),
            (tax["name"], tax["amount"]), ("Total", invoice["total"])]


def notes_of(invoice: dict, supplier: dict) -> list[str]:
    """What the invoice says below its figures: the tax treatment's wording, how and when to pay."""
    notes = [invoice["tax"]["note"]] if invoice["tax"].get("note") else []
    notes.append(f"Payable by {invoice['due_date']}, quoting {invoice['number']}.")
    if supplier.get("payment_instructions"):
        notes.append(f"Payment: {supplier['payment_instructions']}")
    notes.append("Each line is rounded once, half up, to the currency's minor unit; tax is computed once on the "
                 "net. Issued by the platform as billing agent in the name of the supplier.")
    return notes


_STYLE = """<style>
body { font-family: sans-serif; margin: 2em; color: #222; } table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .5em; text-align: left; } .num { text-align: right; }
tr.sla_credit td { color: #a33; } tfoot td { font-weight: bold; } .parties td { border: none; vertical-align: top; }
</style>"""


def _block(title: str, lines: list[str]) -> str:
    return f"<td><strong>{escape(title)}</strong><br>" + "<br>".join(escape(line) for line in lines) + "</td>"


def invoice_html(invoice: dict, tenant: dict | None, provider: dict | None) -> str:
    """``invoice`` in the API's wire form, as issued: parties, lines, totals and what the invoice says. Its status
    and balance are not part of it (they change; ``statement_html`` shows them), so the document never changes."""
    supplier, client = parties_of(invoice, tenant, provider)
    rows = "\n".join(
        f"<tr class=\"{escape(line['kind'])}\"><td>{escape(line['date'] or '')}</td>"
        f"<td>{escape(description_of(line))}</td><td class=\"num\">{escape(quantity_of(line))}</td>"
        f"<td class=\"num\">{_money(line['unit_price'])}</td><td class=\"num\">{_money(line['amount'])}</td></tr>"
        for line in invoice["lines"])
    totals = "\n".join(f"<tr><td colspan=\"4\">{escape(label)}</td><td class=\"num\">"
                       f"{'-' if label == 'SLA credits' else ''}{_money(amount)}</td></tr>"
                       for label, amount in totals_of(invoice))
    notes = "\n".join(f"<p>{escape(note)}</p>" for note in notes_of(invoice, supplier))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {escape(invoice['number'])}</title>
{_STYLE}</head>
<body>
<h1>Invoice {escape(invoice['number'])}</h1>
<table class="parties"><tr>{_block("Supplier", party_lines(supplier))}{_block("Bill to", party_lines(client))}</tr>
</table>
<p>Contract: {escape(invoice['title'])} ({escape(invoice['contract_id'])})<br>
Period: {escape(invoice['period']['start'])} to {escape(invoice['period']['end'])}<br>
Issued: {escape(invoice['issued_at'][:10])} &middot; Due: {escape(invoice['due_date'])}</p>
<table>
<thead><tr><th>Date</th><th>Description</th><th class="num">Quantity</th><th class="num">Unit price</th>
<th class="num">Amount</th></tr></thead>
<tbody>
{rows}
</tbody>
<tfoot>
{totals}
</tfoot>
</table>
{notes}
</body></html>
"""


def statement_html(invoice: dict) -> str:
    """Where an invoice stands now (wire form): status, paid, credited, balance, its payments and credit notes."""
    payments = "".join(f"<li>{escape(p['received_at'][:10])}: {_money(p['amount'])} ({escape(p['reference'])})</li>"
                       for p in invoice["payments"])
    notes = "".join(f"<li>{escape(n['number'])}: {_money(n['amount'])} ({escape(n['reason'])})</li>"
                    for n in invoice["credit_notes"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Statement of invoice {escape(invoice['number'])}</title>
{_STYLE}</head>
<body>
<h1>Statement of invoice {escape(invoice['number'])}</h1>
<p>Status: <strong>{escape(invoice['status'])}</strong> &middot; Due: {escape(invoice['due_date'])}</p>
<table><tbody>
<tr><td>Total</td><td class="num">{_money(invoice['total'])}</td></tr>
<tr><td>Paid</td><td class="num">{_money(invoice['paid'])}</td></tr>
<tr><td>Credit notes</td><td class="num">{_money(invoice['credited'])}</td></tr>
<tr><td><strong>Balance</strong></td><td class="num"><strong>{_money(invoice['balance'])}</strong></td></tr>
</tbody></table>
{f'<h2>Payments</h2><ul>{payments}</ul>' if payments else ''}
{f'<h2>Credit notes</h2><ul>{notes}</ul>' if notes else ''}
</body></html>
"""


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
    """``invoice`` (wire form) as a PDF document: the same content as ``invoice_html``; dated its issue time, so
    the same invoice always gives the same bytes."""
    supplier, client = parties_of(invoice, tenant, provider)
    pdf = _InvoicePdf(font_path)
    pdf.set_title(f"Invoice {invoice['number']}")
    pdf.set_creation_date(datetime.fromisoformat(invoice["issued_at"].replace("Z", "+00:00")))
    pdf.add_page()
    pdf.line_of_text(f"Invoice {invoice['number']}", size=18, style="B", height=10)
    for title, party in (("Supplier", supplier), ("Bill to", client)):
        pdf.line_of_text(title, size=9, style="B", height=4.5)
        pdf.line_of_text("\n".join(party_lines(party)), size=9, height=4.5)
        pdf.ln(1)
    pdf.line_of_text(f"Contract: {invoice['title']} ({invoice['contract_id']})")
    pdf.line_of_text(f"Period: {invoice['period']['start']} to {invoice['period']['end']}")
    pdf.line_of_text(f"Issued: {invoice['issued_at'][:10]} · Due: {invoice['due_date']}")
    pdf.ln(4)
    pdf.set_font(pdf.family, "", 9)
    with pdf.table(col_widths=(22, 83, 25, 25, 25), text_align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
                   line_height=5.5, first_row_as_headings=True) as table:
        table.row(["Date", "Description", "Quantity", "Unit price", "Amount"])
        for line in invoice["lines"]:
            table.row([pdf.text_of(line["date"] or ""), pdf.text_of(description_of(line)),
                       pdf.text_of(quantity_of(line)), _plain_money(line["unit_price"]),
                       _plain_money(line["amount"])])
    pdf.ln(3)
    for label, amount in totals_of(invoice):
        pdf.set_font(pdf.family, "B" if label == "Total" else "", 10)
        pdf.cell(150, 6, pdf.text_of(label), align="R")
        pdf.cell(30, 6, ("-" if label == "SLA credits" else "") + _plain_money(amount), align="R",
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    for note in notes_of(invoice, supplier):
        pdf.line_of_text(note, size=8, height=4)
    return bytes(pdf.output())


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()
