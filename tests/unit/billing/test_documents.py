"""Invoice documents: the PDF carries what the invoice says, in the parties' own spelling where the font allows."""

import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from services.billing import documents
from shared.config import SETTINGS

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
                   "quantity": "2.5", "unit_price": usd("13.25"), "amount": usd("33.13")}
                  for day in range(1, lines + 1)]
        + [{"kind": "sla_credit", "date": None, "description": "SLA credit: first response, week 41",
            "quantity": "1", "unit_price": None, "amount": usd("-3.64")}],
        "charges": usd("99.39"), "credits": usd("3.64"), "net": usd("95.75"),
        "tax": {"name": "Sales tax 0%", "amount": usd("0.00")}, "total": usd("95.75"), "paid": usd("50.00"),
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
                     "SLA credit: first response, week 41", "-3.64 USD", "95.75 USD", "45.75 USD", "ach-0007"):
        assert expected in text, expected


@pytest.mark.skipif(not Path(FONT).is_file(), reason=f"the default PDF font {FONT} is not installed here")
def test_a_long_invoice_runs_over_pages_and_loses_no_line():
    pages, text = text_of(documents.invoice_pdf(invoice(lines=120), None, None, FONT))
    assert pages >= 3
    assert all(f"Ticket triage, day {day}\n" in text or f"Ticket triage, day {day} " in text
               for day in range(1, 121))
    assert "Balance" in text and "45.75 USD" in text


def test_without_its_font_the_pdf_prints_latin_1_and_marks_what_it_cannot():
    pages, text = text_of(documents.invoice_pdf(invoice(), {"name": "Praxis Müller"}, None, "/nonexistent.ttf"))
    assert pages == 1
    assert "Praxis Müller" in text and "?saka and Zürich" in text and "95.75 USD" in text
