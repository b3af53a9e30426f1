"""Live download/upload rate of one subscriber, from a pluggable source.

`[live] source` picks the source: "accounting" (default; derived from the two
latest interim updates of the open session) or "shaper" (rates the enforcer
samples from tc class counters and publishes into live_rates). Another source
registers itself with `register(name, factory)`; a source is any object with
`async sample(username, now) -> LiveSample`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.errors import PortalError
from portal.store import db, radacct
from portal.store.tx import DAEMON_BUDGET_S, transaction


@dataclass(frozen=True)
class LiveSample:
    online: bool
    down_bps: int  # bits per second towards the subscriber
    up_bps: int
    sampled_at: datetime | None = None  # when the rate was measured
    framed_ip: str = ""
    session_start: datetime | None = None

    def as_json(self, source: str) -> dict[str, object]:
        return {"online": self.online, "down_bps": self.down_bps, "up_bps": self.up_bps,
                "sampled_at": self.sampled_at.isoformat() if self.sampled_at else None,
                "framed_ip": self.framed_ip,
                "session_start": self.session_start.isoformat() if self.session_start else None,
                "source": source}


OFFLINE = LiveSample(False, 0, 0)


class LiveTraffic(Protocol):
    name: str

    async def sample(self, username: str, now: datetime) -> LiveSample: ...


def rate_bps(bytes_now: int, bytes_then: int, seconds: float) -> int:
    """Bits per second between two counter readings; a reset reads as 0, never negative."""
    if seconds <= 0 or bytes_now < bytes_then:
        return 0
    return int((bytes_now - bytes_then) * 8 / seconds)


class AccountingLive:
    """Rate over the interval between the open session's two latest interim updates.

    radacct holds only the latest counters; the one before comes from what the
    usage ingest remembers (usage_sessions), so this works whether or not the
    ingest has run since the latest update.
    """

    name = "accounting"
    _SQL = (
        "SELECT r.acctstarttime, r.acctupdatetime, r.acctinputoctets, r.acctoutputoctets,"
        " r.framedipaddress, s.bytes_in, s.bytes_out, s.seen_at, s.prev_bytes_in,"
        " s.prev_bytes_out, s.prev_seen_at FROM radacct r"
        " LEFT JOIN usage_sessions s ON s.acctuniqueid = r.acctuniqueid"
        " WHERE r.username = ? AND r.acctstoptime IS NULL"
        " ORDER BY r.acctstarttime DESC LIMIT 1"
    )

    def __init__(self, stale_after_seconds: int = 900) -> None:
        # No interim for this long: the NAS stopped reporting; the rate is unknown (0).
        self.stale_after_seconds = stale_after_seconds

    async def sample(self, username: str, now: datetime) -> LiveSample:
        rows = await db.fetch_indexed(self._SQL, [username])
        if not rows:
            return OFFLINE
        r = rows[0]
        start = radacct.from_db_time(r["acctstarttime"]) or now
        update = radacct.from_db_time(r["acctupdatetime"]) or start
        t = int(update.timestamp())
        cur_in, cur_out = int(r["acctinputoctets"] or 0), int(r["acctoutputoctets"] or 0)
        base: tuple[int, int, int] | None = None
        if r["seen_at"] is not None and int(r["seen_at"]) < t:
            base = (int(r["seen_at"]), int(r["bytes_in"]), int(r["bytes_out"]))
        elif r["prev_seen_at"] is not None and int(r["prev_seen_at"]) < t:
            base = (int(r["prev_seen_at"]), int(r["prev_bytes_in"]), int(r["prev_bytes_out"]))
        elif r["seen_at"] is None and t > int(start.timestamp()):
            base = (int(start.timestamp()), 0, 0)
        down = up = 0
        if base is not None and (now - update).total_seconds() <= self.stale_after_seconds:
            seconds = t - base[0]
            down, up = rate_bps(cur_out, base[2], seconds), rate_bps(cur_in, base[1], seconds)
        return LiveSample(True, down, up, update, str(r["framedipaddress"] or ""), start)


class ShaperLive:
    """Rates the enforcer publishes into live_rates(username, down_bps, up_bps, sampled_at)."""

    name = "shaper"

    def __init__(self, max_age_seconds: int = 15) -> None:
        self.max_age_seconds = max_age_seconds

    async def sample(self, username: str, now: datetime) -> LiveSample:
        rows = await db.fetch_indexed(
            "SELECT down_bps, up_bps, sampled_at FROM live_rates WHERE username = ?", [username])
        if not rows:
            return OFFLINE
        r = rows[0]
        sampled = _aware(r["sampled_at"])
        if sampled is None or (now - sampled).total_seconds() > self.max_age_seconds:
            return LiveSample(False, 0, 0, sampled)
        return LiveSample(True, int(r["down_bps"]), int(r["up_bps"]), sampled)


def _aware(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def publish(rates: dict[str, tuple[int, int]], now: datetime) -> None:
    """For the enforcer: replace the published rate of each username (one statement batch)."""
    if not rates:
        return
    sampled: object = now if db.current_dialect() == "postgres" else now.isoformat()
    sql = ("INSERT INTO live_rates (username, down_bps, up_bps, sampled_at) VALUES (?,?,?,?)"
           " ON CONFLICT (username) DO UPDATE SET down_bps = excluded.down_bps,"
           " up_bps = excluded.up_bps, sampled_at = excluded.sampled_at")
    rows: list[list[object]] = [[u, max(0, d), max(0, up), sampled]
                                for u, (d, up) in rates.items()]

    async def write(tx: BaseDBAsyncClient) -> None:
        await db.execute_many(sql, rows)

    await transaction(write, budget_s=DAEMON_BUDGET_S)


Factory = Callable[[Any], LiveTraffic]
SOURCES: dict[str, Factory] = {
    "accounting": lambda config: AccountingLive(
        int(config.get("live", "stale_after_seconds", 900))),
    "shaper": lambda config: ShaperLive(int(config.get("live", "max_age_seconds", 15))),
}


def register(name: str, factory: Factory) -> None:
    SOURCES[name] = factory


def from_config(config: Any) -> LiveTraffic:
    name = str(config.get("live", "source", "accounting"))
    if name not in SOURCES:
        known = ", ".join(sorted(SOURCES))
        raise PortalError("invalid_live_source",
                          f"[live] source must be one of {known}, not {name!r}")
    return SOURCES[name](config)
