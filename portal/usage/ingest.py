"""RADIUS accounting -> per-subscriber per-day usage.

FreeRADIUS keeps ONE radacct row per session and overwrites its counters at
each Interim-Update and at Stop, at second granularity, so "changed since the
last pass" cannot be told from its times. Migration 0013's triggers append the
row id to radacct_changes at every insert and update; the ingest follows that
table by id, gap-safely (dns_filter.gapcursor; its cursor and open gaps live in
usage_ingest), in bounded batches, and also scans open sessions for stale ones.
It remembers per session the counters it last saw (usage_sessions) and
attributes each increase to the interval since that previous observation, split
across local midnights in proportion to time (stop, else update, else start
time of the row).

`step` is the whole rule for one row, a plain function; `ingest_once` is one
pass over the database in one transaction (usage, memory, journal and stale
closes commit together, so a crash mid-pass counts nothing and a rerun counts
nothing twice).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from dns_filter.gapcursor import Gap, GapCursor
from portal.store import db, follow, journal, radacct
from portal.store.tx import DAEMON_BUDGET_S, transaction
from portal.usage import days

log = logging.getLogger("ispedge.usage")

STALE_CAUSE = "Stale-Session"
CHANGE_BATCH = 1000  # radacct_changes rows per read
MAX_BATCHES = 200  # per pass (every interim of 200k sessions in 5 min); more: next pass
CHUNK_BATCHES = 5  # per transaction: a first run over millions of rows in bounded memory
STALE_LIMIT = 5000  # stale sessions closed per pass at most (the rest: the next pass)
LIVE_BATCHES = 1  # per live pass (portal.usage.coalesce): a backlog takes the next ones
CHANGE_KEEP_S = 3600  # radacct_changes rows read by the ingest are kept this long


@dataclass(frozen=True)
class Seen:
    """What the ingest remembers of one session (usage_sessions row)."""

    username: str
    bytes_in: int
    bytes_out: int
    seen_at: int
    prev_bytes_in: int | None = None
    prev_bytes_out: int | None = None
    prev_seen_at: int | None = None
    stopped_at: int | None = None


@dataclass(frozen=True)
class Row:
    """The radacct row as it is now (times in epoch seconds)."""

    acctuniqueid: str
    username: str
    start: int
    update: int | None
    stop: int | None
    bytes_in: int
    bytes_out: int

    @property
    def changed_at(self) -> int:
        return self.stop or self.update or self.start


@dataclass(frozen=True)
class Step:
    seen: Seen | None  # the new memory; None = nothing changed
    t0: int = 0  # traffic moved in [t0, t1]
    t1: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    event: str | None = None  # "start" | "stop": a journal row for the followers


def step(prev: Seen | None, row: Row) -> Step:
    """One radacct row against the memory of its session."""
    t = row.changed_at
    bin_, bout = max(0, row.bytes_in), max(0, row.bytes_out)
    if prev is None:
        # First sight (a Start, or a Stop/Interim whose Start we never saw):
        # counters are totals since the session began.
        seen = Seen(row.username, bin_, bout, t, stopped_at=row.stop)
        return Step(seen, min(row.start, t), t, bin_, bout, "stop" if row.stop else "start")
    if prev.stopped_at is not None:
        return Step(None)  # final already; a repeated Stop changes nothing
    if row.stop is None and t < prev.seen_at:
        return Step(None)  # an older interim delivered late: newer counters already counted
    if row.stop is None and t == prev.seen_at and (bin_, bout) == (prev.bytes_in,
                                                                  prev.bytes_out):
        return Step(None)  # duplicate
    t = max(t, prev.seen_at)
    # A counter below the last one is a reset (NAS reboot, wrap): it becomes the
    # new baseline and this step counts nothing for it -- never a negative delta.
    d_in = bin_ - prev.bytes_in if bin_ >= prev.bytes_in else 0
    d_out = bout - prev.bytes_out if bout >= prev.bytes_out else 0
    seen = Seen(row.username, bin_, bout, t, prev.bytes_in, prev.bytes_out, prev.seen_at,
                row.stop and max(row.stop, prev.seen_at))
    return Step(seen, prev.seen_at, t, d_in, d_out, "stop" if row.stop else None)


@dataclass(frozen=True)
class Settings:
    tz: ZoneInfo
    interim_seconds: int = 300  # when radacct.acctinterval is empty
    stale_after_missed: int = 3  # open sessions silent this many interims (+ half) are closed
    overlap_seconds: int = 900  # stopped sessions are remembered this long past the watermark
    keep_stopped_seconds: int = 7 * 86400  # forget stopped sessions this long after the watermark

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        def get(key: str, default: int) -> int:
            return int(config.get("usage", key, default))

        return cls(days.zone(config.timezone), get("interim_seconds", 300),
                   get("stale_after_missed", 3), get("overlap_seconds", 900),
                   get("keep_stopped_seconds", 7 * 86400))


@dataclass
class Result:
    rows: int = 0
    changed: int = 0
    started: int = 0
    stopped: int = 0
    stale_closed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    busy: bool = False  # another pass held the ingest (PostgreSQL; nothing was read)
    more: bool = False  # the pass's batches were full: changes are waiting
    full: bool = False  # this pass ran the stale scan and the housekeeping
    days: dict[tuple[str, date], list[int]] = field(default_factory=dict, repr=False)
    # username -> (NAS address, Framed-IP-Address) of the sessions whose usage moved:
    # a box enforces only the subscribers on its own NASes or networks.
    where: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)


def _epoch(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    parsed = radacct.from_db_time(value)
    return int(parsed.timestamp()) if parsed else None


_SELECT = (
    "SELECT r.radacctid, r.acctuniqueid, r.username, r.acctstarttime, r.acctupdatetime,"
    " r.acctstoptime, r.acctinputoctets, r.acctoutputoctets, r.acctinterval,"
    " r.framedipaddress, r.nasipaddress, s.username AS s_username, s.bytes_in, s.bytes_out,"
    " s.seen_at,"
    " s.prev_bytes_in, s.prev_bytes_out, s.prev_seen_at, s.stopped_at"
    " FROM radacct r LEFT JOIN usage_sessions s ON s.acctuniqueid = r.acctuniqueid"
    " WHERE r.radacctid IN ({ids}) ORDER BY r.radacctid"
)
# Open sessions, for the stale scan only (a silent session writes no change row).
_OPEN = ("SELECT radacctid, acctstarttime, acctupdatetime, acctinterval, nasipaddress"
         " FROM radacct"
         " WHERE acctstoptime IS NULL")
_UPSERT_SEEN = (
    "INSERT INTO usage_sessions (acctuniqueid, username, bytes_in, bytes_out, seen_at,"
    " prev_bytes_in, prev_bytes_out, prev_seen_at, stopped_at) VALUES (?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (acctuniqueid) DO UPDATE SET username = excluded.username,"
    " bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out,"
    " seen_at = excluded.seen_at, prev_bytes_in = excluded.prev_bytes_in,"
    " prev_bytes_out = excluded.prev_bytes_out, prev_seen_at = excluded.prev_seen_at,"
    " stopped_at = excluded.stopped_at"
)
_ADD_DAILY = (
    "INSERT INTO usage_daily (username, day, bytes_in, bytes_out) VALUES (?,?,?,?)"
    " ON CONFLICT (username, day) DO UPDATE SET"
    " bytes_in = usage_daily.bytes_in + excluded.bytes_in,"
    " bytes_out = usage_daily.bytes_out + excluded.bytes_out"
)
_CLOSE_STALE = (
    "UPDATE radacct SET acctstoptime = ?, acctterminatecause = ?, acctsessiontime = ?"
    " WHERE radacctid = ? AND acctstoptime IS NULL"
    " AND COALESCE(acctupdatetime, acctstarttime) <= ?"
)


def _cursor_of(row: dict[str, Any]) -> GapCursor:
    """usage_ingest's change_cursor and change_gaps ({id: [xmax, first_seen epoch]})."""
    gaps = {int(k): Gap(int(v[0]), float(v[1]))
            for k, v in json.loads(str(row["change_gaps"] or "{}")).items()}
    return GapCursor(int(row["change_cursor"] or 0), gaps)


