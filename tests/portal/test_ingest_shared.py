"""Issue 17: the usage ingest shared by edge boxes, on a real database.

Two ingest workers (each what an edge box runs: its own passes, its own
connections) count every interim once, and on PostgreSQL neither waits for the
other: a pass that finds another pass under way returns at once (`busy`) instead
of queueing on usage_ingest's row lock. A backlog is taken in bounded chunks.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from portal.demo import simnas
from portal.store import db
from portal.usage import ingest

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("db")]

SETTINGS = ingest.Settings(ZoneInfo("UTC"), interim_seconds=3600)
MB = 10**6


async def total_out() -> int:
    rows = await db.fetch("SELECT COALESCE(SUM(bytes_out), 0) AS o FROM usage_daily")
    return int(rows[0]["o"])


async def test_two_workers_count_every_interim_once_and_never_queue(db_url: str) -> None:
    sessions = [simnas.SimSession(f"u{i:03d}", f"s{i:03d}", "127.0.0.1", f"100.64.1.{i + 1}")
                for i in range(40)]
    now = datetime.now(UTC)
    await simnas.start(sessions, now - timedelta(minutes=30))
    stop = asyncio.Event()
    passes = {"a": 0, "b": 0, "busy": 0}

    async def worker(name: str) -> None:
        while not stop.is_set():
            result = await ingest.ingest_once(SETTINGS, live=name == "b")
            passes[name] += 1
            passes["busy"] += result.busy
            await asyncio.sleep(0.005)

    workers = [asyncio.ensure_future(worker("a")), asyncio.ensure_future(worker("b"))]
    expected = 0
    for round_ in range(8):
        for s in sessions:
            s.bytes_out += MB
            expected += MB
        await simnas.interim(sessions, now - timedelta(minutes=20 - round_))
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*workers)
    while (await ingest.ingest_once(SETTINGS)).more:
        pass
    await ingest.ingest_once(SETTINGS)
    assert await total_out() == expected
    assert passes["a"] > 1 and passes["b"] > 1
    # what a box asks when its own pass found another's under way
    head = int((await db.fetch("SELECT MAX(id) AS m FROM radacct_changes"))[0]["m"])
    assert await ingest.counted({head - 1, head})
    sessions[0].bytes_out += MB
    await simnas.interim(sessions[:1], now)
    newer = int((await db.fetch("SELECT MAX(id) AS m FROM radacct_changes"))[0]["m"])
    assert newer > head and not await ingest.counted({head, newer})


async def test_a_pass_does_not_wait_for_another_boxs_pass(db_url: str) -> None:
    s = simnas.SimSession("alice", "s-alice", "127.0.0.1", "100.64.0.9")
    await simnas.start([s], datetime.now(UTC) - timedelta(minutes=5))
    if db.current_dialect() != "postgres":
        # SQLite is one box: a pass waits its turn behind another writer (BEGIN
        # IMMEDIATE) and counts once.
        import sqlite3

        other_lite = sqlite3.connect(db_url.split("://", 1)[1], isolation_level=None)
        other_lite.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.3, other_lite.rollback)
        t = time.perf_counter()
        result = await ingest.ingest_once(SETTINGS)
        other_lite.close()
        assert not result.busy and result.started == 1 and time.perf_counter() - t >= 0.25
        return
    import psycopg

    from dns_filter import dburl

    other = await asyncio.to_thread(psycopg.connect, dburl.parse(db_url).dsn)
    try:
        # Another box's pass, under way: it holds usage_ingest's row.
        await asyncio.to_thread(other.execute,
                                "SELECT id FROM usage_ingest WHERE id = 1 FOR UPDATE")
        for live in (True, False):
            t = time.perf_counter()
            result = await ingest.ingest_once(SETTINGS, live=live)
            assert result.busy and result.rows == 0
            assert time.perf_counter() - t < 0.5, "a pass queued behind another box's"
        await asyncio.to_thread(other.rollback)
    finally:
        await asyncio.to_thread(other.close)
    assert (await ingest.ingest_once(SETTINGS)).started == 1


async def test_a_backlog_is_taken_in_bounded_chunks(db_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "CHANGE_BATCH", 10)
    monkeypatch.setattr(ingest, "CHUNK_BATCHES", 2)
    monkeypatch.setattr(ingest, "MAX_BATCHES", 4)
    sessions = [simnas.SimSession(f"b{i:03d}", f"t{i:03d}", "127.0.0.1", f"100.64.2.{i + 1}")
                for i in range(50)]
    await simnas.start(sessions, datetime.now(UTC) - timedelta(minutes=5))
    seen = []
    real = ingest._chunk

    async def counting(*args: Any) -> Any:
        result, daily = await real(*args)
        seen.append(result.rows)
        return result, daily

    monkeypatch.setattr(ingest, "_chunk", counting)
    first = await ingest.ingest_once(SETTINGS)
    # 4 batches of 10 per pass, 2 per transaction: two transactions of 20 rows
    assert first.started == 40 and first.more and seen == [20, 20]
    second = await ingest.ingest_once(SETTINGS)
    assert second.started == 10 and not second.more
