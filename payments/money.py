"""Money in every currency: which currencies are accepted, each one's exponent, and exact conversion between
the integer minor units we store and the major units people type and read.

* **Accepted currencies** are the ISO 4217 codes that CLDR (through Babel) lists as legal tender in at least
  one territory today: CNY, EUR, USD, JPY, KRW, BHD, KWD... (about 150 codes). Funds, precious metals,
  test codes (XXX, XTS, XAU) and withdrawn currencies (DEM, FRF) are refused.
* **The exponent** (decimal places of the minor unit) is Babel's :func:`babel.numbers.get_currency_precision`:
  CNY 2 (fen), JPY 0, KRW 0, BHD 3 (fils). Amounts are always integers in minor units of that exponent.
* **Parsing** goes through :class:`decimal.Decimal`, never ``float``, and refuses more decimal places than the
  currency has ("1.234" in CNY), anything that is not a plain number ("abc", "1e3", "NaN"), and negatives.

Pure functions (no database, no web): the web forms, templates, notifications, invoices and CSV exports all
use them, so an amount is shown the same way everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal
from functools import cache

from babel.core import get_global
from babel.numbers import get_currency_precision, get_territory_currencies

MAX_MINOR = 10**13  # the largest amount a form accepts, in minor units (API fields have their own bounds)

_CODE = re.compile(r"^[A-Z]{3}$")
# A plain decimal number as people type it: optional thousands separators in groups of three, a point for the
# decimals. "12,5" is refused rather than read as 125 (a European decimal comma).
_NUMBER = re.compile(r"^(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.(?P<frac>[0-9]*))?$")


class InvalidAmount(ValueError):
    """An amount or currency a person typed cannot be used. ``reason`` is one of ``not_a_number``,
    ``too_many_decimals``, ``negative``, ``too_large``, ``unknown_currency``; ``message`` is English."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


@cache
def accepted_currencies() -> frozenset[str]:
    """ISO 4217 codes that are legal tender in at least one territory today (CLDR, through Babel)."""
    today = date.today()
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(get_territory_currencies(territory, today, tender=True, non_tender=False))
    return frozenset(c for c in codes if _CODE.match(c))


def check_currency(code: str) -> str:
    """The upper-cased code if it is an accepted currency; otherwise :class:`InvalidAmount`."""
    value = (code or "").strip().upper()
    if value not in accepted_currencies():
        raise InvalidAmount(
            "unknown_currency", "must be the ISO 4217 code of a currency in use, such as CNY, EUR, USD or JPY"
        )
    return value


def exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (CNY 2, JPY 0, BHD 3); 2 for a code Babel does not know."""
    return int(get_currency_precision(currency.upper()))


def to_major(amount: int, currency: str) -> Decimal:
    """Minor units → an exact Decimal in major units with the currency's decimal places (1250 CNY → 12.50)."""
    digits = exponent(currency)
    return Decimal(int(amount)).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def example(currency: str) -> str:
    """A sample amount in the currency's format, for hints and error messages (JPY "1500", CNY "12.50")."""
    return input_value(1250 if exponent(currency) else 1500, currency)


def input_value(amount: int | None, currency: str) -> str:
    """Minor units as the value of a form input, in major units without grouping (1250 CNY → "12.50")."""
    if amount is None:
        return ""
    return format(to_major(amount, currency), "f")


def plain(amount: int, currency: str) -> str:
    """Locale-neutral text for notifications, invoices and logs: "12.50 CNY", "1,500 JPY", "-1.250 BHD"."""
    digits = exponent(currency)
    return f"{to_major(amount, currency):,.{digits}f} {currency.upper()}"


def parse(text: str, currency: str) -> int:
    """Major units typed by a person → integer minor units of ``currency`` (exactly, through Decimal).

    "1500" JPY → 1500, "12.5" CNY → 1250, "1.250" BHD → 1250, "1,500.00" USD → 150000. Raises
    :class:`InvalidAmount` for anything else: "1.234" CNY (too many decimals), "1.5" JPY, "abc", "-3",
    "1e3", "12,5"."""
    cur = check_currency(currency)
    digits = exponent(cur)
    # NFKC: full-width digits and points typed with a Chinese input method read as ASCII ("１２．５" → "12.5").
    raw = unicodedata.normalize("NFKC", text or "").strip().replace(" ", "")
    if raw.startswith("-"):
        raise InvalidAmount("negative", "must not be negative")
    match = _NUMBER.match(raw)
    if not raw or match is None or (match["int"] is None and not match["frac"]):
        raise InvalidAmount("not_a_number", f"must be an amount in {cur} such as {example(cur)}")
    frac = (match["frac"] or "").rstrip("0")
    if len(frac) > digits:
        places = "no decimal places" if digits == 0 else f"at most {digits} decimal places"
        raise InvalidAmount("too_many_decimals", f"{cur} amounts have {places}")
    value = Decimal((match["int"] or "0").replace(",", "") + "." + (frac or "0")).scaleb(digits)
    minor = int(value)
    if minor > MAX_MINOR:
        raise InvalidAmount("too_large", "is too large")
    return minor
