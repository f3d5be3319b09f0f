"""Exact money: integer minor units (e.g. cents) plus an ISO 4217 currency.

Amounts are stored as int64 minor units and travel in JSON as decimal strings with
exactly the currency's number of decimals (``"1250.00"``, ``"1250"`` for JPY). Input with
more decimals than the currency has is refused, never rounded. Binary floats never appear.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

from gala.errors import InvalidInput

DEFAULT_EXPONENT: Final = 2
EXPONENTS: Final[dict[str, int]] = {
    # ISO 4217 minor units that differ from 2 (the usual case).
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip
INT64_MAX: Final = 2**63 - 1
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class InvalidMoney(InvalidInput):
    pass


def normalize_currency(code: str) -> str:
    currency = code.strip().upper()
    if not _CURRENCY.match(currency):
        raise InvalidMoney(f"{code!r} is not an ISO 4217 currency code.")
    return currency


def exponent(currency: str) -> int:
    return EXPONENTS.get(currency, DEFAULT_EXPONENT)


def to_minor(amount: Decimal | str, currency: str) -> int:
    """``amount`` in the currency's minor units; more decimals than it has is refused."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise InvalidMoney(f"{amount!r} is not a decimal amount.") from exc
    if not value.is_finite():
        raise InvalidMoney("An amount must be a finite number.")
    if value < 0:
        raise InvalidMoney("An amount cannot be negative.")
    places = exponent(currency)
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise InvalidMoney(f"{currency} amounts have at most {places} decimal(s); got {amount}.")
    minor = int(scaled)
    if minor > INT64_MAX:
        raise InvalidMoney("The amount is too large.")
    return minor


def from_minor(minor: int, currency: str) -> Decimal:
    """Minor units as a decimal with exactly the currency's number of decimals."""
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def weighted(minor: int, probability: Decimal) -> int:
    """``minor`` x ``probability``, rounded half-even to a whole minor unit."""
    return int((Decimal(minor) * probability).to_integral_value(rounding=ROUND_HALF_EVEN))


def allocate(minor: int, shares: list[Decimal]) -> list[int]:
    """Split ``minor`` in proportion to ``shares``, in whole minor units that add up to
    ``minor`` exactly: each part is rounded down, then the units left over go one by one
    to the parts that lost the largest fractions (the earliest first on a tie)."""
    total = sum(shares, Decimal(0))
    if minor < 0 or total <= 0 or any(share < 0 for share in shares):
        raise InvalidMoney("An allocation needs a positive amount and non-negative shares.")
    exact = [Decimal(minor) * share / total for share in shares]
    parts = [int(value) for value in exact]  # int() rounds toward zero: down, here
    left = minor - sum(parts)
    by_fraction = sorted(range(len(shares)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_fraction[:left]:
        parts[i] += 1
    return parts
