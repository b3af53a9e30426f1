"""Hot-path reads without a thread hop on embedded SQLite.

aiosqlite runs every statement on a helper thread and wakes the event loop
through a pipe; for the portal's per-request point lookups (indexed, tens of
microseconds) that hand-off costs more than the query. On SQLite this module
keeps one read-only connection per process and runs such lookups inline; in
WAL mode each statement reads the latest committed data and never waits for a
writer. On PostgreSQL it is simply portal.store.db.fetch (asyncpg has no thread hop).
Only for short indexed reads: anything that could scan belongs on portal.store.db.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from portal.store import db

_conn: sqlite3.Connection | None = None
_path: str | None = None


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _connection() -> sqlite3.Connection:
    global _conn, _path
    path = db.sqlite_file()
    if _conn is None or path != _path:
        if _conn is not None:
            _conn.close()
        _conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                check_same_thread=False)
        _conn.execute("PRAGMA busy_timeout = 1000")
        _conn.execute("PRAGMA query_only = 1")
        _conn.row_factory = _dict_row
        _path = path
    return _conn


async def fetch(sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    if db.current_dialect() != "sqlite":
        return await db.fetch(sql, params)
    return _connection().execute(sql, params or []).fetchall()


def close() -> None:
    global _conn, _path
    if _conn is not None:
        _conn.close()
    _conn, _path = None, None
