"""Tax on tax-inclusive prices: the total is what was paid, the tax is the part of it."""

from __future__ import annotations

from fractions import Fraction

from portal.core.billing.proration import round_half_up


def split_inclusive(total_cents: int, tax_rate_bp: int) -> tuple[int, int]:
    """(subtotal, tax) with subtotal + tax == total exactly; tax rounded half-up."""
    if tax_rate_bp < 0:
        raise ValueError("tax rate cannot be negative")
    tax = round_half_up(Fraction(total_cents * tax_rate_bp, 10_000 + tax_rate_bp))
    return total_cents - tax, tax
