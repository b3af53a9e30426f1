"""What the Dashboard shows one subscriber: usage rings, plan card, FUP tier, wallet, expiry.

Plan, tiers and reseller settings change rarely and are read by every request:
they are cached per id for a few seconds (a plan change gives the subscriber a
new plan id, so it shows at once). Usage and the bonus are read fresh, each
with one indexed query. Every read here goes through portal.store.db.fetch_indexed (inline on
SQLite): an await on the ORM's single connection thread is what made the p99.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import DoesNotExist

from portal.speed import fup
from portal.store import db
from portal.store.models import Subscriber
from portal.usage import days, queries

CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class PlanInfo:
    id: int
    name: str
    down_kbps: int
    up_kbps: int
    quota_bytes: int
    price_cents: int
    period_days: int
    tiers: tuple[fup.Tier, ...]
    # The tiers as the dashboard's JSON shows them, built with the cache entry (every
    # CACHE_SECONDS), not at each request; only ever serialized, never changed.
    tiers_json: tuple[dict[str, object], ...] = ()


_plans: dict[int, tuple[float, PlanInfo]] = {}
_currency: dict[int, tuple[float, str]] = {}


async def plan_info(plan_id: int) -> PlanInfo:
    # Read inline (portal.store.db.fetch_indexed), not through the ORM: every request that finds
    # the entry expired refreshes it, and an ORM read would await, so each of them
    # would queue a read behind the others.
    hit = _plans.get(plan_id)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    rows = await db.fetch_indexed("SELECT id, name, down_kbps, up_kbps, quota_bytes, price_cents,"
                                " period_days FROM plans WHERE id = ?", [plan_id])
    if not rows:
        raise DoesNotExist(f"no plan {plan_id}")
    tiers = tuple(fup.Tier(t["period"], int(t["tier"]), int(t["threshold_bytes"]),
                           int(t["down_kbps"]), int(t["up_kbps"]))
                  for t in await db.fetch_indexed(
                      "SELECT period, tier, threshold_bytes, down_kbps, up_kbps FROM fup_tiers"
                      " WHERE plan_id = ? ORDER BY period, tier", [plan_id]))
    p = rows[0]
    info = PlanInfo(int(p["id"]), p["name"], int(p["down_kbps"]), int(p["up_kbps"]),
                    int(p["quota_bytes"]), int(p["price_cents"]), int(p["period_days"]), tiers,
                    tuple({"period": t.period, "tier": t.tier, "threshold_bytes": t.threshold_bytes,
                           "down_kbps": t.down_kbps, "up_kbps": t.up_kbps} for t in tiers))
    _plans[plan_id] = (time.monotonic() + CACHE_SECONDS, info)
    return info


async def currency_of(reseller_id: int) -> str:
    hit = _currency.get(reseller_id)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    rows = await db.fetch_indexed("SELECT currency FROM resellers WHERE id = ?", [reseller_id])
    if not rows:
        raise DoesNotExist(f"no reseller {reseller_id}")
    _currency[reseller_id] = (time.monotonic() + CACHE_SECONDS, rows[0]["currency"])
    return str(rows[0]["currency"])


async def bonus_bytes(subscriber_id: int, cycle_start: datetime) -> int:
    """portal.core.topups.cycle_bonus_bytes as one indexed read for the per-request path.

    Same rule (bytes bought since the cycle start); tests check both agree. The
    ORM version costs more CPU to build than the query costs to run.
    """
    utc = cycle_start.astimezone(UTC)
    # On SQLite, created_at is stored the way the sqlite3 adapter writes it.
    since: object = utc.isoformat(" ") if db.current_dialect() == "sqlite" else utc
    rows = await db.fetch_indexed("SELECT COALESCE(SUM(bytes), 0) AS b FROM topups"
                                " WHERE subscriber_id = ? AND created_at >= ?",
                                [subscriber_id, since])
    return int(rows[0]["b"])


def _ring(used: int, limit: int) -> dict[str, object]:
    return {"used_bytes": used, "limit_bytes": limit,
            "percent": min(100.0, round(100 * used / limit, 1)) if limit else None}


async def dashboard(sub: Subscriber, now: datetime, config: Any) -> dict[str, object]:
    tz = days.zone(config.timezone)
    plan = await plan_info(sub.plan_id)
    cycle = days.cycle_start(str(config.get("billing", "cycle", "renewal")), sub.cycle_start,
                             now, tz)
    today = days.today(now, tz)
    totals = await queries.totals(sub.username, today, cycle.astimezone(tz).date())
    bonus = await bonus_bytes(sub.id, cycle)
    state = fup.fup_state(plan.down_kbps, plan.up_kbps, plan.tiers, totals.today, totals.cycle,
                          bonus)
    daily_limit = min((t.threshold_bytes for t in plan.tiers if t.period == "daily"), default=0)
    monthly_limit = (plan.quota_bytes or min(
        (t.threshold_bytes for t in plan.tiers if t.period == "monthly"), default=0))
    remaining = (sub.expires_at - now).total_seconds()
    return {
        "today": {"day": today.isoformat(), "bytes_in": totals.today_in,
                  "bytes_out": totals.today_out,
                  **_ring(totals.today, daily_limit)},
        "cycle": {"start": cycle.isoformat(), "bytes_in": totals.cycle_in,
                  "bytes_out": totals.cycle_out, "bonus_bytes": bonus,
                  **_ring(totals.cycle, monthly_limit + bonus if monthly_limit else 0)},
        "plan": {"id": plan.id, "name": plan.name, "down_kbps": plan.down_kbps,
                 "up_kbps": plan.up_kbps, "quota_bytes": plan.quota_bytes,
                 "price_cents": plan.price_cents, "period_days": plan.period_days},
        "fup": state.as_json(),
        # the plan's thresholds, so the page can say "200 GB, then 10/5 Mbps" (added in 18)
        "fup_tiers": list(plan.tiers_json),
        "balance_cents": sub.balance_cents,
        "currency": await currency_of(sub.reseller_id),
        "expires_at": sub.expires_at.isoformat(),
        "expires_in_seconds": max(0, int(remaining)),
        "expired": remaining <= 0,
        "timezone": config.timezone,
    }
