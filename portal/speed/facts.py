"""Reading what the rules need, for many subscribers at once (a few queries per pass).

Open sessions come from radacct (the newest open row per username), plans and
FUP tiers from the portal tables, usage from usage_daily, bought data from
topups, NAS details from the nas table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from coa import Nas
from portal.speed.fup import Tier
from portal.speed.rules import Facts, Recorded
from portal.store import db
from portal.store.models import EnforcementState, FupTier, RadReply, Subscriber, Topup
from portal.usage import days
from portal.usage.ingest import day_param


@dataclass(frozen=True)
class Session:
    username: str
    acct_session_id: str
    framed_ip: str
    nas_ip: str


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join('?' * len(values))})"


def _chunks(values: Iterable[str], size: int = 900) -> list[list[str]]:
    items = sorted(values)
    return [items[i:i + size] for i in range(0, len(items), size)] or []


async def open_sessions(usernames: set[str] | None) -> dict[str, Session]:
    """The newest open radacct session of each subscriber (all when usernames is None)."""
    base = ("SELECT radacctid, username, acctsessionid, framedipaddress, nasipaddress"
            " FROM radacct WHERE acctstoptime IS NULL")
    rows: list[dict[str, object]] = []
    if usernames is None:
        rows = await db.fetch(base)
    else:
        for chunk in _chunks(usernames):
            rows += await db.fetch(f"{base} AND {_in('username', chunk)}", list(chunk))
    out: dict[str, Session] = {}
    for r in sorted(rows, key=lambda r: int(str(r["radacctid"]))):
        framed = r["framedipaddress"]
        out[str(r["username"])] = Session(str(r["username"]), str(r["acctsessionid"]),
                                          str(framed) if framed else "", str(r["nasipaddress"]))
    return out


async def nas_table() -> dict[str, Nas]:
    out: dict[str, Nas] = {}
    for row in await db.fetch("SELECT nasname, secret, coa_port, profile FROM nas"):
        try:
            out[str(row["nasname"])] = Nas(str(row["nasname"]), str(row["secret"]),
                                           int(str(row["coa_port"] or 3799)),
                                           str(row["profile"] or "mikrotik"))
        except ValueError:
            continue  # a nasname that is a hostname or a range: not a CoA target
    return out


async def subscriber_facts(usernames: list[str], now: datetime, tz: ZoneInfo,
                           cycle_mode: str) -> dict[str, Facts]:
    subs: list[dict[str, object]] = []
    for chunk in _chunks(usernames):
        subs += await Subscriber.filter(username__in=chunk).values(
            "id", "username", "status", "expires_at", "cycle_start", "plan_id",
            "plan__down_kbps", "plan__up_kbps")
    if not subs:
        return {}
    plan_ids = sorted({int(str(s["plan_id"])) for s in subs})
    tiers: dict[int, list[Tier]] = defaultdict(list)
    for t in await FupTier.filter(plan_id__in=plan_ids).values(
            "plan_id", "period", "tier", "threshold_bytes", "down_kbps", "up_kbps"):
        tiers[int(t["plan_id"])].append(Tier(t["period"], t["tier"], t["threshold_bytes"],
                                             t["down_kbps"], t["up_kbps"]))
    today = days.today(now, tz)
    starts = {str(s["username"]): days.cycle_start(cycle_mode, _aware(s["cycle_start"]), now, tz)
              for s in subs}
    first_days = {u: days.as_utc(c).astimezone(tz).date() for u, c in starts.items()}
    daily, monthly = await _usage(list(starts), today, first_days)
    bonus = await _bonus({int(str(s["id"])): starts[str(s["username"])] for s in subs})
    out: dict[str, Facts] = {}
    for s in subs:
        u, sid = str(s["username"]), int(str(s["id"]))
        out[u] = Facts(u, str(s["status"]), _aware(s["expires_at"]), int(str(s["plan__down_kbps"])),
                       int(str(s["plan__up_kbps"])), tuple(tiers[int(str(s["plan_id"]))]),
                       daily.get(u, 0), monthly.get(u, 0), bonus.get(sid, 0))
    return out


async def one_subscriber(username: str, now: datetime, tz: ZoneInfo, cycle_mode: str, *,
                         known_bonus_bytes: int | None = None) -> Facts | None:
    """subscriber_facts for one subscriber (what `effective.write` asks on every purchase
    and plan change), in plain SQL: the same rows, sums and cycle start, a few indexed
    statements instead of the ORM's query building for lists. known_bonus_bytes saves
    the top-up sum when the caller has just computed it. None: no such subscriber."""
    rows = await db.fetch(
        "SELECT s.id, s.status, s.expires_at, s.cycle_start, s.plan_id,"
        " p.down_kbps, p.up_kbps FROM subscribers s LEFT OUTER JOIN plans p"
        " ON p.id = s.plan_id WHERE s.username = ?", [username])
    if not rows:
        return None
    s = rows[0]
    tiers = tuple(Tier(str(t["period"]), int(t["tier"]), int(t["threshold_bytes"]),
                       int(t["down_kbps"]), int(t["up_kbps"]))
                  for t in await db.fetch(
                      "SELECT period, tier, threshold_bytes, down_kbps, up_kbps"
                      " FROM fup_tiers WHERE plan_id = ?", [s["plan_id"]]))
    start = days.cycle_start(cycle_mode, db.from_db_time(s["cycle_start"]), now, tz)
    today = days.today(now, tz)
    daily, monthly = await _usage([username], today,
                                  {username: days.as_utc(start).astimezone(tz).date()})
    bonus = (known_bonus_bytes if known_bonus_bytes is not None
             else await bonus_bytes(int(s["id"]), start))
    return Facts(username, str(s["status"]), db.from_db_time(s["expires_at"]),
                 int(s["down_kbps"]), int(s["up_kbps"]), tiers, daily.get(username, 0),
                 monthly.get(username, 0), bonus)


async def bonus_bytes(subscriber_id: int, cycle_start: datetime) -> int:
    """Bytes of data bought since cycle_start (portal.core.topups.cycle_bonus_bytes)."""
    # SQLite compares the stored ISO text: the bound must be in UTC like the rows.
    since = (cycle_start.astimezone(UTC) if cycle_start.tzinfo
             else cycle_start.replace(tzinfo=UTC))
    rows = await db.fetch("SELECT SUM(bytes) AS total FROM topups"
                          " WHERE subscriber_id = ? AND created_at >= ?",
                          [subscriber_id, db.db_time(since)])
    total = rows[0]["total"] if rows else None
    return int(total or 0)


def _aware(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def _usage(usernames: list[str], today: date, first_days: dict[str, date]
                 ) -> tuple[dict[str, int], dict[str, int]]:
    """Today's and this cycle's bytes (down + up) per username, the same sums as
    portal.usage.queries.totals, for many subscribers in one query per chunk."""
    earliest = min([today, *first_days.values()])
    daily: dict[str, int] = defaultdict(int)
    monthly: dict[str, int] = defaultdict(int)
    for chunk in _chunks(usernames):
        rows = await db.fetch(
            f"SELECT username, day, bytes_in, bytes_out FROM usage_daily WHERE day >= ? AND "
            f"{_in('username', chunk)}", [day_param(earliest), *chunk])
        for r in rows:
            u, day = str(r["username"]), _as_date(r["day"])
            total = int(str(r["bytes_in"])) + int(str(r["bytes_out"]))
            if day == today:
                daily[u] += total
            if day >= first_days[u]:
                monthly[u] += total
    return daily, monthly


async def _bonus(cycle_starts: dict[int, datetime]) -> dict[int, int]:
    """Bytes bought since each subscriber's cycle start: portal.core.topups.cycle_bonus_bytes
    for many subscribers at once (tests/enforcer check the two agree)."""
    out: dict[int, int] = defaultdict(int)
    ids = sorted(cycle_starts)
    for i in range(0, len(ids), 900):
        chunk = ids[i:i + 900]
        # UTC: SQLite compares the stored ISO text.
        earliest = min(_aware(cycle_starts[s]) for s in chunk).astimezone(UTC)
        for t in await Topup.filter(subscriber_id__in=chunk, created_at__gte=earliest).values(
                "subscriber_id", "bytes", "created_at"):
            if _aware(t["created_at"]) >= cycle_starts[t["subscriber_id"]]:
                out[t["subscriber_id"]] += int(t["bytes"])
    return out


async def recorded(usernames: set[str] | None) -> dict[tuple[str, str], Recorded]:
    """enforcement_state rows by (username, target): one per target a box applies."""
    from portal.speed.rules import Desired

    rows: list[EnforcementState] = []
    if usernames is None:
        rows = await EnforcementState.all()
    else:
        for chunk in _chunks(usernames):
            rows += await EnforcementState.filter(username__in=chunk)
    return {(r.username, r.target): Recorded(r.target, r.acct_session_id, r.address,
                                             Desired(r.desired_action, r.desired_down_kbps,
                                                     r.desired_up_kbps, r.reason),
                                             r.state, r.attempts, r.next_retry_at)
            for r in rows}


async def radreply_rows(usernames: list[str], attributes: list[str]
                        ) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for chunk in _chunks(usernames):
        for r in await RadReply.filter(username__in=chunk, attribute__in=attributes).values(
                "username", "attribute", "op", "value"):
            out[r["username"]].append((r["attribute"], r["op"], r["value"]))
    return out