def _gaps_text(cursor: GapCursor) -> str:
    return json.dumps({str(k): [g.xmax, g.first_seen] for k, g in sorted(cursor.gaps.items())})


def day_param(day: date) -> object:
    return day if db.current_dialect() == "postgres" else day.isoformat()


async def ingest_once(settings: Settings, now: datetime | None = None,
                      closes_stale: Callable[[str], bool] | None = None, *,
                      live: bool = False, full_every_s: float = 0.0) -> Result:
    """One pass: every radacct row changed since the last pass, and stale open sessions.

    closes_stale(nas_ip): may this pass close a silent session of that NAS (an edge
    box closes only its own NASes' sessions); None: every NAS's.

    live: the enforcer's pass right after a burst of accounting changes
    (portal.usage.coalesce): at most LIVE_BATCHES batches of changes (`more` says a
    backlog is left), no scan of every open session for stale ones and no
    housekeeping deletes (the periodic pass does those).

    Shared by every edge box without serializing on one lock (issue 17): on
    PostgreSQL a pass never queues behind another box's -- it takes usage_ingest's
    row with SKIP LOCKED, and if another pass holds it `busy` comes back at once
    (that pass is counting the same changes meanwhile). The scan for stale sessions
    is a query the database evaluates (each box closes its own NASes' sessions);
    the housekeeping deletes run only when the last ones are `full_every_s` old
    (0: every periodic pass), so of N boxes one a minute does them.

    Bounded: the changes are taken CHUNK_BATCHES batches per transaction, each
    committing its usage, memory, journal rows and cursor together (a crash counts
    nothing twice), so a first run over millions of radacct rows holds a few
    thousand in memory at a time and never one long lock.
    """
    started = time.perf_counter()
    total = Result()
    daily_total: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    left = LIVE_BATCHES if live else MAX_BATCHES
    first = True
    while True:
        take = min(CHUNK_BATCHES, left)

        async def body(tx: BaseDBAsyncClient, take: int = take, first: bool = first,
                       ) -> tuple[Result, dict[tuple[str, date], list[int]]]:
            return await _chunk(tx, settings, now, closes_stale, live, full_every_s, take,
                                first)

        # The ingest is the one long writer of ours: each chunk runs as one use case,
        # retried whole when FreeRADIUS holds the lock, so no bytes are counted twice.
        result, daily = await transaction(body, budget_s=DAEMON_BUDGET_S)
        total.where.update(result.where)
        for f in ("rows", "changed", "started", "stopped", "stale_closed", "bytes_in",
                  "bytes_out"):
            setattr(total, f, getattr(total, f) + getattr(result, f))
        for key, (b_in, b_out) in daily.items():
            acc = daily_total[key]
            acc[0] += b_in
            acc[1] += b_out
        total.busy = total.busy or (result.busy and first)
        total.more = result.more
        total.full = total.full or result.full
        left -= take
        first = False
        if result.busy or not result.more or left <= 0:
            break
    total.days = dict(daily_total)
    total.seconds = time.perf_counter() - started
    return total


