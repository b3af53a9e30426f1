"""Parental controls: which categories a home blocks, and what was blocked.

The settings live in `parental_settings`; dns_filter reads them through the
`dns_policy` view and follows `change_journal` kind "parental", so a change
takes effect within a second of its commit. What the resolver blocked comes
back through `dns_block_daily` and `dns_block_recent` (migration 0006).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.errors import PortalError
from portal.store import db, journal
from portal.store.models import ParentalSettings, Subscriber
from portal.store.tx import transaction

BUILTIN = ("adult", "gambling", "social-media", "doh")
LABELS = {
    "adult": "Adult content",
    "gambling": "Gambling",
    "social-media": "Social media",
    "doh": "Encrypted DNS bypass (DoH)",
}
WINDOW_DAYS = 7
RECENT_LIMIT = 50


@dataclass(frozen=True)
class Choice:
    enabled: bool
    categories: tuple[str, ...]  # sorted, each one of the available categories


def available_categories(builtin: Iterable[str], extra: Iterable[str],
                         sources: Iterable[str]) -> list[str]:
    """The built-in categories first (in their usual order), then the operator's, sorted."""
    base = [c for c in BUILTIN if c in set(builtin)] + sorted(set(builtin) - set(BUILTIN))
    added = sorted({c.strip() for c in [*extra, *sources] if c.strip()} - set(base))
    return base + added


def categories_from_config(config: Any) -> list[str]:
    """What the blocklists know: the shipped lists plus [blocklists] extra_categories/sources."""
    from blocklists.update import builtin_categories

    section = config.section("blocklists") if config is not None else {}
    extra = section.get("extra_categories") or []
    if isinstance(extra, str):  # from the environment: "vpn,malware"
        extra = extra.split(",")
    return available_categories(builtin_categories(), extra,
                                list((section.get("sources") or {}).keys()))


def label(category: str) -> str:
    return LABELS.get(category, category.replace("-", " ").replace("_", " ").capitalize())


def parse_stored(text: str, available: Iterable[str]) -> tuple[str, ...]:
    """Stored CSV → known categories (one the operator removed is simply not shown)."""
    known = set(available)
    return tuple(sorted({c.strip() for c in text.split(",") if c.strip() in known}))


def apply_change(current: Choice, body: Mapping[str, Any], available: Iterable[str]) -> Choice:
    """A request body applied to the current choice.

    `enabled` (bool) is the master switch; `categories` maps a category to
    on/off. Switching a category on while the master switch is off switches
    the master on too (that is what the parent asked for); switching the
    master off keeps the chosen categories for next time.
    """
    known = set(available)
    if not body or set(body) - {"enabled", "categories"}:
        raise PortalError("invalid_parental_change",
                          "send enabled (true/false) and/or categories {name: true/false}", 400)
    enabled = current.enabled
    chosen = set(current.categories)
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise PortalError("invalid_parental_change", "enabled must be true or false", 400)
        enabled = body["enabled"]
    toggles = body.get("categories", {})
    if not isinstance(toggles, dict):
        raise PortalError("invalid_parental_change",
                          "categories must map a category to true or false", 400)
    for name, on in toggles.items():
        if name not in known:
            raise PortalError("unknown_category", f"there is no category {name!r}", 400)
        if not isinstance(on, bool):
            raise PortalError("invalid_parental_change",
                              f"category {name!r} must be true or false", 400)
        if on:
            chosen.add(name)
            if "enabled" not in body:
                enabled = True
        else:
            chosen.discard(name)
    return Choice(enabled, tuple(sorted(chosen)))


def window_start(today: date, days: int = WINDOW_DAYS) -> date:
    """First day of the last `days` days, today included."""
    return today - timedelta(days=days - 1)


def counts_by_category(rows: Iterable[Mapping[str, Any]], categories: Iterable[str]
                       ) -> dict[str, int]:
    """Daily rows → total per category; every listed category present, others kept too."""
    totals = {c: 0 for c in categories}
    for row in rows:
        totals[str(row["category"])] = totals.get(str(row["category"]), 0) + int(row["count"])
    return totals


