"""Data top-ups: whole GB bought from the wallet for the current billing cycle.

Bought bytes raise this cycle's allowance and are used before the monthly FUP
tiers apply; they expire at the cycle reset. The bonus of a cycle is simply the
sum of what was bought in it, so a second purchase adds to it and can never
re-credit bonus already used (usage is counted separately, never reset here).
"""

from __future__ import annotations

from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Sum

from portal.models import Topup

GB = 10**9  # data is sold in decimal GB, like the quotas


async def cycle_bonus_bytes(
    subscriber_id: int, cycle_start: datetime, using_db: BaseDBAsyncClient | None = None
) -> int:
    """Bytes of data bought since cycle_start: the bonus that raises this cycle's allowance."""
    query = Topup.filter(subscriber_id=subscriber_id, created_at__gte=cycle_start)
    if using_db is not None:
        query = query.using_db(using_db)
    rows = await query.annotate(total=Sum("bytes")).values("total")
    total = rows[0]["total"] if rows else None
    return int(total or 0)
