"""VAT / GST of an invoice for business services, by the supplier's (the provider's) and the client's country.

The rule table (``tax_for``; docs/design/billing.md "Tax"), every client being a business:

- supplier and client in one country, in the rate table: ``domestic``, that country's standard rate (``VAT 19%``);
- one country, not in the table: ``not_in_table``, 0 (``No VAT/GST (US is not in the tax table)``);
- client in another country that is in the table: ``reverse_charge``, 0, and the reverse-charge wording (the
  client accounts for the tax; EU to EU: Article 196 of Directive 2006/112/EC);
- client in another country not in the table: ``outside_scope``, 0 (not subject to VAT/GST where the supplier
  is);
- supplier's country unknown (billing has not heard of the provider): as domestic in the client's country;
- client's country unknown: ``unknown``, 0 (``client country unknown``).

The built-in table holds each country's *standard* VAT or GST rate (percent) for business services, as published
by the national tax authorities in 2026. Reduced rates, exemptions, registration thresholds and US state sales
tax are not modelled. Operators change or extend the table without code with ``TASKLINKR_BILLING_TAX_RATES``
(``DE=19,GB=20,CH=8.1``), which overrides the built-in rate of each country it names.

Layer: domain (pure rules, no I/O).
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
EU = frozenset({"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
                "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
REVERSE_CHARGE_EU = "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)."
REVERSE_CHARGE = "Reverse charge: the recipient accounts for the {tax} in {country}."
OUTSIDE_SCOPE = "Not subject to VAT/GST in {supplier}: the service is supplied to a business in {country}."


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


def tax_for(country: str | None, table: dict[str, tuple[str, str]], supplier_country: str | None = None) -> dict:
    """``{"country", "name", "rate", "treatment", "note"}`` of an invoice from a supplier in ``supplier_country``
    to a business client in ``country`` (None: billing never heard of that party). The rule table is the module
    docstring's."""
    if country is None:
        return {"country": None, "name": f"{NO_TAX} (client country unknown)", "rate": "0", "treatment": "unknown",
                "note": None}
    if supplier_country is not None and supplier_country != country:
        if country in table:
            name = table[country][0]
            note = (REVERSE_CHARGE_EU if country in EU and supplier_country in EU
                    else REVERSE_CHARGE.format(tax=name, country=country))
            return {"country": country, "name": f"{name} 0% (reverse charge)", "rate": "0",
                    "treatment": "reverse_charge", "note": note}
        return {"country": country, "name": f"{NO_TAX} (outside the scope)", "rate": "0",
                "treatment": "outside_scope", "note": OUTSIDE_SCOPE.format(supplier=supplier_country, country=country)}
    if country in table:
        name, rate = table[country]
        return {"country": country, "name": f"{name} {rate}%", "rate": rate, "treatment": "domestic", "note": None}
    return {"country": country, "name": f"{NO_TAX} ({country} is not in the tax table)", "rate": "0",
            "treatment": "not_in_table", "note": None}
