"""Invoices as readable documents (HTML) and cost reports as CSV. Standard library only.

Every value is escaped (``html.escape``): titles and descriptions are the parties' free text. PDF is not rendered:
no well-kept pure-Python HTML-to-PDF library is pinned here (WeasyPrint needs system Pango libraries); a browser
prints the HTML to PDF.
"""

from __future__ import annotations

import csv
import io
from html import escape


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


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()
