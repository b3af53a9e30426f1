"""Brute-force lockout per source IP: 5 failures -> 15 min, 10 -> 1 h, 20 -> 24 h.

The rule is a plain function over the failure times; the state (login_failures)
lives in the database so it holds across restarts and portal processes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.store.models import LoginFailure

# (failures within the lookback, lookback, block duration), strongest first.
TIERS: tuple[tuple[int, timedelta, timedelta], ...] = (
    (20, timedelta(hours=24), timedelta(hours=24)),
    (10, timedelta(hours=24), timedelta(hours=1)),
    (5, timedelta(minutes=15), timedelta(minutes=15)),
)
MEMORY = timedelta(hours=24)


def blocked_until(failures: list[datetime], now: datetime,
                  tiers: tuple[tuple[int, timedelta, timedelta], ...] = TIERS) -> datetime | None:
    """When the IP may try again, or None if it is not blocked now.

    A tier applies once `count` failures fall within its lookback; the block runs
    from the failure that reached the count. Repeated failure after a block ends
    reaches the next tier, so the block grows.
    """
    recent = sorted(t for t in failures if now - t <= MEMORY)
    for count, lookback, duration in tiers:
        window = [t for t in recent if now - t <= lookback]
        if len(window) >= count:
            until = window[-1] + duration
            if until > now:
                return until
    return None


async def check(ip: str, now: datetime, tx: BaseDBAsyncClient | None = None
                ) -> datetime | None:
    query = LoginFailure.filter(ip=ip, created_at__gte=now - MEMORY)
    if tx is not None:
        query = query.using_db(tx)
    rows = cast(list[datetime], await query.values_list("created_at", flat=True))
    return blocked_until(list(rows), now)


async def record_failure(tx: BaseDBAsyncClient, ip: str, username: str,
                         now: datetime) -> datetime | None:
    """In the caller's transaction: the failure, then whether the address is now blocked."""
    await LoginFailure.create(ip=ip, username=username[:64], created_at=now, using_db=tx)
    # Old rows are useless to every tier; trim them as we go.
    await LoginFailure.filter(created_at__lt=now - MEMORY).using_db(tx).delete()
    return await check(ip, now, tx)
