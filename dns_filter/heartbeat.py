"""The resolver's heartbeat in the boxes table (issue 16: edge boxes).

Every `interval_s` one single-row upsert says this box's resolver is alive
(`ispedge box list` shows it). The write runs on a pool thread over its own
connection, never on the answer path; a failed write is logged and tried again
at the next tick. The table is part of the database contract the resolver
shares with the portal (portal/store/migrations, 0014), not portal code.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import task, threads

from dns_filter import dburl

log = logging.getLogger("dns_filter.heartbeat")

ROLE = "resolver"


class Heartbeat:
    def __init__(self, url: str, box: str, interval_s: float = 5.0,
                 cursor: Callable[[], int | None] | None = None) -> None:
        parsed = dburl.parse(url)
        self.kind, self.path, self.mark, self.dsn = (parsed.kind, parsed.path, parsed.mark,
                                                     parsed.dsn)
        self.box = box
        self.interval_s = interval_s
        # The journal id this resolver has read (its policy follower's cursor): the
        # journal is pruned only behind it while the box is seen (issue 17). With
        # several workers each writes its own; the row keeps the last one written.
        self.cursor = cursor or (lambda: None)
        self.started_at = time.time()
        self.failures = 0
        self._conn: Any = None
        self._lock = threading.Lock()
        self._loop: task.LoopingCall | None = None

    def _connect(self) -> Any:
        if self._conn is None:
            if self.kind == "sqlite":
                conn = sqlite3.connect(Path(self.path), timeout=5, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 5000")
            else:
                import psycopg

                conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
            self._conn = conn
        return self._conn

    def beat(self, now: float | None = None) -> None:
        """One upsert (blocking: call it off the reactor thread)."""
        m = self.mark
        with self._lock:
            try:
                self._connect().execute(
                    "INSERT INTO boxes (name, role, last_seen, started_at, journal_cursor)"
                    f" VALUES ({m}, {m}, {m}, {m}, {m}) ON CONFLICT (name, role)"
                    " DO UPDATE SET last_seen = excluded.last_seen,"
                    " started_at = excluded.started_at,"
                    " journal_cursor = excluded.journal_cursor",
                    (self.box, ROLE, time.time() if now is None else now, self.started_at,
                     self.cursor()))
            except Exception:
                self.close()  # reconnect at the next tick
                raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._conn = None

    def _tick(self) -> None:
        d = threads.deferToThread(self.beat)

        def failed(f: Any) -> None:
            self.failures += 1
            log.warning("heartbeat for box %s failed: %s", self.box, f.getErrorMessage())

        d.addErrback(failed)

    def start(self) -> None:
        if not self.box:
            return
        self._loop = task.LoopingCall(self._tick)
        self._loop.start(self.interval_s, now=True)
