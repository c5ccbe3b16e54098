"""VAT / GST by the client's country: the rate an invoice's net is taxed at.

The built-in table holds each country's *standard* VAT or GST rate (percent) for business services, as published
by the national tax authorities in 2026. Reverse charge, reduced rates, exemptions and US state sales tax are not
modelled: a country not in the table is invoiced without tax, and the invoice says so. Operators change or extend
the table without code with ``TASKLINKR_BILLING_TAX_RATES`` (``DE=19,GB=20,CH=8.1``), which overrides the
built-in rate of each country it names.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# country -> (name of the tax, standard rate in percent)
STANDARD_RATES: dict[str, tuple[str, str]] = {
    "AT": ("VAT", "20"), "AU": ("GST", "10"), "BE": ("VAT", "21"), "BG": ("VAT", "20"), "CA": ("GST", "5"),
    "CH": ("VAT", "8.1"), "CY": ("VAT", "19"), "CZ": ("VAT", "21"), "DE": ("VAT", "19"), "DK": ("VAT", "25"),
    "EE": ("VAT", "24"), "ES": ("VAT", "21"), "FI": ("VAT", "25.5"), "FR": ("VAT", "20"), "GB": ("VAT", "20"),
    "GR": ("VAT", "24"), "HR": ("VAT", "25"), "HU": ("VAT", "27"), "IE": ("VAT", "23"), "IN": ("GST", "18"),
    "IT": ("VAT", "22"), "JP": ("Consumption tax", "10"), "LT": ("VAT", "21"), "LU": ("VAT", "17"),
    "LV": ("VAT", "21"), "MT": ("VAT", "18"), "MX": ("IVA", "16"), "NL": ("VAT", "21"), "NO": ("VAT", "25"),
    "NZ": ("GST", "15"), "PH": ("VAT", "12"), "PL": ("VAT", "23"), "PT": ("VAT", "23"), "RO": ("VAT", "21"),
    "SE": ("VAT", "25"), "SG": ("GST", "9"), "SI": ("VAT", "22"), "SK": ("VAT", "23"), "ZA": ("VAT", "15"),
}
NO_TAX = "No VAT/GST"


def parse_overrides(text: str | None) -> dict[str, tuple[str, str]]:
    """``"DE=19,CH=8.1"`` -> {"DE": ("VAT", "19"), ...}; ``VAT`` unless the built-in table names the tax."""
    table: dict[str, tuple[str, str]] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        country, _, rate = part.partition("=")
        country = country.strip().upper()
        try:
            value = Decimal(rate.strip())
        except InvalidOperation:
            raise ValueError(f"TASKLINKR_BILLING_TAX_RATES: {part!r} is not COUNTRY=PERCENT") from None
        if len(country) != 2 or not value.is_finite() or not 0 <= value <= 100:
            raise ValueError(f"TASKLINKR_BILLING_TAX_RATES: {part!r} is not COUNTRY=PERCENT")
        table[country] = (STANDARD_RATES.get(country, ("VAT", ""))[0], format(value, "f"))
    return table


def tax_table(overrides: str | None) -> dict[str, tuple[str, str]]:
    return {**STANDARD_RATES, **parse_overrides(overrides)}


def tax_for(country: str | None, table: dict[str, tuple[str, str]]) -> dict:
    """``{"country", "name", "rate"}`` of an invoice to a client in ``country`` (None: billing never heard of the
    client's organisation, so it cannot know)."""
    if country in table:
        name, rate = table[country]
        return {"country": country, "name": f"{name} {rate}%", "rate": rate}
    why = "client country unknown" if country is None else f"{country} is not in the tax table"
    return {"country": country, "name": f"{NO_TAX} ({why})", "rate": "0"}
