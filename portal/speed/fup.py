"""Fair-use (FUP) tiers: which speed a subscriber gets after heavy use.

A plan has up to three daily and three monthly tiers (fup_tiers): past a tier's
threshold of usage (download + upload) in that period the plan drops to the
tier's speed. The daily and the monthly tier are found separately and the slower
of the two applies. Data bought this cycle (top-up bonus) is used before the
monthly tiers apply: it raises every monthly threshold by the bonus. A tier
never makes a plan faster than its nominal speed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    period: str  # "daily" | "monthly"
    tier: int  # 1, 2, 3
    threshold_bytes: int
    down_kbps: int
    up_kbps: int


@dataclass(frozen=True)
class FupState:
    tier: int  # 0 = none (full speed), else 1..3
    period: str | None  # which period's tier applies
    down_kbps: int  # effective speed
    up_kbps: int
    daily_tier: int
    monthly_tier: int

    def as_json(self) -> dict[str, object]:
        return {"tier": self.tier, "period": self.period, "down_kbps": self.down_kbps,
                "up_kbps": self.up_kbps, "daily_tier": self.daily_tier,
                "monthly_tier": self.monthly_tier}


def _reached(tiers: Iterable[Tier], used: int, raise_by: int) -> Tier | None:
    """The highest tier whose threshold (+ raise_by) the usage has reached."""
    best = None
    for t in tiers:
        if used >= t.threshold_bytes + raise_by and (best is None or t.tier > best.tier):
            best = t
    return best


def fup_state(plan_down_kbps: int, plan_up_kbps: int, tiers: Iterable[Tier], daily_bytes: int,
              monthly_bytes: int, bonus_bytes: int = 0) -> FupState:
    tiers = list(tiers)
    daily = _reached((t for t in tiers if t.period == "daily"), max(0, daily_bytes), 0)
    monthly = _reached((t for t in tiers if t.period == "monthly"), max(0, monthly_bytes),
                       max(0, bonus_bytes))
    candidates = [t for t in (daily, monthly) if t is not None]
    if not candidates:
        return FupState(0, None, plan_down_kbps, plan_up_kbps, 0, 0)
    # Slower download wins; on a tie the slower upload, then the higher tier.
    applied = min(candidates, key=lambda t: (t.down_kbps, t.up_kbps, -t.tier))
    return FupState(applied.tier, applied.period, min(applied.down_kbps, plan_down_kbps),
                    min(applied.up_kbps, plan_up_kbps), daily.tier if daily else 0,
                    monthly.tier if monthly else 0)
