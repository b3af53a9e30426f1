"""ingest_once(live=True): the enforcer's pass right after a burst of accounting
changes -- bounded, no stale scan, never two at once, never a wait behind another
box's pass on PostgreSQL (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.demo import simnas
from portal.store import db as pdb
from portal.usage import ingest
from portal.usage.ingest import Settings

SETTINGS = Settings(ZoneInfo("UTC"), interim_seconds=300, stale_after_missed=3)


async def total(username: str) -> int:
    rows = await pdb.fetch("SELECT COALESCE(SUM(bytes_out), 0) AS o FROM usage_daily"
                           " WHERE username = ?", [username])
    return int(rows[0]["o"])


async def test_a_live_pass_counts_the_new_changes_once(db: str) -> None:
    now = datetime.now(UTC)
    s = simnas.SimSession("alice", "s1", framed_ip="10.0.0.2")
    await simnas.start([s], now - timedelta(minutes=5))
    first = await ingest.ingest_once(SETTINGS, live=True)
    assert (first.started, first.busy, first.more) == (1, False, False)
    s.bytes_out = 5000
    await simnas.interim([s], now)
    r = await ingest.ingest_once(SETTINGS, live=True)
    assert (r.changed, r.bytes_out) == (1, 5000) and ("alice", now.date()) in r.days
    assert (await ingest.ingest_once(SETTINGS, live=True)).changed == 0
    assert (await ingest.ingest_once(SETTINGS)).changed == 0  # the periodic pass too
    assert await total("alice") == 5000


async def test_a_live_pass_leaves_stale_sessions_to_the_periodic_pass(db: str) -> None:
    now = datetime.now(UTC)
    silent = simnas.SimSession("bob", "s2", framed_ip="10.0.0.3")
    await simnas.start([silent], now - timedelta(hours=3))
    await ingest.ingest_once(SETTINGS, now - timedelta(hours=3))
    r = await ingest.ingest_once(SETTINGS, live=True)
    assert r.stale_closed == 0  # no scan of every open session per burst
    assert (await ingest.ingest_once(SETTINGS)).stale_closed == 1


async def test_a_backlog_is_read_one_batch_per_live_pass(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "CHANGE_BATCH", 2)
    now = datetime.now(UTC)
    sessions = [simnas.SimSession(f"u{i}", f"s{i}", framed_ip=f"10.0.0.{i + 2}")
                for i in range(3)]
    await simnas.start(sessions, now)
    r = await ingest.ingest_once(SETTINGS, live=True)
    assert (r.started, r.more) == (2, True)  # bounded: the caller asks again
    r = await ingest.ingest_once(SETTINGS, live=True)
    assert (r.started, r.more) == (1, False)


async def test_two_passes_at_once_count_every_byte_once(db: str) -> None:
    """Two boxes (or the periodic and the live pass) on one burst: usage_ingest's row
    serializes them; on PostgreSQL the live one that finds it taken says busy."""
    now = datetime.now(UTC)
    s = simnas.SimSession("alice", "s1", framed_ip="10.0.0.2")
    await simnas.start([s], now - timedelta(minutes=5))
    await ingest.ingest_once(SETTINGS)
    for n in range(1, 6):
        s.bytes_out = n * 1000
        await simnas.interim([s], now + timedelta(seconds=n))
        results = await asyncio.gather(*(ingest.ingest_once(SETTINGS, live=live)
                                          for live in (True, True, False)))
        while any(r.busy for r in results):  # asked again, as the enforcer does
            results = [await ingest.ingest_once(SETTINGS, live=True)]
        assert await total("alice") == n * 1000


async def test_live_pass_never_queues_behind_another_boxs_pass(db: str) -> None:
    now = datetime.now(UTC)
    s = simnas.SimSession("alice", "s1", framed_ip="10.0.0.2")
    await simnas.start([s], now - timedelta(minutes=5))
    await ingest.ingest_once(SETTINGS)
    s.bytes_out = 7000
    await simnas.interim([s], now)
    if pdb.current_dialect() != "postgres":
        # SQLite is one box: another writer (FreeRADIUS, the CLI's pass) holds the
        # database lock; the live pass waits its turn (BEGIN IMMEDIATE) and counts once.
        import sqlite3

        other = sqlite3.connect(db.split("://", 1)[1], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        release = asyncio.get_running_loop().call_later(0.3, other.rollback)
        try:
            r = await ingest.ingest_once(SETTINGS, live=True)
        finally:
            release.cancel()
            other.close()
        assert not r.busy and r.bytes_out == 7000
        assert await total("alice") == 7000
        return
    import psycopg

    from dns_filter import dburl

    other = psycopg.connect(dburl.parse(db).dsn)  # another box's long periodic pass
    try:
        other.execute("UPDATE usage_ingest SET last_run_at = 0 WHERE id = 1")
        started = time.monotonic()
        r = await ingest.ingest_once(SETTINGS, live=True)
        waited = time.monotonic() - started
        assert r.busy and r.changed == 0
        assert waited < 1.0, waited  # at once, not after the other pass
        other.rollback()
    finally:
        other.close()
    r = await ingest.ingest_once(SETTINGS, live=True)
    assert not r.busy and r.bytes_out == 7000
    assert await total("alice") == 7000
