"""The demo's NAS keeps talking: every few seconds an Interim-Update with new counters.

Without it the demo's "live" speed is the one rate written when the demo was
created, the same figure for as long as one watches. Here each open session gets
a rate that drifts (a slow wave per subscriber plus noise), written to radacct
exactly as FreeRADIUS would (portal.demo.simnas) and ingested, so the dashboard's
accounting live source shows traffic that moves. Run as a child of `ispedge demo`:
`python -m portal.demo.traffic` with ISPEDGE_DATABASE_URL set.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
from datetime import UTC, datetime
from functools import partial
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.demo import simnas
from portal.store import db, radacct
from portal.store.tx import transaction
from portal.usage import ingest
from portal.usage.ingest import Settings

INTERVAL_S = 3.0


def rate_bps(base_bps: float, phase: float, t: float, rng: random.Random) -> int:
    """A rate that drifts between ~20 % and 100 % of base, never twice the same."""
    wave = 0.6 + 0.4 * math.sin(t / 23.0 + phase)
    return int(base_bps * wave * rng.uniform(0.8, 1.2))


async def _open_sessions() -> list[simnas.SimSession]:
    rows = await db.fetch("SELECT username, acctsessionid, nasipaddress, nasportid,"
                          " framedipaddress, acctstarttime, acctinputoctets, acctoutputoctets"
                          " FROM radacct WHERE acctstoptime IS NULL", [])
    out = []
    for r in rows:
        s = simnas.SimSession(r["username"], r["acctsessionid"], str(r["nasipaddress"]),
                              str(r["framedipaddress"] or ""), str(r["nasportid"]))
        s.start = radacct.from_db_time(r["acctstarttime"])
        s.bytes_in, s.bytes_out = int(r["acctinputoctets"] or 0), int(r["acctoutputoctets"] or 0)
        out.append(s)
    return out


async def _interim(sessions: list[simnas.SimSession], at: datetime,
                   tx: BaseDBAsyncClient) -> None:
    await simnas.interim(sessions, at)


async def run(db_url: str, tz: ZoneInfo, interval_s: float = INTERVAL_S,
              rounds: int | None = None, keep_open: bool = False) -> None:
    """Write interims forever (or `rounds` times); keep_open: the database is already open."""
    rng = random.Random()
    if not keep_open:
        await db.open_db(db_url)
    try:
        settings = Settings(tz, interim_seconds=max(1, int(interval_s)))
        base: dict[str, tuple[float, float, float]] = {}
        done = 0
        while rounds is None or done < rounds:
            await asyncio.sleep(interval_s)
            now = datetime.now(UTC)
            sessions = await _open_sessions()
            t = now.timestamp()
            for s in sessions:
                down, up, phase = base.setdefault(s.username, (
                    rng.uniform(2, 60) * 1e6, rng.uniform(0.3, 8) * 1e6, rng.uniform(0, 6.3)))
                s.bytes_out += rate_bps(down, phase, t, rng) * int(interval_s) // 8
                s.bytes_in += rate_bps(up, phase + 1.0, t, rng) * int(interval_s) // 8
            if sessions:
                await transaction(partial(_interim, sessions, now))
                await ingest.ingest_once(settings, now)
            done += 1
    finally:
        if not keep_open:
            await db.close_db()


if __name__ == "__main__":
    asyncio.run(run(os.environ["ISPEDGE_DATABASE_URL"],
                    ZoneInfo(os.environ.get("ISPEDGE_DEMO_TIMEZONE", "UTC"))))
