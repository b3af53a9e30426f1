"""Accounting history for portal tests, written the way FreeRADIUS writes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from portal.demo import simnas
from portal.store import db
from portal.usage import ingest
from portal.usage.ingest import Settings
from tests.support import seed

SETTINGS = Settings(ZoneInfo("UTC"), interim_seconds=3600)


@dataclass
class Line:
    username: str
    password: str
    session: simnas.SimSession  # the open session
    last_update: datetime


async def history(username: str, sid: str, ip: str, now: datetime, mbytes_per_hour: int,
                  hours: int = 30) -> Line:
    """A closed session the day before, then an open one with hourly interims up to now."""
    old = simnas.SimSession(username, f"{sid}-old", framed_ip=ip)
    begin = now - timedelta(hours=hours)
    await simnas.start([old], begin - timedelta(hours=3))
    old.bytes_out, old.bytes_in = 3 * mbytes_per_hour * 10**6, mbytes_per_hour * 10**5
    await simnas.stop([old], begin - timedelta(minutes=1))
    s = simnas.SimSession(username, sid, framed_ip=ip)
    await simnas.start([s], begin)
    t = begin
    while t < now - timedelta(minutes=2):
        t += timedelta(hours=1)
        t = min(t, now - timedelta(minutes=2))
        s.bytes_out += mbytes_per_hour * 10**6
        s.bytes_in += mbytes_per_hour * 10**5
        await simnas.interim([s], t)
        await ingest.ingest_once(SETTINGS, t)
    # The last interim a minute later: the live rate is 8 Mbit/s down, 0.8 up.
    t += timedelta(minutes=1)
    s.bytes_out += 60 * 10**6
    s.bytes_in += 6 * 10**6
    await simnas.interim([s], t)
    return Line(username, "", s, t)


async def two_subscribers(now: datetime | None = None) -> tuple[Line, Line]:
    now = now or datetime.now(UTC)
    await seed.reseller_with_plans()
    await seed.subscriber("alice@x.net", "alice-pw", balance_cents=1234)
    await seed.subscriber("bob@x.net", "bob-pw", balance_cents=99900, plan="Fast")
    alice = await history("alice@x.net", "a1", "100.64.0.2", now, 100)
    bob = await history("bob@x.net", "b1", "100.64.0.3", now, 700)
    alice.password, bob.password = "alice-pw", "bob-pw"
    return alice, bob


async def daily_bytes(username: str) -> dict[str, tuple[int, int]]:
    rows = await db.fetch("SELECT day, bytes_in, bytes_out FROM usage_daily WHERE username = ?",
                          [username])
    return {str(r["day"])[:10]: (int(r["bytes_in"]), int(r["bytes_out"])) for r in rows}
