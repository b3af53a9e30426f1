"""Money is integer minor units. Parsing and formatting live here, nowhere else.

"Minor units" are the currency's own: cents for USD (2 digits), none for LBP
(0: amounts are whole pounds), fils for JOD (3). The `*_cents` columns hold minor
units of the reseller's currency; amounts go through Decimal, never float. A
currency this table does not know is refused when a reseller is set to it, so
no amount is ever scaled by a guess.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from portal.errors import PortalError

# ISO 4217 exponents that are not 2. LBP and IQD: 0 as they are actually priced (no
# piastres or fils in circulation), as CLDR and every bank statement has them.
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys("BIF CLP DJF GNF IQD ISK JPY KMF KRW LBP PYG RWF UGX VND VUV XAF XOF XPF"
                    .split(), 0),
    **dict.fromkeys("BHD JOD KWD LYD OMR TND".split(), 3),
}
# Active ISO 4217 codes with 2 minor digits.
_TWO = set(
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN"
    " BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS"
    " GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LKR LRD"
    " LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB"
    " PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC"
    " SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG".split())

# Digits as typed on Arabic and Persian keyboards, and the Arabic decimal separator.
_DIGITS = str.maketrans({**{chr(0x0660 + i): str(i) for i in range(10)},
                         **{chr(0x06F0 + i): str(i) for i in range(10)},
                         "\u066b": "."})
_PLAIN = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


def minor_units(currency: str) -> int:
    """How many decimal digits the currency's minor unit has; unknown codes refused."""
    if currency in MINOR_UNITS:
        return MINOR_UNITS[currency]
    if currency in _TWO:
        return 2
    raise PortalError("invalid_currency", f"unknown currency {currency[:8]!r}: use an ISO 4217"
                      " code such as USD, EUR, LBP or JOD")


def minor_units_or_2(currency: str) -> int:
    """The digits of a currency already stored (codes were not checked before)."""
    return MINOR_UNITS.get(currency, 2)


def ascii_digits(text: str) -> str:
    """Arabic-Indic (٠-٩) and Persian (۰-۹) digits and the Arabic decimal separator (٫)
    as ASCII; anything else is left for the caller to refuse."""
    return text.translate(_DIGITS)


def parse_amount(text: str | int, *, allow_zero: bool = False, currency: str = "USD") -> int:
    """'12.50' -> 1250 (USD); '150000' -> 150000 (LBP); '1.250' -> 1250 (JOD); '١٢٫٥٠' too.
    Refuses negatives, exponents, NaN, more decimals than the currency has, absurd sizes."""
    digits = minor_units(currency)
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise PortalError("invalid_amount", "amount must be a number")
    plain = ascii_digits(str(text).strip())
    if plain.startswith("-") and _PLAIN.fullmatch(plain[1:]):
        raise PortalError("invalid_amount", "amount must be positive")
    if not _PLAIN.fullmatch(plain):
        raise PortalError("invalid_amount", f"not an amount: {str(text)[:40]!r}")
    # Size first: quantize() of a huge value exceeds the context's precision.
    if len(plain.split(".")[0]) > 12:
        raise PortalError("invalid_amount", "amount is too large")
    value = Decimal(plain)
    if value > Decimal("100000000") * (10 ** max(0, 2 - digits)):
        raise PortalError("invalid_amount", "amount is too large")
    if value == 0 and not allow_zero:
        raise PortalError("invalid_amount", "amount must be positive")
    step = Decimal(1).scaleb(-digits)
    if value != value.quantize(step):
        raise PortalError("invalid_amount", f"amount has more than {digits} decimal places"
                          f" ({currency})" if digits else f"{currency} amounts are whole numbers")
    return int((value.scaleb(digits)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fmt(minor: int, currency: str = "USD") -> str:
    """1250 -> '12.50' (USD), 150000 -> '150000' (LBP), 1250 -> '1.250' (JOD)."""
    # Never fails: a currency stored before codes were checked shows with 2 digits.
    digits = minor_units_or_2(currency)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{part:0{digits}d}" if digits else f"{sign}{whole}"


def parse_whole(text: str, name: str, most: int = 10**18) -> int:
    """A whole number typed by a person (query argument, CLI option), Arabic-Indic digits
    accepted: 0..most, anything else refused (never a 500 on '²' or '1e3')."""
    plain = ascii_digits(text.strip())
    if not plain.isascii() or not plain.isdigit() or len(plain) > 18 or int(plain) > most:
        raise PortalError("invalid_" + name, f"{name} must be a whole number from 0 to {most}")
    return int(plain)
