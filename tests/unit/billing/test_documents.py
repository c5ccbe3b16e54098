"""Invoice documents: the PDF carries what the invoice says, in the parties' own spelling where the font allows."""

import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from services.billing import documents
from services.billing.settings import SETTINGS

FONT = next(s.default for s in SETTINGS if s.name == "billing_pdf_font")


def usd(amount: str) -> dict:
    return {"amount": amount, "currency": "USD"}


def invoice(lines: int = 3) -> dict:
    return {
        "number": "INV-000042", "tenant_id": "ten_" + "1" * 32, "provider_id": "prv_" + "2" * 32,
        "contract_id": "ctr_" + "3" * 32, "title": "Helpdesk for Ōsaka and Zürich offices",
        "period": {"start": "2026-10-01", "end": "2026-10-31"}, "issued_at": "2026-11-01T00:05:00.000Z",
        "due_date": "2026-12-01", "status": "partially_paid",
        "lines": [{"kind": "time", "date": f"2026-10-{day:02d}", "description": f"Ticket triage, day {day}",
                   "quantity": "2.5", "unit": "hours", "unit_price": usd("13.25"), "amount": usd("33.13")}
                  for day in range(1, lines + 1)]
        + [{"kind": "sla_credit", "date": None, "description": "SLA credit: first response, week 41",
            "quantity": "1", "unit_price": None, "amount": usd("-3.64")}],
        "charges": usd("99.39"), "credits": usd("3.64"), "net": usd("95.75"),
        "tax": {"name": "Sales tax 0%", "amount": usd("0.00"), "note": None}, "total": usd("95.75"),
        "paid": usd("50.00"),
        "credited": usd("0.00"), "balance": usd("45.75"),
        "payments": [{"received_at": "2026-11-03T10:00:00.000Z", "amount": usd("50.00"), "reference": "ach-0007"}],
        "credit_notes": [],
    }


def text_of(document: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(document))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.skipif(not Path(FONT).is_file(), reason=f"the default PDF font {FONT} is not installed here")
def test_a_pdf_invoice_carries_every_line_the_totals_and_the_parties_names_as_written():
    document = documents.invoice_pdf(invoice(), {"name": "Praxis Müller & Søn"}, {"name": "Cebu Ōtomo BPO"}, FONT)
    assert document.startswith(b"%PDF-")
    pages, text = text_of(document)
    assert pages == 1
    for expected in ("Invoice INV-000042", "Praxis Müller & Søn", "Cebu Ōtomo BPO", "Ōsaka and Zürich",
                     "2026-10-01 to 2026-10-31", "Ticket triage, day 1", "Ticket triage, day 3",
                     "SLA credit: first response, week 41", "-3.64 USD", "95.75 USD", "2.5 hours"):
        assert expected in text, expected
    for changing in ("partially_paid", "45.75 USD", "ach-0007", "Balance"):  # the statement's, not the invoice's
        assert changing not in text, changing


@pytest.mark.skipif(not Path(FONT).is_file(), reason=f"the default PDF font {FONT} is not installed here")
def test_a_long_invoice_runs_over_pages_and_loses_no_line():
    pages, text = text_of(documents.invoice_pdf(invoice(lines=120), None, None, FONT))
    assert pages >= 3
    assert all(f"Ticket triage, day {day}\n" in text or f"Ticket triage, day {day} " in text
               for day in range(1, 121))
    assert "Total" in text and "95.75 USD" in text


def test_without_its_font_the_pdf_prints_latin_1_and_marks_what_it_cannot():
    pages, text = text_of(documents.invoice_pdf(invoice(), {"name": "Praxis Müller"}, None, "/nonexistent.ttf"))
    assert pages == 1
    assert "Praxis Müller" in text and "?saka and Zürich" in text and "95.75 USD" in text


def issued_to_a_business_abroad() -> dict:
    issued = invoice(lines=1)
    issued["lines"].insert(0, {"kind": "retainer", "date": None, "description": "Retainer 2026-10-01 to 2026-10-20",
                               "quantity": "20", "unit": "days", "basis": "20/31 of the monthly retainer",
                               "unit_price": usd("3100.00"), "amount": usd("2000.00")})
    issued["tax"] = {"name": "VAT 0% (reverse charge)", "amount": usd("0.00"),
                     "note": "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive "
                             "2006/112/EC)."}
    issued["supplier"] = {"id": issued["provider_id"], "name": "Cebu BPO", "legal_name": "Cebu BPO Sp. z o.o.",
                          "address": "ul. Długa 5\n00-001 Warszawa", "tax_id": "PL5260250274", "country": "PL",
                          "payment_instructions": "IBAN PL61 1090 1014 0000 0712 1981 2874, BIC WBKPPLPP"}
    issued["client"] = {"id": issued["tenant_id"], "name": "Praxis Weber", "legal_name": "Praxis Weber GmbH",
                        "address": "Hauptstraße 1\n10115 Berlin", "tax_id": "DE136695976", "country": "DE"}
    return issued


def test_an_invoice_names_both_parties_legally_says_how_to_pay_and_words_the_reverse_charge_on_html_and_pdf():
    issued = issued_to_a_business_abroad()
    html = documents.invoice_html(issued, {"name": "Renamed since"}, None)
    pdf_text = text_of(documents.invoice_pdf(issued, {"name": "Renamed since"}, None, FONT))[1]
    for text in (html, pdf_text.replace("\n", " ")):
        for expected in ("Cebu BPO Sp. z o.o.", "PL5260250274", "Praxis Weber GmbH", "10115 Berlin",
                         "DE136695976", "IBAN PL61 1090 1014 0000 0712 1981 2874", "Article 196",
                         "20 days", "20/31 of the monthly retainer", "3100.00 USD", "2.5 hours"):
            assert expected in text, expected
        assert "Renamed since" not in text  # the parties as the invoice named them when issued


def test_an_issued_invoice_document_never_changes_and_its_statement_shows_where_it_stands():
    issued = issued_to_a_business_abroad()
    later = {**issued, "status": "paid", "paid": usd("95.75"), "balance": usd("0.00"),
             "payments": [*issued["payments"], {"received_at": "2026-11-20T10:00:00.000Z", "amount": usd("45.75"),
                                                "reference": "ach-0009"}]}
    assert documents.invoice_html(later, None, None) == documents.invoice_html(issued, None, None)
    assert documents.invoice_pdf(later, None, None, FONT) == documents.invoice_pdf(issued, None, None, FONT)
    statement = documents.statement_html(later)
    for expected in ("Statement of invoice INV-000042", "paid", "95.75 USD", "0.00 USD", "ach-0007", "ach-0009"):
        assert expected in statement, expected
