"""The resolver's heartbeat row in the boxes table, on SQLite and PostgreSQL, and its
connections' application_name (issue 16)."""

from __future__ import annotations

import asyncio
import time

from dns_filter import dburl
from dns_filter.heartbeat import Heartbeat
from portal.store import boxes, db


def test_resolver_heartbeat_upserts_one_row(db_url: str) -> None:
    beat = Heartbeat(dburl.with_application_name(db_url, "edge-7"), "edge-7")
    try:
        beat.beat(now=1000.0)
        beat.beat(now=1005.0)
        if dburl.dialect_of(db_url) == "postgres":
            names = beat._connect().execute(
                "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            ).fetchone()
            assert names == ("edge-7",)
    finally:
        beat.close()

    async def read() -> list[boxes.Box]:
        await db.open_db(db_url)
        try:
            return await boxes.all_boxes()
        finally:
            await db.close_db()

    [row] = asyncio.run(read())
    assert (row.name, row.role, row.last_seen) == ("edge-7", "resolver", 1005.0)
    assert abs(row.started_at - time.time()) < 60


def test_enforcer_connection_carries_the_box_name(db_url: str) -> None:
    async def name() -> str | None:
        await db.open_db(db_url, application_name="edge-8")
        try:
            if db.current_dialect() != "postgres":
                return None
            rows = await db.fetch("SELECT current_setting('application_name') AS n")
            return str(rows[0]["n"])
        finally:
            await db.close_db()

    got = asyncio.run(name())
    assert got == ("edge-8" if dburl.dialect_of(db_url) == "postgres" else None)
