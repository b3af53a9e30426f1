"""FUP tier: daily and monthly tiers, the slower applies, bonus raises monthly thresholds."""

from __future__ import annotations

import pytest

from portal.speed.fup import Tier, fup_state

GB = 10**9
PLAN = (50000, 20000)
TIERS = [
    Tier("daily", 1, 20 * GB, 5000, 2000),
    Tier("monthly", 1, 200 * GB, 10000, 5000),
    Tier("monthly", 2, 300 * GB, 4000, 2000),
    Tier("monthly", 3, 400 * GB, 1000, 1000),
]


def state(daily: int, monthly: int, bonus: int = 0, tiers: list[Tier] = TIERS):
    return fup_state(*PLAN, tiers, daily, monthly, bonus)


def test_no_usage_is_full_speed():
    s = state(0, 0)
    assert (s.tier, s.period, s.down_kbps, s.up_kbps) == (0, None, 50000, 20000)


def test_plan_without_tiers_never_slows():
    s = state(10**15, 10**15, tiers=[])
    assert (s.tier, s.down_kbps, s.up_kbps) == (0, 50000, 20000)


@pytest.mark.parametrize(("monthly", "tier", "down"), [
    (200 * GB - 1, 0, 50000), (200 * GB, 1, 10000), (299 * GB, 1, 10000), (300 * GB, 2, 4000),
    (399 * GB, 2, 4000), (400 * GB, 3, 1000), (10**15, 3, 1000),
])
def test_monthly_thresholds(monthly: int, tier: int, down: int):
    s = state(0, monthly)
    assert (s.tier, s.down_kbps) == (tier, down)
    assert s.monthly_tier == tier and s.daily_tier == 0


def test_daily_tier_alone():
    s = state(20 * GB, 20 * GB)
    assert (s.tier, s.period, s.down_kbps, s.up_kbps) == (1, "daily", 5000, 2000)


def test_slower_of_daily_and_monthly_applies_daily_slower():
    s = state(25 * GB, 250 * GB)  # daily tier 1 = 5000 < monthly tier 1 = 10000
    assert (s.tier, s.period, s.down_kbps) == (1, "daily", 5000)
    assert (s.daily_tier, s.monthly_tier) == (1, 1)


def test_slower_of_daily_and_monthly_applies_monthly_slower():
    s = state(25 * GB, 350 * GB)  # monthly tier 2 = 4000 < daily 5000
    assert (s.tier, s.period, s.down_kbps, s.up_kbps) == (2, "monthly", 4000, 2000)


def test_bonus_is_consumed_before_monthly_tiers():
    assert state(0, 249 * GB, bonus=50 * GB).tier == 0  # 249 < 200 + 50 -> not yet
    assert state(0, 250 * GB, bonus=50 * GB).tier == 1
    s = state(0, 360 * GB, bonus=50 * GB)  # 360 >= 300 + 50 -> tier 2
    assert (s.tier, s.down_kbps) == (2, 4000)


def test_bonus_does_not_raise_daily_thresholds():
    s = state(21 * GB, 21 * GB, bonus=100 * GB)
    assert (s.tier, s.period) == (1, "daily")


def test_negative_inputs_are_treated_as_zero():
    assert state(-5, -5, bonus=-10 * GB).tier == 0
    assert state(0, 200 * GB, bonus=-10 * GB).tier == 1


def test_tier_never_faster_than_plan():
    tiers = [Tier("monthly", 1, 1 * GB, 90000, 90000)]
    s = fup_state(*PLAN, tiers, 0, 2 * GB)
    assert (s.tier, s.down_kbps, s.up_kbps) == (1, 50000, 20000)


def test_tie_in_download_takes_slower_upload():
    tiers = [Tier("daily", 1, 1 * GB, 4000, 3000), Tier("monthly", 1, 1 * GB, 4000, 1000)]
    s = fup_state(*PLAN, tiers, 2 * GB, 2 * GB)
    assert (s.period, s.up_kbps) == ("monthly", 1000)


def test_highest_reached_tier_wins_even_if_unordered():
    tiers = list(reversed(TIERS))
    assert state(0, 500 * GB, tiers=tiers).tier == 3


def test_as_json_has_tier_and_speed():
    j = state(0, 300 * GB).as_json()
    assert j == {"tier": 2, "period": "monthly", "down_kbps": 4000, "up_kbps": 2000,
                 "daily_tier": 0, "monthly_tier": 2}