async def _stale_candidates(settings: Settings, now_epoch: int) -> list[dict[str, Any]]:
    """Open sessions that may be silent for too long: on PostgreSQL the rule is
    evaluated by the database (no 200k rows through Python each minute); SQLite
    (one box, radacct times in either format) scans in Python. At most STALE_LIMIT
    a pass; the rest next pass."""
    if db.current_dialect() == "postgres":
        return await db.fetch(
            "SELECT radacctid, acctstarttime, acctupdatetime, acctinterval, nasipaddress"
            " FROM radacct WHERE acctstoptime IS NULL AND COALESCE(acctupdatetime, acctstarttime)"
            " < to_timestamp(?) - make_interval(secs => COALESCE(NULLIF(acctinterval, 0), ?)"
            " * ?::float + COALESCE(NULLIF(acctinterval, 0), ?) / 2) LIMIT ?",
            [now_epoch, settings.interim_seconds, settings.stale_after_missed,
             settings.interim_seconds, STALE_LIMIT])
    return await db.fetch(_OPEN)


async def _chunk(tx: BaseDBAsyncClient, settings: Settings, now: datetime | None,
                 closes_stale: Callable[[str], bool] | None, live: bool,
                 full_every_s: float, batches: int, first: bool,
                 ) -> tuple[Result, dict[tuple[str, date], list[int]]]:
    """One transaction of a pass: up to `batches` batches of changes (and, in the
    first of a periodic pass, the stale scan; the housekeeping when it is due)."""
    now_epoch = int((now or datetime.now(UTC)).timestamp())
    result = Result()
    if db.current_dialect() == "postgres":
        # Never two passes at once (the row lock below), but never a wait either:
        # another box's pass has the lock and counts these changes meanwhile.
        if not await db.fetch("SELECT id FROM usage_ingest WHERE id = 1"
                              " FOR UPDATE SKIP LOCKED"):
            result.busy = True
            return result, {}
    # Write first: takes the write lock (SQLite) / row lock (PostgreSQL) so two
    # passes never read the same memory and both count the same bytes.
    await db.execute("UPDATE usage_ingest SET last_run_at = ? WHERE id = 1", [now_epoch])
    mark = await db.fetch("SELECT watermark, change_cursor, change_gaps, full_run_at"
                          " FROM usage_ingest WHERE id = 1")
    watermark = int(mark[0]["watermark"])
    full = (not live and first
            and now_epoch - int(mark[0]["full_run_at"] or 0) >= full_every_s)
    result.full = full
    changes = _cursor_of(mark[0])
    ids: set[int] = set()
    more = False
    for _ in range(batches):
        batch, more = await follow.read_batch(changes, "radacct_changes", "id",
                                              "radacctid", CHANGE_BATCH, time.time())
        ids.update(int(r["radacctid"]) for r in batch)
        if not more:
            break
    result.more = more
    for r in (await _stale_candidates(settings, now_epoch) if first and not live else []):
        if closes_stale is not None and not closes_stale(str(r["nasipaddress"])):
            continue  # another box's NAS: its owner closes it
        began = _epoch(r["acctstarttime"]) or now_epoch
        last = _epoch(r["acctupdatetime"]) or began
        interval = int(r["acctinterval"] or 0) or settings.interim_seconds
        if now_epoch - last > interval * settings.stale_after_missed + interval // 2:
            ids.add(int(r["radacctid"]))
    rows: list[dict[str, Any]] = []
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):
        chunk = ordered[i:i + 500]
        rows += await db.fetch(_SELECT.format(ids=", ".join("?" * len(chunk))), chunk)
    seen_rows: list[list[object]] = []
    daily: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    sessions: list[journal.Entry] = []
    stale: list[list[object]] = []
    new_mark = watermark
    for r in rows:
        result.rows += 1
        start = _epoch(r["acctstarttime"])
        update, stop = _epoch(r["acctupdatetime"]), _epoch(r["acctstoptime"])
        if start is None:
            start = update or stop or now_epoch
        row = Row(r["acctuniqueid"], r["username"], start, update, stop,
                  int(r["acctinputoctets"] or 0), int(r["acctoutputoctets"] or 0))
        prev = None if r["seen_at"] is None else Seen(
            r["s_username"], int(r["bytes_in"]), int(r["bytes_out"]), int(r["seen_at"]),
            r["prev_bytes_in"], r["prev_bytes_out"], r["prev_seen_at"], r["stopped_at"])
        reason = ""
        if stop is None:
            last = max(row.changed_at, prev.seen_at if prev else 0)
            interval = int(r["acctinterval"] or 0) or settings.interim_seconds
            if now_epoch - last > interval * settings.stale_after_missed + interval // 2 \
                    and (closes_stale is None or closes_stale(str(r["nasipaddress"]))):
                # Never stopped and silent for N interims: close it in radacct so it
                # is neither counted as online forever nor shown as open.
                stale.append([radacct.to_db_time(datetime.fromtimestamp(last, UTC)),
                              STALE_CAUSE, last - start, r["radacctid"],
                              radacct.to_db_time(datetime.fromtimestamp(last, UTC))])
                row = Row(row.acctuniqueid, row.username, start, update, last,
                          row.bytes_in, row.bytes_out)
                reason = "stale"
                result.stale_closed += 1
        s = step(prev, row)
        new_mark = max(new_mark, min(row.changed_at, now_epoch))
        if s.seen is None:
            continue
        result.changed += 1
        n = s.seen
        seen_rows.append([row.acctuniqueid, n.username, n.bytes_in, n.bytes_out, n.seen_at,
                          n.prev_bytes_in, n.prev_bytes_out, n.prev_seen_at, n.stopped_at])
        if s.bytes_in or s.bytes_out:
            result.where[row.username] = (str(r["nasipaddress"] or ""),
                                          str(r["framedipaddress"] or ""))
            for day, b_in, b_out in days.spread(s.t0, s.t1, s.bytes_in, s.bytes_out,
                                                settings.tz):
                acc = daily[(row.username, day)]
                acc[0] += b_in
                acc[1] += b_out
            result.bytes_in += s.bytes_in
            result.bytes_out += s.bytes_out
        if s.event:
            result.started += s.event == "start"
            result.stopped += s.event == "stop"
            payload: dict[str, object] = {"event": s.event, "acctuniqueid": row.acctuniqueid,
                                          "framed_ip": str(r["framedipaddress"] or "")}
            if reason:
                payload["reason"] = reason
            sessions.append(journal.Entry(row.username, "session", payload))
    if stale:
        await db.execute_many(_CLOSE_STALE, stale)
    if seen_rows:
        await db.execute_many(_UPSERT_SEEN, seen_rows)
    if daily:
        await db.execute_many(_ADD_DAILY, [[u, day_param(d), v[0], v[1]]
                                           for (u, d), v in daily.items()])
    await journal.record_many(tx, sessions, origin=journal.INGEST)
    if full:
        await db.execute("UPDATE usage_ingest SET full_run_at = ? WHERE id = 1", [now_epoch])
        forget = new_mark - settings.overlap_seconds - settings.keep_stopped_seconds
        await db.execute("DELETE FROM usage_sessions WHERE stopped_at < ?", [forget])
        # Never the newest row: on SQLite the next id is the highest present + 1
        # (a rowid table, migration 0022), so keeping it keeps ids from repeating.
        await db.execute("DELETE FROM radacct_changes WHERE id <= ? AND changed_at < ?"
                         " AND id < (SELECT MAX(id) FROM radacct_changes)",
                         [changes.high, now_epoch - CHANGE_KEEP_S])
    await db.execute("UPDATE usage_ingest SET watermark = ?, change_cursor = ?,"
                     " change_gaps = ? WHERE id = 1",
                     [new_mark, changes.high, _gaps_text(changes)])
    return result, daily


