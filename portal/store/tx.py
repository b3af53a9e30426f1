"""The one transaction helper: every use case that writes runs through `transaction`.

A use case is an async function of one argument, the transaction connection
(Tortoise routes ORM calls without `using_db` to it as well).
`transaction(use_case)` runs it in one transaction and retries the WHOLE
function when the database is busy, within a total budget (~2 s); past the budget
it raises `Busy` (503 with
Retry-After for the web, a clear message for the CLI), with nothing written.
So a use case must not do network I/O (ACS, CoA, SMTP, HTTP): record the
intent in one transaction, call out, record the result in another.

SQLite (embedded; FreeRADIUS writes accounting into the same file):
- The write lock is taken up front with `BEGIN IMMEDIATE`. A deferred
  transaction that reads and then writes cannot be upgraded while another
  writer holds the lock and fails at once with "database is locked" whatever
  the busy_timeout (measured: 2-14 % of purchases answered 500 with a real
  FreeRADIUS writing accounting); an immediate one waits for it.
- Statements run inline on the event loop on this module's own sqlite3
  connection, not through aiosqlite's helper thread: once the write lock is
  held nothing can block them, and the ~25 statements of a purchase each cost
  a thread hop and a loop wake-up through aiosqlite (bench/billing_bench.py:
  108-114 purchases/s before, see the commit for the figures after). Only the
  wait for the lock runs on a thread, so the loop keeps serving meanwhile.
- One transaction at a time per process (SQLite has one writer anyway).

PostgreSQL (ISP scale): Tortoise's pooled transaction; `lock=` names the
subscriber whose row is locked first (`SELECT ... FOR UPDATE`), so two use
cases of one subscriber are decided one after the other; lock waits are
bounded by `lock_timeout` (the remaining budget), and serialization failures
and deadlocks (SQLSTATE 40001, 40P01) are retried like a busy SQLite.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.sqlite.client import SqliteTransactionWrapper
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal.errors import PortalError
from portal.store import db

T = TypeVar("T")
UseCase = Callable[[BaseDBAsyncClient], Awaitable[T]]

BUDGET_S = 2.0  # a subscriber's click: past this the answer is 503 + Retry-After
DAEMON_BUDGET_S = 10.0  # the enforcer and the ingest can wait longer than a click
RETRY_AFTER_S = 1
_RETRY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock timeout

_current: ContextVar[BaseDBAsyncClient | None] = ContextVar("ispedge_tx", default=None)

# Tests set this to a function called before each commit with the attempt number
# (1, 2, ...); raising a busy error there exercises the retry path.
_before_commit: Callable[[int], None] | None = None


class Busy(PortalError):
    """The database stayed busy for the whole budget: try again shortly."""

    status = 503

    def __init__(self) -> None:
        super().__init__("busy", "the database is busy (locked by another writer): "
                         "please try again in a moment",
                         retry_after=RETRY_AFTER_S)


def is_busy(exc: BaseException) -> bool:
    """A lock or serialization conflict that a retry of the whole use case can resolve."""
    for err in _chain(exc):
        if isinstance(err, sqlite3.OperationalError):
            if getattr(err, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY,
                                                          sqlite3.SQLITE_LOCKED):
                return True
            text = str(err)
            if "database is locked" in text or "database table is locked" in text:
                return True
        if getattr(err, "sqlstate", None) in _RETRY_SQLSTATES:
            return True
    return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        todo += [e for e in (err.__cause__, err.__context__) if e is not None]
        todo += [a for a in err.args if isinstance(a, BaseException)]


async def transaction(use_case: UseCase[T], *, lock: str | None = None,
                      budget_s: float = BUDGET_S) -> T:
    """Run use_case(tx) in one transaction, retried whole while the database is busy.

    Called from inside another use case's transaction, it joins that transaction:
    the outer one commits, rolls back and retries the whole.
    """
    outer = _current.get()
    if outer is not None:
        return await use_case(outer)
    deadline = time.monotonic() + budget_s
    attempt = 0
    while True:
        attempt += 1
        try:
            if db.current_dialect() == "sqlite":
                return await _run_sqlite(use_case, deadline, attempt)
            return await _run_postgres(use_case, lock, deadline, attempt)
        except Exception as exc:
            if not is_busy(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise Busy() from exc
            # Jitter: two portals retrying in step would collide again.
            await asyncio.sleep(min(left, random.uniform(0.002, 0.02) * attempt))


# --- SQLite ---------------------------------------------------------------------

class _Writer:
    """This process's write connection to the SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.lock = asyncio.Lock()

    def begin(self, wait_ms: int) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {max(0, wait_ms)}")
        self.conn.execute("BEGIN IMMEDIATE")


