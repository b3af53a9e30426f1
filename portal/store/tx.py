"""The one transaction helper: every use case that writes runs through `transaction`.

A use case is an async function of one argument, the transaction connection
(Tortoise routes ORM calls without `using_db` to it as well).
`transaction(use_case)` runs it in one transaction and retries the WHOLE
function when the database is busy, within a total budget (~2 s); past the budget
it raises `Busy` (503 with Retry-After for the web, a clear message for the CLI),
with nothing written.
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
  108-114 purchases/s before; 256-307/s after, with the raw-SQL purchase path,
  at 2.1-2.9 ms of portal CPU per purchase).
- Group commit: the process's write use cases queue, and one drainer takes the
  write lock once for a batch (BEGIN IMMEDIATE, probed every PROBE_S from the
  loop while another process holds it, instead of SQLite's busy handler that
  sleeps up to 100 ms between tries), runs the queued use cases one after the
  other each in its own SAVEPOINT (a failing one is rolled back alone), holds
  the lock at most BATCH_HOLD_S so FreeRADIUS is never starved, commits once and
  only then answers every caller, so a failure (an Idempotency-Key twin's
  IntegrityError) is never seen before what it replays is committed. A busy
  attempt is retried whole by `transaction`, within its budget, as before; each
  use case runs in its caller's contextvars context (Tortoise's routing,
  `_current`, journal.writing_as). What it buys (bench/billing_bench.py, one
  worker, closed loop, 100 subscribers, with the FreeRADIUS-shaped writer, same
  sitting, load average 5-6 on 2 shared cores): 15-27 purchases/s with 70-169
  answers 503 (the lock lost to the writer for the whole 2 s budget) before,
  39/s with 0 errors after.

PostgreSQL (ISP scale): Tortoise's pooled transaction; `lock=` names the
subscriber whose row is locked first (`SELECT ... FOR UPDATE`), so two use
cases of one subscriber are decided one after the other; lock waits are
bounded by `lock_timeout` (the remaining budget), and serialization failures
and deadlocks (SQLSTATE 40001, 40P01) are retried like a busy SQLite.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
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
BATCH_HOLD_S = 0.010  # SQLite: the longest a batch holds the write lock (FreeRADIUS waits)
PROBE_S = 0.001  # SQLite: how often a busy write lock is probed again
CHECKPOINT_S = 1.0  # SQLite: how often the WAL is checkpointed, off the event loop
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
    """This process's write connection to the SQLite file, and its group commit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA busy_timeout = 0")  # we probe from the loop instead
        # SQLite checkpoints the WAL inside the COMMIT that fills it past 1000 pages:
        # here that is on the event loop, and copying the pages plus the fsync stalled
        # every request for up to ~110 ms (bench/billing_bench.py --arrival-rate 520
        # with the accounting writer: p99 99.8 ms in a run with such a stall, 15.8 ms
        # in one without). The commits here never checkpoint; a thread does, PASSIVE
        # (it never waits for or blocks a writer), every CHECKPOINT_S.
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self.queue: deque[_Job] = deque()
        self.drainer: asyncio.Task[None] | None = None
        self.stopping = threading.Event()
        self.checkpointer = threading.Thread(target=self._checkpoint_loop,
                                             name="ispedge-wal-checkpoint", daemon=True)
        self.checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            while not self.stopping.wait(CHECKPOINT_S):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy or gone: the next round (or FreeRADIUS's own) does it
        finally:
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.conn.close()

    async def run(self, use_case: UseCase[T], deadline: float, attempt: int) -> T:
        """One attempt of use_case in the next batch; its result or exception once the
        batch has committed."""
        loop = asyncio.get_running_loop()
        job = _Job(use_case, contextvars.copy_context(), deadline, attempt, loop.create_future())
        self.queue.append(job)
        if self.drainer is None or self.drainer.done() or self.drainer.get_loop() is not loop:
            # An empty context: each job runs in its caller's, never in the drainer's.
            self.drainer = loop.create_task(self._drain(), context=contextvars.Context())
        try:
            return cast(T, await job.future)
        except asyncio.CancelledError:
            job.cancelled = True  # not started yet: it never will be
            raise

    async def _drain(self) -> None:
        while self.queue:
            if not await self._lock():
                continue
            batch: list[tuple[_Job, object, BaseException | None]] = []
            held_until = time.monotonic() + BATCH_HOLD_S
            while self.queue and (not batch or time.monotonic() < held_until):
                job = self.queue.popleft()
                if job.cancelled:
                    continue
                self.conn.execute("SAVEPOINT use_case")
                try:
                    result = await asyncio.create_task(self._attempt(job), context=job.context)
                    self.conn.execute("RELEASE use_case")
                    batch.append((job, result, None))
                except BaseException as exc:  # delivered to its caller, after the commit
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK TO use_case")
                        self.conn.execute("RELEASE use_case")
                    batch.append((job, None, exc))
            try:
                self.conn.commit()
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.conn.rollback()
                batch = [(job, None, err or exc) for job, _, err in batch]
            for job, result, err in batch:
                if job.future.done():
                    continue
                if err is None:
                    job.future.set_result(result)
                else:
                    job.future.set_exception(err)
            # Let the callers (and whoever else is ready) run before the next batch.
            await asyncio.sleep(0)

    async def _lock(self) -> bool:
        """BEGIN IMMEDIATE, probed every PROBE_S while another process writes. False
        when every waiting job's deadline passed first (they got the busy error)."""
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    self._fail_all(exc)
                    return False
                now = time.monotonic()
                for job in [j for j in self.queue if j.deadline <= now or j.cancelled]:
                    self.queue.remove(job)
                    if not job.future.done():  # `transaction` answers Busy
                        job.future.set_exception(sqlite3.OperationalError(str(exc)))
                if not self.queue:
                    return False
                await asyncio.sleep(PROBE_S)

    def _fail_all(self, exc: BaseException) -> None:
        while self.queue:
            job = self.queue.popleft()
            if not job.future.done():
                job.future.set_exception(exc)

    async def _attempt(self, job: _Job) -> object:
        """Runs in the caller's context: Tortoise's routing, _current and the journal
        origin are the caller's."""
        tx = _inline_client(self.conn)
        token = connections.set(tx.connection_name, tx)
        mine = _current.set(tx)
        raw = db.inline_sqlite.set(self.conn)
        try:
            result = await job.use_case(tx)
            if _before_commit is not None:
                _before_commit(job.attempt)
            return result
        finally:
            db.inline_sqlite.reset(raw)
            _current.reset(mine)
            connections.reset(token)


@dataclass(eq=False)
class _Job:
    use_case: UseCase[Any]
    context: contextvars.Context
    deadline: float
    attempt: int
    future: asyncio.Future[Any]
    cancelled: bool = False


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
        _writer.close()
    _writer = None


async def _run_sqlite(use_case: UseCase[T], deadline: float, attempt: int) -> T:
    return await _sqlite_writer().run(use_case, deadline, attempt)


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