async def ingest_cursor() -> GapCursor | None:
    """The shared ingest's committed cursor over radacct_changes (None: no row)."""
    rows = await db.fetch("SELECT change_cursor, change_gaps FROM usage_ingest WHERE id = 1")
    return _cursor_of(rows[0]) if rows else None


def covers(cursor: GapCursor, change_id: int) -> bool:
    """Has the ingest whose cursor this is counted that radacct_changes id (read it)?"""
    return change_id <= cursor.high and change_id not in cursor.gaps


async def counted(changes: set[int]) -> bool:
    """Whether the shared ingest has committed past these radacct_changes ids (read
    them all): every one at or below its cursor and none among its open gaps."""
    cursor = await ingest_cursor()
    return cursor is not None and all(covers(cursor, i) for i in changes)


async def ingest_job(config: Any, closes_stale: Callable[[str], bool] | None = None,
                     full_every_s: float = 0.0) -> Result:
    """One pass with the settings from config: what the enforcer daemon runs each minute."""
    result = await ingest_once(Settings.from_config(config), closes_stale=closes_stale,
                               full_every_s=full_every_s)
    if result.changed:
        log.info("usage ingest: %d rows, %d changed, %d started, %d stopped, %d stale, %.3f s",
                 result.rows, result.changed, result.started, result.stopped,
                 result.stale_closed, result.seconds)
    return result


async def run_forever(config: Any, every_seconds: float = 60.0,
                      stop: asyncio.Event | None = None) -> None:
    """The periodic job: a failed pass is logged and retried at the next tick."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await ingest_job(config)
        except Exception:  # noqa: BLE001 - a daemon loop must outlive one bad pass
            log.exception("usage ingest pass failed; retrying in %.0f s", every_seconds)
        try:
            await asyncio.wait_for(stop.wait(), every_seconds)
        except TimeoutError:
            pass
