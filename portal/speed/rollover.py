"""Starting a prepaid cycle at the old expiry (the rule: docs/BILLING.md "Renewal").

The enforcer calls `roll_over_due` before deciding speeds, so a subscriber whose next
cycle is paid is never suspended at the expiry; a renewal calls `roll_over` first too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.speed import effective
from portal.store import db
from portal.store.models import Subscriber
from portal.store.tx import transaction


def roll(cycle_start: datetime, expires_at: datetime,
         pending: list[tuple[datetime, datetime]], now: datetime
         ) -> tuple[datetime, datetime, int]:
    """Start the prepaid cycles that are due, in order: each begins at its own start (the
    old expiry), not when the enforcer got to it. Returns (cycle_start, expires_at, how
    many of `pending` were started)."""
    used = 0
    for starts_at, ends_at in pending:
        if expires_at > now:
            break
        cycle_start, expires_at = starts_at, ends_at
        used += 1
    return cycle_start, expires_at, used


async def pending_cycles(sub_id: int) -> list[dict[str, Any]]:
    return await db.fetch("SELECT id, starts_at, expires_at FROM prepaid_cycles"
                          " WHERE subscriber_id = ? AND started_at IS NULL"
                          " ORDER BY starts_at, id", [sub_id])


async def roll_over(tx: BaseDBAsyncClient, sub: Subscriber, now: datetime,
                    origin: str | None = None) -> bool:
    """In the caller's transaction (subscriber locked): start due prepaid cycles. The
    speed goes through the one speed writer, so radreply never says 'suspended'."""
    rows = await pending_cycles(sub.id)
    spans = [(db.from_db_time(r["starts_at"]), db.from_db_time(r["expires_at"]))
             for r in rows]
    cycle_start, expires_at, used = roll(sub.cycle_start, sub.expires_at, spans, now)
    if not used:
        return False
    sub.cycle_start, sub.expires_at = cycle_start, expires_at
    await db.execute("UPDATE subscribers SET cycle_start = ?, expires_at = ? WHERE id = ?",
                     [db.db_time(cycle_start), db.db_time(expires_at), sub.id])
    await db.execute_many("UPDATE prepaid_cycles SET started_at = ? WHERE id = ?",
                          [[db.db_time(now), r["id"]] for r in rows[:used]])
    await effective.write(tx, sub.username, now, "status", origin=origin, status=sub.status,
                          renewed=True, expires_at=expires_at.isoformat())
    return True


async def roll_over_due(now: datetime, origin: str | None = None) -> list[str]:
    """The enforcer's step: every subscriber whose cycle ended with a prepaid one waiting."""
    rows = await db.fetch(
        "SELECT DISTINCT s.username FROM prepaid_cycles p JOIN subscribers s"
        " ON s.id = p.subscriber_id WHERE p.started_at IS NULL AND p.starts_at <= ?"
        " AND s.expires_at <= ?", [db.db_time(now), db.db_time(now)])
    done = []
    for row in rows:
        username = str(row["username"])

        async def start(tx: BaseDBAsyncClient, username: str = username) -> bool:
            sub = await db.fetch_model(Subscriber, "SELECT * FROM subscribers WHERE username = ?"
                                       + (" FOR UPDATE" if db.current_dialect() == "postgres"
                                          else ""), [username])
            return sub is not None and await roll_over(tx, sub, now, origin)

        if await transaction(start, lock=username):
            done.append(username)
    return done
