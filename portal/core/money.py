"""Money is integer minor units. Parsing and formatting live here, nowhere else."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from portal.errors import PortalError


def parse_amount(text: str | int | float, *, allow_zero: bool = False) -> int:
    """'12.50' -> 1250. Refuses negatives, NaN, more than 2 decimals, absurd sizes."""
    if isinstance(text, bool):
        raise PortalError("invalid_amount", "amount must be a number")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise PortalError("invalid_amount", f"not an amount: {str(text)[:40]!r}") from None
    if not value.is_finite():
        raise PortalError("invalid_amount", "amount must be a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        raise PortalError("invalid_amount", "amount must be positive")
    # Size first: quantize() of 1e400 to cents exceeds the context's precision and
    # raises InvalidOperation instead of answering.
    if value > Decimal("100000000"):
        raise PortalError("invalid_amount", "amount is too large")
    if value != value.quantize(Decimal("0.01")):
        raise PortalError("invalid_amount", "amount has more than 2 decimal places")
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def fmt(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