_writer: _Writer | None = None


def _sqlite_writer() -> _Writer:
    global _writer
    path = db.sqlite_file()
    if _writer is None or _writer.path != path:
        close()
        _writer = _Writer(path)
    return _writer


def close() -> None:
    """Forget the write connection (the database was closed or replaced)."""
    global _writer
    if _writer is not None:
        _writer.conn.close()
    _writer = None


async def _run_sqlite(use_case: UseCase[T], deadline: float, attempt: int) -> T:
    writer = _sqlite_writer()
    async with writer.lock:
        try:
            writer.begin(0)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            # Someone else writes: wait for the lock off the loop, within the budget.
            wait_ms = int((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                raise
            await asyncio.to_thread(writer.begin, wait_ms)
        tx = _inline_client(writer.conn)
        token = connections.set(tx.connection_name, tx)
        mine = _current.set(tx)
        try:
            result = await use_case(tx)
            if _before_commit is not None:
                _before_commit(attempt)
            writer.conn.commit()
            return result
        except BaseException:
            if writer.conn.in_transaction:
                writer.conn.rollback()
            raise
        finally:
            _current.reset(mine)
            connections.reset(token)


def _inline_client(conn: sqlite3.Connection) -> BaseDBAsyncClient:
    """A Tortoise transaction client whose statements run inline on `conn`."""
    tx = SqliteTransactionWrapper(cast(Any, db.conn()))
    tx._connection = cast(Any, _InlineConnection(conn))
    tx._finalized = False
    return tx


class _InlineConnection:
    """The slice of aiosqlite.Connection that Tortoise's SQLite client uses, inline."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def total_changes(self) -> int:
        return self._conn.total_changes

    async def execute(self, sql: str, parameters: Any = None) -> _Cursor:
        return _Cursor(self._conn.execute(sql, parameters or ()))

    async def execute_insert(self, sql: str, parameters: Any = None) -> tuple[int | None]:
        return (self._conn.execute(sql, parameters or ()).lastrowid,)

    async def execute_fetchall(self, sql: str, parameters: Any = None) -> list[Any]:
        return self._conn.execute(sql, parameters or ()).fetchall()

    async def executemany(self, sql: str, parameters: Any) -> None:
        self._conn.executemany(sql, parameters)

    async def executescript(self, sql: str) -> None:
        raise RuntimeError("executescript would commit the transaction")

    async def commit(self) -> None:
        raise RuntimeError("the transaction helper commits, not the use case")

    async def rollback(self) -> None:
        raise RuntimeError("the transaction helper rolls back, not the use case")


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def close(self) -> None:
        self._cursor.close()


# --- PostgreSQL -----------------------------------------------------------------

async def _run_postgres(use_case: UseCase[T], lock: str | None, deadline: float,
                        attempt: int) -> T:
    async with in_transaction() as tx:
        # Measured after the pool gave us a connection: waiting for one counts against
        # the budget too (8 writes blocked on 5 pooled connections answered 503 after
        # 4 s instead of 2 when the budget was read before). lock_timeout bounds every
        # lock wait of this transaction by what is left.
        wait_ms = int((deadline - time.monotonic()) * 1000)
        if wait_ms <= 0:
            raise Busy()
        await tx.execute_query(f"SET LOCAL lock_timeout = {wait_ms}")
        if lock is not None:
            await tx.execute_query(
                "SELECT id FROM subscribers WHERE username = $1 FOR UPDATE", [lock])
        mine = _current.set(tx)
        try:
            result = await use_case(tx)
        finally:
            _current.reset(mine)
        if _before_commit is not None:
            _before_commit(attempt)
        return result
