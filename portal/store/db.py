"""The one way into the database: opening it, and the raw-SQL API beside the ORM.

One URL, SQLite (WAL) or PostgreSQL. Raw SQL is written once with '?'
placeholders and runs on both dialects: `fetch`, `execute` and `execute_many`
go through Tortoise's connection (inside a `portal.store.tx.run` use case, the
transaction's), `fetch_indexed` is for a hot request's short indexed reads.
Writes belong in a use case run by portal.store.tx.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.fields import DatetimeField
from tortoise.models import Model

from dns_filter import dburl

if TYPE_CHECKING:
    from tortoise.backends.sqlite.client import SqliteClient

MODELS: dict[str, Iterable[str | ModuleType]] = {"models": ["portal.store.models"]}

# busy_timeout: FreeRADIUS, the enforcer and the portal all write this file;
# a writer waits for the lock instead of failing at once.
PG_POOL_MAX = 20  # connections per process by default (the URL's own maxsize= wins);
# each daemon passes its own ([portal] / [enforcer] db_pool_max, README "Connections")
SQLITE_PRAGMAS = "journal_mode=WAL&busy_timeout=5000&foreign_keys=ON&synchronous=NORMAL"


# Database URLs: dns_filter.dburl is the one parser, so the portal and the resolver
# accept (and refuse, with one message) exactly the same URLs.
def dialect_of(url: str) -> str:
    return dburl.dialect_of(url)


def sqlite_path(url: str) -> Path:
    return Path(dburl.sqlite_path(url))


def _tortoise_url(url: str, pool_max: int | None = None) -> str:
    parsed = dburl.parse(url)
    if parsed.kind == "sqlite":
        path = Path(parsed.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite://{path}?{SQLITE_PRAGMAS}"
    # postgresql://: Tortoise's asyncpg backend. Its default pool of 5 connections let
    # five writes waiting on one held row lock queue every other request behind them,
    # past its 2 s budget (tests/portal/test_write_contention.py: a buy answered its
    # 503 after 4.0 s). A transaction holds a connection while it waits, so the pool
    # is sized for the concurrent writes of a busy portal; PostgreSQL's own
    # max_connections bounds the sum over portals (README, ISP scale).
    dsn = parsed.dsn
    if "maxsize=" not in dsn:
        dsn += ("&" if "?" in dsn else "?") + f"maxsize={pool_max or PG_POOL_MAX}"
    return dsn


# The open database's dialect and SQLite file, kept here because asking Tortoise
# (connections.get) costs more than the indexed reads of a hot request that ask.
_dialect: str | None = None
_sqlite_file: str | None = None


async def open_db(url: str, application_name: str | None = None,
                  pool_max: int | None = None) -> None:
    """application_name: shown in pg_stat_activity (an edge box's name); PostgreSQL only.
    pool_max: the most connections this process opens (PostgreSQL; default PG_POOL_MAX)."""
    global _dialect, _sqlite_file
    # Global fallback: Sanic runs handlers in tasks created before init ran.
    named = dburl.with_application_name(url, application_name or "")
    await Tortoise.init(db_url=_tortoise_url(named, pool_max), modules=MODELS,
                        _enable_global_fallback=True)
    # Connect now, not on the first request: Tortoise takes a lock and then
    # connects, and a client that gives up during that first connect cancels the
    # handler with the lock held, hanging every later request.
    await conn().execute_query("SELECT 1")
    _dialect = dialect_of(url)
    _sqlite_file = str(sqlite_path(url)) if _dialect == "sqlite" else None


async def close_db() -> None:
    global _dialect, _sqlite_file
    from portal.store import tx

    _dialect = _sqlite_file = None
    tx.close()
    _close_reader()
    await Tortoise.close_connections()


def conn() -> BaseDBAsyncClient:
    return get_connection("default")


def current_dialect() -> str:
    if _dialect is not None:
        return _dialect
    return "postgres" if conn().capabilities.dialect == "postgres" else "sqlite"


def sqlite_file() -> str:
    """The open SQLite database's file (only on SQLite)."""
    return _sqlite_file or cast("SqliteClient", conn()).filename


def placeholders(sql: str) -> str:
    """'?' placeholders as the open dialect wants them ($1, $2, ... on PostgreSQL)."""
    if current_dialect() != "postgres":
        return sql
    out, n = [], 0
    for ch in sql:
        if ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
    return "".join(out)


# The SQLite write connection of the use case running now, set by portal.store.tx
# around each use case of its group commit (None elsewhere). fetch/execute/
# execute_many run on it directly, as Tortoise's client would through
# portal.store.tx's inline connection, with the same results and the same
# exception types (OperationalError, IntegrityError), but without looking the
# connection up (get_connection checks the event loop on every call), the client's
# context manager and its debug logging: those were ~15 % of the portal's CPU per
# Buy Data purchase, whose ~20 statements all come here (py-spy over
# bench/billing_bench.py --arrival-rate 520 --writer-only, 2026-12-02).
inline_sqlite: ContextVar[sqlite3.Connection | None] = ContextVar("ispedge_inline_sqlite",
                                                                  default=None)
R = TypeVar("R")


def _inline(call: Callable[[], R]) -> R:
    try:
        return call()
    except sqlite3.OperationalError as exc:
        raise OperationalError(exc)  # noqa: B904 -- as Tortoise raises it
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(exc)  # noqa: B904


async def fetch(sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Plain SQL with '?' placeholders on both dialects."""
    inline = inline_sqlite.get()
    if inline is not None:
        return _inline(lambda: [dict(row) for row in inline.execute(sql, params or ())])
    return list(await conn().execute_query_dict(placeholders(sql), params or []))


async def execute(sql: str, params: list[Any] | None = None) -> int:
    """The rows the statement changed (or returned, for ... RETURNING)."""
    inline = inline_sqlite.get()
    if inline is not None:
        def run(c: sqlite3.Connection = inline) -> int:
            start = c.total_changes
            returned = c.execute(sql, params or ()).fetchall()
            return (c.total_changes - start) or len(returned)
        return _inline(run)
    rows, _ = await conn().execute_query(placeholders(sql), params or [])
    return rows


def db_time(value: datetime) -> object:
    """An aware datetime as a DatetimeField column stores it: on SQLite the text
    Tortoise's sqlite adapter writes (`isoformat(" ")`, offset kept), so raw SQL and
    the ORM store, compare and sort the same; on PostgreSQL the datetime itself."""
    return value if current_dialect() == "postgres" else value.isoformat(" ")


def from_db_time(value: object) -> datetime:
    """A DatetimeField column read by raw SQL (ISO text on SQLite) as an aware UTC
    datetime, like the ORM returns it."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


M = TypeVar("M", bound=Model)


async def fetch_model(model: type[M], sql: str, params: list[Any], *,
                      indexed: bool = False) -> M | None:
    """The first row of `SELECT * FROM <model's table> ...` as the model, built like
    the ORM builds what it reads (Model._init_from_db), without its query building:
    for the hot path's point reads inside a use case, or (indexed=True) a request's
    short indexed read through `fetch_indexed`. None: no row."""
    rows = await (fetch_indexed(sql, params) if indexed else fetch(sql, params))
    if not rows:
        return None
    row = rows[0]
    for name, field in model._meta.fields_map.items():
        # SQLite gives text; fromisoformat is far cheaper than the ORM's iso8601
        if isinstance(field, DatetimeField) and isinstance(row.get(name), str):
            row[name] = datetime.fromisoformat(row[name])
    return model._init_from_db(**row)


async def execute_many(sql: str, rows: list[list[Any]]) -> None:
    """One statement for many rows (a batch), in the current transaction if any."""
    if not rows:
        return
    inline = inline_sqlite.get()
    if inline is not None:
        _inline(lambda: inline.executemany(sql, rows))
        return
    await conn().execute_many(placeholders(sql), rows)


# --- fetch_indexed: hot-path reads without a thread hop on embedded SQLite ---------
# aiosqlite runs every statement on a helper thread and wakes the event loop
# through a pipe; for the portal's per-request point lookups (indexed, tens of
# microseconds) that hand-off costs more than the query. On SQLite this keeps one
# read-only connection per process and runs such lookups inline; in WAL mode each
# statement reads the latest committed data and never waits for a writer. On
# PostgreSQL it is simply `fetch` (asyncpg has no thread hop). Only for short
# indexed reads: anything that could scan belongs on `fetch`.

_reader: sqlite3.Connection | None = None
_reader_path: str | None = None


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _reader_connection() -> sqlite3.Connection:
    global _reader, _reader_path
    path = sqlite_file()
    if _reader is None or path != _reader_path:
        _close_reader()
        _reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                  check_same_thread=False)
        _reader.execute("PRAGMA busy_timeout = 1000")
        _reader.execute("PRAGMA query_only = 1")
        _reader.row_factory = _dict_row
        _reader_path = path
    return _reader


def _close_reader() -> None:
    global _reader, _reader_path
    if _reader is not None:
        _reader.close()
    _reader, _reader_path = None, None


async def fetch_indexed(sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    if current_dialect() != "sqlite":
        return await fetch(sql, params)
    rows: list[dict[str, Any]] = _reader_connection().execute(sql, params or []).fetchall()
    return rows


# --- the connection budget (README, "Connections") ----------------------------------
# Each daemon's most connections to PostgreSQL; tests/enforcer/test_connection_budget.py
# compares pg_stat_activity with them.
RESOLVER_CONNECTIONS_PER_WORKER = 4  # policy reader, LISTEN, heartbeat, block log
ENFORCER_EXTRA_CONNECTIONS = 1  # its LISTEN connection, beside the pool
CLI_CONNECTIONS = 2  # `ispedge db prune/backup`, an operator's command: transient


def connection_budget(*, portals: int, portal_pool: int, boxes: int, enforcer_pool: int,
                      resolver_workers: int, freeradius: int = 0) -> int:
    """The most connections ispedge opens to one PostgreSQL: P portals, N edge boxes
    (an enforcer and a resolver of W workers each), FreeRADIUS's own pools (its
    `pool { max }` per server), and room for one CLI command or backup."""
    return (portals * portal_pool
            + boxes * (enforcer_pool + ENFORCER_EXTRA_CONNECTIONS
                       + resolver_workers * RESOLVER_CONNECTIONS_PER_WORKER)
            + freeradius + CLI_CONNECTIONS)
