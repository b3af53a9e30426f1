"""Following an id-ordered table gap-safely, and being woken when it grows.

The rule (which ids may still commit, when a gap is given up) is
dns_filter.gapcursor's, shared with the resolver; this module runs its reads
through the portal's connection. Tables followed: change_journal (the enforcer)
and radacct_changes (the usage ingest, the enforcer's session starts).

On PostgreSQL migration 0013's triggers NOTIFY after a commit that inserted
into them (channels JOURNAL_CHANNEL, RADACCT_CHANNEL); `Listener` LISTENs on
its own connection and calls back, so a follower wakes at once and polls
only as the fallback. SQLite has no NOTIFY: followers poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from dns_filter import dburl, gapcursor
from dns_filter.gapcursor import GapCursor
from portal.store import db

log = logging.getLogger("ispedge.follow")

JOURNAL_CHANNEL = "ispedge_journal"
RADACCT_CHANNEL = "ispedge_radacct"


def _postgres() -> bool:
    return db.current_dialect() == "postgres"


async def start_cursor(table: str, id_column: str) -> GapCursor:
    """The head of `table`, with the ids just below it that may still commit as gaps."""
    pg = _postgres()
    rows = await db.fetch(gapcursor.head_sql(table, id_column, pg), [gapcursor.START_LOOKBACK])
    ids = [int(r["id"]) for r in rows if r["id"] is not None]
    floor = int(rows[0]["floor"]) if rows else 0
    return GapCursor.starting_at(floor, ids, gapcursor.snapshot_of(rows[0] if rows else None),
                                 time.monotonic())


async def read_batch(cursor: GapCursor, table: str, id_column: str, columns: str,
                     limit: int = gapcursor.DEFAULT_BATCH, now: float | None = None,
                     ) -> tuple[list[dict[str, Any]], bool]:
    """The rows after `cursor` and in its open gaps, at most `limit`; advances it.

    Returns (the rows new to the cursor, id order; whether the batch was full).
    `now`: the clock of the cursor's gap ages (default monotonic; a cursor kept in
    the database uses the wall clock).
    """
    pg = _postgres()
    sql = gapcursor.read_sql(table, id_column, columns, pg, pg and bool(cursor.gaps))
    rows = await db.fetch(sql, gapcursor.read_params(cursor, pg, limit))
    snapshot = gapcursor.snapshot_of(rows[0]) if rows else None
    found = {int(r["id"]): r for r in rows if r["id"] is not None}
    fresh = cursor.advance(found, snapshot, time.monotonic() if now is None else now, limit)
    return [found[i] for i in fresh], len(found) >= limit


async def nap(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float,
              clear: bool = True) -> None:
    """A follower's wait between passes: until `stop`, `wake` (a Listener's callback
    sets it) or `seconds`, whichever comes first. `wake` is cleared on the way out, so
    a wake that came during the pass just done makes this return at once; clear=False
    leaves that to a caller that clears it as its pass begins (the enforcer)."""
    waits = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    _, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    if wake is not None and clear:
        wake.clear()


class Listener:
    """LISTEN on PostgreSQL channels; `on_notify()` runs in the loop at each NOTIFY.

    Its own asyncpg connection (Tortoise's pool would hand it back to others);
    reconnects in the background after a loss; a no-op on SQLite.
    """

    def __init__(self, url: str, channels: Iterable[str], on_notify: Callable[[], None]):
        self.url = url
        self.channels = tuple(channels)
        self.on_notify = on_notify
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.connected = False  # LISTENing now: a follower may poll less often

    def start(self) -> None:
        if dburl.dialect_of(self.url) == "postgres" and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
            self._task = None

    async def _run(self) -> None:
        import asyncpg

        while not self._stop.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(dburl.parse(self.url).dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                for channel in self.channels:
                    await conn.add_listener(channel, self._notified)
                self.connected = True
                self.on_notify()  # a row may have committed before LISTEN took effect
                stop_wait = asyncio.ensure_future(self._stop.wait())
                lost_wait = asyncio.ensure_future(lost.wait())
                await asyncio.wait([stop_wait, lost_wait],
                                   return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                lost_wait.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - polling carries on meanwhile
                log.debug("LISTEN connection failed (%s); polling meanwhile", exc)
            finally:
                self.connected = False
                if conn is not None and not conn.is_closed():
                    await conn.close()
            if not self._stop.is_set():
                await asyncio.sleep(1.0)

    def _notified(self, *_args: object) -> None:
        self.on_notify()
