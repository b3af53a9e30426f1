"""Local days and billing cycles in the operator's time zone.

Usage is kept per local day; an interval of traffic that spans local midnight is
split between the days in proportion to time, with integer bytes that always
add up to the whole.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal.errors import PortalError


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PortalError("invalid_timezone", f"unknown time zone {name!r} in general.timezone"
                          ) from None


def local_day(epoch: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(epoch, tz).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight as an aware datetime (DST-safe: fold=0 of the wall time)."""
    return datetime.combine(day, time(0), tz)


def split(t0: int, t1: int, tz: ZoneInfo) -> list[tuple[date, int]]:
    """The local days [t0, t1] touches and the seconds it spends in each.

    A zero-length interval belongs wholly to the day of t1.
    """
    if t1 <= t0:
        return [(local_day(t1, tz), 0)]
    out: list[tuple[date, int]] = []
    cursor = t0
    day = local_day(t0, tz)
    while cursor < t1:
        next_midnight = int(day_start(day + timedelta(days=1), tz).timestamp())
        end = min(t1, next_midnight)
        if end > cursor:
            out.append((day, end - cursor))
        cursor = end
        day = day + timedelta(days=1)
    return out


def allocate(total: int, weights: list[int]) -> list[int]:
    """Integer shares of total proportional to weights; they sum to total exactly."""
    if len(weights) == 1:
        return [total]
    whole = sum(weights)
    if whole <= 0:
        return [0] * (len(weights) - 1) + [total]
    out, acc_w, given = [], 0, 0
    for w in weights:
        acc_w += w
        upto = total * acc_w // whole
        out.append(upto - given)
        given = upto
    return out


def spread(t0: int, t1: int, bytes_in: int, bytes_out: int, tz: ZoneInfo
           ) -> list[tuple[date, int, int]]:
    """(day, bytes_in, bytes_out) for traffic moved evenly over [t0, t1]."""
    pieces = split(t0, t1, tz)
    weights = [s for _, s in pieces]
    ins, outs = allocate(bytes_in, weights), allocate(bytes_out, weights)
    return [(d, i, o) for (d, _), i, o in zip(pieces, ins, outs, strict=True) if i or o]


def cycle_start(mode: str, subscriber_cycle_start: datetime, now: datetime,
                tz: ZoneInfo) -> datetime:
    """Where monthly usage counts from: the subscriber's renewal, or the calendar month."""
    if mode == "calendar":
        local = now.astimezone(tz)
        return datetime.combine(local.date().replace(day=1), time(0), tz)
    if mode != "renewal":
        raise PortalError("invalid_cycle",
                          f"billing.cycle must be renewal or calendar, not {mode!r}")
    return subscriber_cycle_start


def today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
