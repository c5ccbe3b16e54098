"""Money: a ``Decimal`` amount with an ISO 4217 currency. Never a float.

On the wire (events and API): ``{"amount": "1234.50", "currency": "EUR"}``; in MongoDB the amount is a
``Decimal128`` so it sorts and sums exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pycountry
from bson.decimal128 import Decimal128


def is_currency(code: str) -> bool:
    return isinstance(code, str) and len(code) == 3 and pycountry.currencies.get(alpha_3=code) is not None


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money amount must be a Decimal")
        if not self.amount.is_finite():
            raise ValueError("Money amount must be finite")
        if not is_currency(self.currency):
            raise ValueError(f"unknown ISO 4217 currency {self.currency!r}")

    @classmethod
    def parse(cls, value: dict) -> Money:
        try:
            return cls(Decimal(str(value["amount"])), str(value["currency"]))
        except (KeyError, TypeError, InvalidOperation) as exc:
            raise ValueError(f"not a money value: {value!r}") from exc

    def to_wire(self) -> dict:
        return {"amount": format(self.amount, "f"), "currency": self.currency}

    def to_bson(self) -> dict:
        return {"amount": Decimal128(self.amount), "currency": self.currency}

    @classmethod
    def from_bson(cls, value: dict) -> Money:
        amount = value["amount"]
        return cls(amount.to_decimal() if isinstance(amount, Decimal128) else Decimal(str(amount)), value["currency"])


# ISO 4217 currencies whose minor unit is not the cent (every other currency has two decimals).
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())


def minor_unit(currency: str) -> Decimal:
    """The currency's smallest unit: 0.01 for most, 1 for JPY and friends, 0.001 for BHD and friends."""
    if currency in ZERO_DECIMAL:
        return Decimal("1")
    if currency in THREE_DECIMAL:
        return Decimal("0.001")
    return Decimal("0.01")


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The platform's one rounding rule: half up, to the currency's minor unit."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
