"""The one proration function: the preview and the charge both call `prorate`.

amount = (new price - old price) x (remaining / cycle length), computed exactly
on integer microseconds and rounded once, half-up (away from zero for refunds),
to the minor unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from portal.errors import PortalError

_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000


def round_half_up(value: Fraction) -> int:
    """Nearest integer; halves go away from zero (so a refund rounds like a charge)."""
    magnitude = (2 * abs(value.numerator) + value.denominator) // (2 * value.denominator)
    return magnitude if value >= 0 else -magnitude


@dataclass(frozen=True)
class Proration:
    amount_cents: int  # > 0 charge, < 0 refund due, 0 nothing
    remaining: Fraction  # of the cycle, 0 < remaining <= 1
    remaining_us: int
    cycle_us: int

    @property
    def remaining_days(self) -> str:
        return format_days(self.remaining_us)

    @property
    def cycle_days(self) -> str:
        return format_days(self.cycle_us)


def format_days(us: int) -> str:
    """Whole days as '12', otherwise one decimal ('12.5'); never '0' for a non-zero span."""
    tenths = round_half_up(Fraction(us * 10, _DAY_US))
    if us > 0 and tenths == 0:
        return "0.1"
    return str(tenths // 10) if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}"


def prorate(old_price_cents: int, new_price_cents: int, cycle_start: datetime,
            expires_at: datetime, at: datetime) -> Proration:
    cycle_us = (expires_at - cycle_start) // _US
    if cycle_us <= 0:
        raise PortalError("invalid_cycle", "the billing cycle has no length")
    if at >= expires_at:
        raise PortalError("subscription_expired", "your subscription has expired", 403)
    # Before the cycle started (clock skew) counts as the whole cycle remaining.
    remaining_us = min((expires_at - at) // _US, cycle_us)
    remaining = Fraction(remaining_us, cycle_us)
    amount = round_half_up((new_price_cents - old_price_cents) * remaining)
    return Proration(amount, remaining, remaining_us, cycle_us)