def recent_entries(rows: Iterable[Mapping[str, Any]], limit: int = RECENT_LIMIT
                   ) -> list[dict[str, Any]]:
    """Newest first, one entry per domain (its latest block)."""
    seen: set[str] = set()
    out = []
    for row in sorted(rows, key=lambda r: float(r["blocked_at"]), reverse=True):
        if row["domain"] in seen:
            continue
        seen.add(str(row["domain"]))
        out.append({"domain": row["domain"], "category": row["category"],
                    "blocked_at": datetime.fromtimestamp(float(row["blocked_at"]), UTC)
                    .isoformat()})
        if len(out) >= limit:
            break
    return out


# --- database ---------------------------------------------------------------------------

async def current_choice(sub: Subscriber, available: Iterable[str]) -> Choice:
    row = await ParentalSettings.get_or_none(subscriber_id=sub.id)
    if row is None:
        return Choice(False, ())
    return Choice(row.enabled, parse_stored(row.categories, available))


async def change(sub: Subscriber, body: Mapping[str, Any], available: list[str],
                 ip: str = "") -> Choice:
    """Settings, journal row and audit entry in one transaction."""

    async def write(tx: BaseDBAsyncClient) -> Choice:
        row = await ParentalSettings.filter(subscriber_id=sub.id).using_db(tx) \
            .select_for_update().first()
        stored = Choice(row.enabled, parse_stored(row.categories, available)) if row \
            else Choice(False, ())
        new = apply_change(stored, body, available)
        # Categories the operator no longer lists stay stored: they come back if re-added.
        kept = set((row.categories if row else "").split(",")) - set(available) - {""}
        text = ",".join(sorted(set(new.categories) | kept))
        if row is None:
            await ParentalSettings.create(subscriber_id=sub.id, enabled=new.enabled,
                                          categories=text, using_db=tx)
        else:
            row.enabled, row.categories = new.enabled, text
            await row.save(using_db=tx, update_fields=["enabled", "categories", "updated_at"])
        await journal.record(tx, sub.username, "parental", enabled=new.enabled,
                             categories=list(new.categories))
        await journal.audit(tx, sub.username, "parental.change", sub.username, ip=ip,
                            before={"enabled": stored.enabled,
                                    "categories": list(stored.categories)},
                            after={"enabled": new.enabled, "categories": list(new.categories)})
        return new

    return await transaction(write, lock=sub.username)


async def blocked_summary(username: str, now: datetime, categories: list[str]
                          ) -> dict[str, Any]:
    start = window_start(now.astimezone(UTC).date())
    daily = await db.fetch("SELECT category, count FROM dns_block_daily"
                           " WHERE username = ? AND day >= ?", [username, start.isoformat()])
    since = (now - timedelta(days=WINDOW_DAYS)).timestamp()
    recent = await db.fetch(
        "SELECT domain, category, blocked_at FROM dns_block_recent"
        " WHERE username = ? AND blocked_at >= ? ORDER BY blocked_at DESC LIMIT ?",
        [username, since, RECENT_LIMIT * 4])
    counts = counts_by_category(daily, categories)
    return {"since_day": start.isoformat(), "counts": counts,
            "total": sum(counts.values()), "recent": recent_entries(recent)}


async def view(sub: Subscriber, available: list[str], now: datetime) -> dict[str, Any]:
    choice = await current_choice(sub, available)
    blocked = await blocked_summary(sub.username, now, available)
    return {
        "enabled": choice.enabled,
        "categories": [{"name": c, "label": label(c), "on": c in choice.categories,
                        "blocked_7d": blocked["counts"].get(c, 0)} for c in available],
        "blocked_total_7d": blocked["total"],
        "since_day": blocked["since_day"],
        "recent": blocked["recent"],
    }
