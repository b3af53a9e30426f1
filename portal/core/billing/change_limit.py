"""How many plan changes a subscriber may make per local day.

Plain functions over plain values: the day is the operator's local day
(general.timezone), the count is of changes committed since its start, and a
refusal says when the next day begins (429 with Retry-After).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from portal.errors import TooManyRequests
from portal.usage.days import day_start


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, next start) of the local day holding `now` (DST days are 23 or 25 h)."""
    today = now.astimezone(tz).date()
    return day_start(today, tz), day_start(today + timedelta(days=1), tz)


def seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


class PlanChangeLimit(TooManyRequests):
    """The day's plan changes are used up."""

    def __init__(self, per_day: int, retry_after: int) -> None:
        changes = "plan change" if per_day == 1 else "plan changes"
        super().__init__("plan_change_limit",
                         f"you have made today's {per_day} {changes}: "
                         "please try again tomorrow",
                         retry_after=retry_after, limit=per_day)


def check(changes_today: int, per_day: int, now: datetime, tz: ZoneInfo) -> None:
    """Raise PlanChangeLimit when one more change would exceed `per_day` (0 = no limit)."""
    if per_day <= 0 or changes_today < per_day:
        return
    _, tomorrow = day_bounds(now, tz)
    raise PlanChangeLimit(per_day, seconds_until(tomorrow, now))
