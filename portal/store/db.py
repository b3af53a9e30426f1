"""Opening the database: one URL, SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient

MODELS = {"models": ["portal.store.models"]}

# busy_timeout: FreeRADIUS, the enforcer and the portal all write this file;
# a writer waits for the lock instead of failing at once.
SQLITE_PRAGMAS = "journal_mode=WAL&busy_timeout=5000&foreign_keys=ON&synchronous=NORMAL"


def dialect_of(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgres", "postgresql", "asyncpg", "psycopg"):
        return "postgres"
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgres://")


def sqlite_path(url: str) -> Path:
    return Path(url.split("://", 1)[1].split("?", 1)[0])


def _tortoise_url(url: str) -> str:
    if dialect_of(url) == "sqlite":
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite://{path}?{SQLITE_PRAGMAS}"
    parts = urlsplit(url)
    return url.replace(f"{parts.scheme}://", "postgres://", 1)


# The open database's dialect and SQLite file, kept here because asking Tortoise
# (connections.get) costs more than the indexed reads of a hot request that ask.
_dialect: str | None = None
_sqlite_file: str | None = None


async def open_db(url: str) -> None:
    global _dialect, _sqlite_file
    # Global fallback: Sanic runs handlers in tasks created before init ran.
    await Tortoise.init(db_url=_tortoise_url(url), modules=MODELS, _enable_global_fallback=True)
    # Connect now, not on the first request: Tortoise takes a lock and then
    # connects, and a client that gives up during that first connect cancels the
    # handler with the lock held, hanging every later request.
    await conn().execute_query("SELECT 1")
    _dialect = dialect_of(url)
    _sqlite_file = str(sqlite_path(url)) if _dialect == "sqlite" else None


async def close_db() -> None:
    global _dialect, _sqlite_file
    _dialect = _sqlite_file = None
    await Tortoise.close_connections()


def conn() -> BaseDBAsyncClient:
    return connections.get("default")


def current_dialect() -> str:
    if _dialect is not None:
        return _dialect
    return "postgres" if conn().capabilities.dialect == "postgres" else "sqlite"


def sqlite_file() -> str:
    """The open SQLite database's file (only on SQLite)."""
    return _sqlite_file or conn().filename  # type: ignore[attr-defined]


async def fetch(sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Plain SQL with '?' placeholders on both dialects."""
    if current_dialect() == "postgres":
        sql = _numbered(sql)
    return list(await conn().execute_query_dict(sql, params or []))


async def execute(sql: str, params: list[Any] | None = None) -> int:
    if current_dialect() == "postgres":
        sql = _numbered(sql)
    rows, _ = await conn().execute_query(sql, params or [])
    return rows


def _numbered(sql: str) -> str:
    out, n = [], 0
    for ch in sql:
        if ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
    return "".join(out)
