"""Reading usage back: today and this cycle, the daily history, a day's sessions.

Each is one SQL statement keyed on the caller's username (the portal passes
only the signed-in subscriber's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from portal.store import db, radacct
from portal.usage import days
from portal.usage.ingest import day_param


@dataclass(frozen=True)
class Totals:
    today_in: int
    today_out: int
    cycle_in: int
    cycle_out: int

    @property
    def today(self) -> int:
        return self.today_in + self.today_out

    @property
    def cycle(self) -> int:
        return self.cycle_in + self.cycle_out


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def totals(username: str, today: date, cycle_first_day: date) -> Totals:
    first = min(today, cycle_first_day)
    rows = await db.fetch_indexed(
        "SELECT COALESCE(SUM(CASE WHEN day = ? THEN bytes_in ELSE 0 END), 0) AS ti,"
        " COALESCE(SUM(CASE WHEN day = ? THEN bytes_out ELSE 0 END), 0) AS tou,"
        " COALESCE(SUM(CASE WHEN day >= ? THEN bytes_in ELSE 0 END), 0) AS ci,"
        " COALESCE(SUM(CASE WHEN day >= ? THEN bytes_out ELSE 0 END), 0) AS co"
        " FROM usage_daily WHERE username = ? AND day >= ?",
        [day_param(today), day_param(today), day_param(cycle_first_day),
         day_param(cycle_first_day), username, day_param(first)])
    r = rows[0]
    return Totals(int(r["ti"]), int(r["tou"]), int(r["ci"]), int(r["co"]))


async def history(username: str, today: date, count: int = 30) -> list[dict[str, object]]:
    """The last `count` local days, oldest first, zero-filled."""
    first = today - timedelta(days=count - 1)
    rows = await db.fetch(
        "SELECT day, bytes_in, bytes_out FROM usage_daily WHERE username = ? AND day >= ?"
        " AND day <= ?", [username, day_param(first), day_param(today)])
    by_day = {_as_date(r["day"]): r for r in rows}
    out = []
    for i in range(count):
        d = first + timedelta(days=i)
        r = by_day.get(d)
        out.append({"day": d.isoformat(), "bytes_in": int(r["bytes_in"]) if r else 0,
                    "bytes_out": int(r["bytes_out"]) if r else 0})
    return out


async def sessions_on(username: str, day: date, tz: ZoneInfo, now: datetime
                      ) -> list[dict[str, object]]:
    """Sessions that overlap one local day (up to now), newest first, with their totals.

    Young and open sessions are in radacct; closed ones past `[retention]
    radacct_days` were moved to their record, acct_sessions (portal.store.retention),
    in the same transaction that deleted them from radacct: each session is in
    exactly one of the two.
    """
    start = days.day_start(day, tz)
    end = days.day_start(day + timedelta(days=1), tz)
    if start >= now:
        return []
    upto = min(end, now)
    rows = await db.fetch(
        "SELECT acctstarttime, acctstoptime, acctupdatetime, framedipaddress, nasipaddress,"
        " acctinputoctets, acctoutputoctets, acctterminatecause FROM radacct"
        " WHERE username = ? AND acctstarttime < ?"
        " AND (acctstoptime IS NULL OR acctstoptime >= ?) ORDER BY acctstarttime DESC LIMIT ?",
        [username, radacct.to_db_time(upto), radacct.to_db_time(start), SESSIONS_SHOWN])
    out = []
    for r in rows:
        began = radacct.from_db_time(r["acctstarttime"])
        stopped = radacct.from_db_time(r["acctstoptime"])
        if began is None:
            continue
        out.append(_session(began, stopped, now, r["framedipaddress"], r["nasipaddress"],
                            r["acctinputoctets"], r["acctoutputoctets"],
                            r["acctterminatecause"]))
    if len(out) < SESSIONS_SHOWN:
        # Only days older than the retention can have records; the index on
        # (username, started_at) makes this a short range read either way.
        for r in await db.fetch(
                "SELECT started_at, stopped_at, framed_ip, nas_ip, bytes_in, bytes_out,"
                " terminate_cause FROM acct_sessions WHERE username = ? AND started_at < ?"
                " AND stopped_at >= ? ORDER BY started_at DESC LIMIT ?",
                [username, int(upto.timestamp()), int(start.timestamp()),
                 SESSIONS_SHOWN - len(out)]):
            out.append(_session(datetime.fromtimestamp(int(r["started_at"]), UTC),
                                datetime.fromtimestamp(int(r["stopped_at"]), UTC), now,
                                r["framed_ip"], r["nas_ip"], r["bytes_in"], r["bytes_out"],
                                r["terminate_cause"]))
        out.sort(key=lambda s: str(s["start"]), reverse=True)
    return out


SESSIONS_SHOWN = 200  # per day


def _session(began: datetime, stopped: datetime | None, now: datetime, framed_ip: object,
             nas_ip: object, bytes_in: object, bytes_out: object, cause: object,
             ) -> dict[str, object]:
    return {
        "start": began.isoformat(), "stop": stopped.isoformat() if stopped else None,
        "duration_seconds": int(((stopped or now) - began).total_seconds()),
        "framed_ip": str(framed_ip or ""), "nas_ip": str(nas_ip or ""),
        "bytes_in": int(str(bytes_in or 0)), "bytes_out": int(str(bytes_out or 0)),
        "terminate_cause": str(cause or ""),
    }
