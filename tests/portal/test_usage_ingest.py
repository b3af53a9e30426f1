"""Usage ingest: radacct (as FreeRADIUS writes it) -> usage_daily, with every edge case."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.demo import simnas
from portal.store import db as portal_db
from portal.store import radacct
from portal.store.models import ChangeJournal, UsageDaily
from portal.usage import days, ingest, queries
from portal.usage.ingest import Row, Seen, Settings, step

BEIRUT = ZoneInfo("Asia/Beirut")  # UTC+2 in winter
T0 = datetime(2026, 1, 10, 21, 0, tzinfo=UTC)  # 23:00 in Beirut
GB = 10**9


# --- the rule for one row (no database) ----------------------------------------------

def row(start: int = 1000, update: int | None = None, stop: int | None = None, i: int = 0,
        o: int = 0) -> Row:
    return Row("u1", "alice", start, update, stop, i, o)


def test_first_sight_counts_totals_since_start():
    s = step(None, row(1000, 1600, None, 10, 20))
    assert (s.t0, s.t1, s.bytes_in, s.bytes_out, s.event) == (1000, 1600, 10, 20, "start")
    assert s.seen == Seen("alice", 10, 20, 1600)


def test_interim_counts_the_increase_since_last_seen():
    prev = Seen("alice", 10, 20, 1600)
    s = step(prev, row(1000, 1900, None, 15, 50))
    assert (s.t0, s.t1, s.bytes_in, s.bytes_out, s.event) == (1600, 1900, 5, 30, None)
    assert (s.seen.prev_bytes_in, s.seen.prev_seen_at) == (10, 1600)


def test_duplicate_interim_changes_nothing():
    prev = Seen("alice", 10, 20, 1600)
    assert step(prev, row(1000, 1600, None, 10, 20)).seen is None


def test_older_interim_delivered_late_is_ignored():
    prev = Seen("alice", 100, 200, 1900)
    assert step(prev, row(1000, 1600, None, 50, 60)).seen is None


def test_counter_reset_is_a_new_baseline_never_negative():
    prev = Seen("alice", 100, 200, 1900)
    s = step(prev, row(1000, 2200, None, 30, 250))
    assert (s.bytes_in, s.bytes_out) == (0, 50)
    assert (s.seen.bytes_in, s.seen.bytes_out) == (30, 250)
    nxt = step(s.seen, row(1000, 2500, None, 45, 260))
    assert (nxt.bytes_in, nxt.bytes_out) == (15, 10)


def test_stop_counts_the_rest_and_finalises():
    prev = Seen("alice", 10, 20, 1600)
    s = step(prev, row(1000, 1600, 1700, 12, 25))
    assert (s.t0, s.t1, s.bytes_in, s.bytes_out, s.event) == (1600, 1700, 2, 5, "stop")
    assert s.seen.stopped_at == 1700
    assert step(s.seen, row(1000, 1600, 1800, 99, 99)).seen is None  # repeated Stop


def test_stop_without_start_counts_whole_session():
    s = step(None, row(1000, 5000, 5000, 7, 9))
    assert (s.t0, s.t1, s.bytes_in, s.bytes_out, s.event) == (1000, 5000, 7, 9, "stop")


def test_stop_stamped_before_last_interim_still_finalises():
    prev = Seen("alice", 10, 20, 1600)
    s = step(prev, row(1000, 1600, 1500, 11, 21))
    assert (s.t0, s.t1, s.bytes_in, s.event, s.seen.stopped_at) == (1600, 1600, 1, "stop", 1600)


# --- days ---------------------------------------------------------------------------------

def test_split_across_local_midnight_in_proportion():
    t0 = int(T0.timestamp())  # 23:00 local
    pieces = days.split(t0, t0 + 4 * 3600, BEIRUT)
    assert pieces == [(date(2026, 1, 10), 3600), (date(2026, 1, 11), 3 * 3600)]
    assert days.spread(t0, t0 + 4 * 3600, 400, 1000, BEIRUT) == [
        (date(2026, 1, 10), 100, 250), (date(2026, 1, 11), 300, 750)]


def test_split_over_several_days_and_exact_integer_total():
    t0 = int(T0.timestamp())
    pieces = days.spread(t0, t0 + 50 * 3600, 1_000_003, 7, BEIRUT)
    assert [p[0] for p in pieces][:3] == [date(2026, 1, 10), date(2026, 1, 11), date(2026, 1, 12)]
    assert sum(p[1] for p in pieces) == 1_000_003 and sum(p[2] for p in pieces) == 7


def test_zero_length_interval_goes_to_its_day():
    t = int(T0.timestamp())
    assert days.spread(t, t, 5, 6, BEIRUT) == [(date(2026, 1, 10), 5, 6)]


def test_dst_day_has_23_hours():
    berlin = ZoneInfo("Europe/Berlin")
    start = int(datetime(2026, 3, 29, 0, 0, tzinfo=berlin).timestamp())
    pieces = days.split(start, start + 30 * 3600, berlin)
    assert pieces[0] == (date(2026, 3, 29), 23 * 3600)


def test_allocate():
    assert days.allocate(10, [1, 1, 1]) == [3, 3, 4]
    assert days.allocate(10, [0, 0]) == [0, 10]
    assert days.allocate(7, [5]) == [7]


def test_cycle_start_calendar_and_renewal():
    now = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)  # already March 1st in Beirut
    cal = days.cycle_start("calendar", now, now, BEIRUT)
    assert cal == datetime(2026, 3, 1, tzinfo=BEIRUT)
    renewal = datetime(2026, 2, 14, 9, tzinfo=UTC)
    assert days.cycle_start("renewal", renewal, now, BEIRUT) == renewal
    with pytest.raises(Exception, match="renewal or calendar"):
        days.cycle_start("weekly", renewal, now, BEIRUT)


# --- the pass over a database --------------------------------------------------------------

SETTINGS = Settings(BEIRUT, interim_seconds=300, stale_after_missed=3, overlap_seconds=900)


async def daily(username: str = "alice") -> dict[str, tuple[int, int]]:
    rows = await UsageDaily.filter(username=username).order_by("day")
    return {r.day.isoformat(): (r.bytes_in, r.bytes_out) for r in rows}


async def journal(kind: str = "session") -> list[dict[str, object]]:
    return [json.loads(j.payload) | {"username": j.username}
            for j in await ChangeJournal.filter(kind=kind).order_by("id")]


def sim(username: str = "alice", sid: str = "s1", ip: str = "10.0.0.2") -> simnas.SimSession:
    return simnas.SimSession(username, sid, framed_ip=ip)


async def test_session_across_midnight_is_split_and_rerun_counts_nothing(db: str):
    s = sim()
    await simnas.start([s], T0)  # 23:00 local
    r = await ingest.ingest_once(SETTINGS, T0)
    assert (r.started, r.bytes_in) == (1, 0)
    t = T0
    for _ in range(24):  # interims every 5 min for two hours: 23:00 -> 01:00
        t += timedelta(minutes=5)
        s.bytes_in += 1000
        s.bytes_out += 10_000
        await simnas.interim([s], t)
        await ingest.ingest_once(SETTINGS, t)
    assert await daily() == {"2026-01-10": (12_000, 120_000), "2026-01-11": (12_000, 120_000)}
    again = await ingest.ingest_once(SETTINGS, t)
    assert (again.changed, again.bytes_in) == (0, 0)
    assert await daily() == {"2026-01-10": (12_000, 120_000), "2026-01-11": (12_000, 120_000)}
    s.bytes_out += 5
    await simnas.stop([s], t + timedelta(minutes=1))
    r = await ingest.ingest_once(SETTINGS, t + timedelta(minutes=2))
    assert (r.stopped, r.bytes_out) == (1, 5)
    assert (await daily())["2026-01-11"] == (12_000, 120_005)
    events = await journal()
    assert [(e["event"], e["username"], e["framed_ip"]) for e in events] == [
        ("start", "alice", "10.0.0.2"), ("stop", "alice", "10.0.0.2")]
    for _ in range(2):
        assert (await ingest.ingest_once(SETTINGS, t + timedelta(minutes=3))).changed == 0
    assert len(await journal()) == 2


async def test_ingest_down_for_hours_catches_up_in_proportion(db: str):
    s = sim()
    await simnas.start([s], T0 - timedelta(hours=1))  # 22:00 local
    await ingest.ingest_once(SETTINGS, T0 - timedelta(hours=1))
    t = T0 - timedelta(hours=1)
    for _ in range(48):  # 4 hours of interims nobody ingested, the last one wins
        t += timedelta(minutes=5)
        s.bytes_out += 1_000_000
        await simnas.interim([s], t)
    await ingest.ingest_once(SETTINGS, t)
    # 22:00 -> 02:00 local: 2 h before midnight, 2 h after.
    assert await daily() == {"2026-01-10": (0, 24_000_000), "2026-01-11": (0, 24_000_000)}


async def test_gigaword_sized_counters(db: str):
    s = sim()
    await simnas.start([s], T0)
    s.bytes_out = (5 << 32) | 123
    await simnas.interim([s], T0 + timedelta(minutes=5))
    await ingest.ingest_once(SETTINGS, T0 + timedelta(minutes=5))
    assert (await daily())["2026-01-10"] == (0, (5 << 32) | 123)


async def test_counter_reset_and_late_older_interim(db: str):
    s = sim()
    await simnas.start([s], T0 - timedelta(hours=3))
    t = T0 - timedelta(hours=3)
    for n in (1, 2):
        s.bytes_out = n * 1000
        await simnas.interim([s], t + timedelta(minutes=5 * n))
        await ingest.ingest_once(SETTINGS, t + timedelta(minutes=5 * n))
    # An older interim (t+5) written late: FreeRADIUS overwrites the row with it.
    s.bytes_out = 1000
    await simnas.interim([s], t + timedelta(minutes=5))
    r = await ingest.ingest_once(SETTINGS, t + timedelta(minutes=11))
    assert r.changed == 0
    # Then the NAS resets its counters: a new baseline, never negative.
    s.bytes_out = 300
    await simnas.interim([s], t + timedelta(minutes=15))
    await ingest.ingest_once(SETTINGS, t + timedelta(minutes=15))
    s.bytes_out = 700
    await simnas.interim([s], t + timedelta(minutes=20))
    await ingest.ingest_once(SETTINGS, t + timedelta(minutes=20))
    assert await daily() == {"2026-01-10": (0, 2000 + 400)}


async def test_stop_with_no_start_counts_once(db: str):
    s = sim(ip="")
    s.bytes_in, s.bytes_out = 50, 600
    await simnas.stop_without_start(s, T0 + timedelta(hours=2), 4 * 3600)
    r = await ingest.ingest_once(SETTINGS, T0 + timedelta(hours=2))
    assert (r.started, r.stopped) == (0, 1)
    # 21:00 -> 01:00 local: 3 h on the 10th, 1 h on the 11th.
    assert await daily() == {"2026-01-10": (37, 450), "2026-01-11": (13, 150)}
    assert (await ingest.ingest_once(SETTINGS, T0 + timedelta(hours=3))).changed == 0


async def test_stale_session_is_closed_and_not_counted_forever(db: str):
    s = sim()
    await simnas.start([s], T0)
    s.bytes_out = 1000
    await simnas.interim([s], T0 + timedelta(minutes=5))
    await ingest.ingest_once(SETTINGS, T0 + timedelta(minutes=5))
    quiet = await ingest.ingest_once(SETTINGS, T0 + timedelta(minutes=20))  # 3 missed, not 3.5
    assert quiet.stale_closed == 0
    r = await ingest.ingest_once(SETTINGS, T0 + timedelta(minutes=25))
    assert (r.stale_closed, r.stopped) == (1, 1)
    row = (await db_rows())[0]
    assert row["acctterminatecause"] == "Stale-Session"
    assert radacct.from_db_time(row["acctstoptime"]) == T0 + timedelta(minutes=5)
    assert int(row["acctsessiontime"]) == 300
    events = await journal()
    assert events[-1]["event"] == "stop" and events[-1]["reason"] == "stale"
    assert (await ingest.ingest_once(SETTINGS, T0 + timedelta(hours=5))).changed == 0
    assert await daily() == {"2026-01-10": (0, 1000)}


async def test_concurrent_passes_count_once(db: str):
    sessions = [sim(f"user{i}", f"s{i}") for i in range(20)]
    await simnas.start(sessions, T0)
    for s in sessions:
        s.bytes_out = 1000
    await simnas.interim(sessions, T0 + timedelta(minutes=5))
    await asyncio.gather(*(ingest.ingest_once(SETTINGS, T0 + timedelta(minutes=5))
                           for _ in range(4)))
    rows = await UsageDaily.all()
    assert len(rows) == 20 and all(r.bytes_out == 1000 for r in rows)
    assert len(await journal()) == 20


async def test_many_sessions_in_one_pass(db: str):
    sessions = [sim(f"user{i % 50}", f"s{i}") for i in range(500)]
    await simnas.start(sessions, T0)
    for n, s in enumerate(sessions):
        s.bytes_in, s.bytes_out = n, 2 * n
    await simnas.interim(sessions, T0 + timedelta(minutes=5))
    r = await ingest.ingest_once(SETTINGS, T0 + timedelta(minutes=5))
    assert r.changed == 500 and r.bytes_in == sum(range(500))
    total = await portal_db.fetch("SELECT SUM(bytes_out) AS b FROM usage_daily")
    assert int(total[0]["b"]) == 2 * sum(range(500))


async def test_old_stopped_sessions_are_forgotten_but_never_recounted(db: str):
    s = sim()
    await simnas.start([s], T0)
    s.bytes_out = 10
    await simnas.stop([s], T0 + timedelta(minutes=1))
    await ingest.ingest_once(SETTINGS, T0 + timedelta(minutes=1))
    later = sim(sid="s2")
    await simnas.start([later], T0 + timedelta(days=9))
    await ingest.ingest_once(SETTINGS, T0 + timedelta(days=9))
    remembered = await portal_db.fetch("SELECT acctuniqueid FROM usage_sessions")
    assert [r["acctuniqueid"] for r in remembered] == [later.uid]
    await ingest.ingest_once(SETTINGS, T0 + timedelta(days=9, minutes=1))
    assert await daily() == {"2026-01-10": (0, 10)}


async def test_totals_today_and_cycle_and_history(db: str):
    await db_insert_daily("alice", [("2026-01-01", 1, 2), ("2026-01-09", 10, 20),
                                    ("2026-01-10", 100, 200)])
    await db_insert_daily("bob", [("2026-01-10", 5000, 5000)])
    t = await queries.totals("alice", date(2026, 1, 10), date(2026, 1, 5))
    assert (t.today_in, t.today_out, t.cycle_in, t.cycle_out) == (100, 200, 110, 220)
    assert (t.today, t.cycle) == (300, 330)
    h = await queries.history("alice", date(2026, 1, 10), 30)
    assert len(h) == 30 and h[-1] == {"day": "2026-01-10", "bytes_in": 100, "bytes_out": 200}
    assert h[0]["day"] == "2025-12-12" and h[-10] == {"day": "2026-01-01", "bytes_in": 1,
                                                       "bytes_out": 2}


async def test_sessions_on_a_local_day(db: str):
    a, b = sim(sid="a"), sim(sid="b", ip="10.0.0.3")
    other = sim("bob", "x")
    await simnas.start([a, other], T0 - timedelta(hours=2))  # 21:00 local on the 10th
    a.bytes_out = 77
    await simnas.stop([a], T0 + timedelta(hours=2))  # 01:00 on the 11th
    await simnas.start([b], T0 + timedelta(hours=3))
    now = T0 + timedelta(hours=4)
    on_11th = await queries.sessions_on("alice", date(2026, 1, 11), BEIRUT, now)
    assert [s["framed_ip"] for s in on_11th] == ["10.0.0.3", "10.0.0.2"]
    assert on_11th[1]["bytes_out"] == 77 and on_11th[1]["duration_seconds"] == 4 * 3600
    assert on_11th[0]["stop"] is None and on_11th[0]["duration_seconds"] == 3600
    on_10th = await queries.sessions_on("alice", date(2026, 1, 10), BEIRUT, now)
    assert [s["framed_ip"] for s in on_10th] == ["10.0.0.2"]
    assert await queries.sessions_on("alice", date(2026, 1, 12), BEIRUT, now) == []


async def db_rows() -> list[dict[str, object]]:
    return await portal_db.fetch("SELECT * FROM radacct ORDER BY radacctid")


async def db_insert_daily(username: str, rows: list[tuple[str, int, int]]) -> None:
    for day, i, o in rows:
        await UsageDaily.create(username=username, day=date.fromisoformat(day), bytes_in=i,
                                bytes_out=o)
