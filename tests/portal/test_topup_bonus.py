"""cycle_bonus_bytes: what the FUP sees as this cycle's extra allowance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.core.topups import GB, cycle_bonus_bytes
from portal.store.models import Topup
from tests.support import seed


async def _bought(sub_id: int, gb: int, at: datetime) -> None:
    await Topup.create(subscriber_id=sub_id, gb=gb, bytes=gb * GB, price_per_gb_cents=150,
                       amount_cents=gb * 150, cycle_start=at, created_at=at)


async def test_bonus_is_the_sum_bought_in_the_current_cycle_only(db: str):
    await seed.reseller_with_plans()
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    sub = await seed.subscriber("a@x", now=now - timedelta(days=10))
    other = await seed.subscriber("b@x", now=now - timedelta(days=10))
    cycle_start = now - timedelta(days=10)
    assert await cycle_bonus_bytes(sub.id, cycle_start) == 0
    await _bought(sub.id, 7, cycle_start - timedelta(seconds=1))  # previous cycle: expired
    await _bought(sub.id, 10, cycle_start)  # at the very start: counts
    await _bought(sub.id, 5, now)
    await _bought(other.id, 50, now)
    assert await cycle_bonus_bytes(sub.id, cycle_start) == 15 * GB
    # After the reset, the old cycle's bonus is gone.
    assert await cycle_bonus_bytes(sub.id, now + timedelta(days=20)) == 0


async def test_bonus_bound_in_another_time_zone_counts_the_same_instants(db: str):
    from zoneinfo import ZoneInfo

    await seed.reseller_with_plans()
    beirut = ZoneInfo("Asia/Beirut")
    cycle_start = datetime(2026, 11, 1, 0, 0, tzinfo=beirut)  # 2026-10-31 22:00 UTC
    sub = await seed.subscriber("tz@x", now=cycle_start)
    await _bought(sub.id, 9, datetime(2026, 10, 31, 21, 59, tzinfo=UTC))  # before: expired
    await _bought(sub.id, 5, datetime(2026, 10, 31, 22, 30, tzinfo=UTC))  # after the start
    await _bought(sub.id, 9, datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    assert await cycle_bonus_bytes(sub.id, cycle_start) == 14 * GB
