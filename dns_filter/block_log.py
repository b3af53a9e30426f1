"""What the resolver blocked, for whom: batched in memory, written every ~1 s.

The query path only counts: one counter per (source, category), always exact,
and one entry per distinct (source, domain) for the "recently blocked" list,
bounded by `max_recent` per batch (past it, domains are counted as dropped,
never queued: a flood of random names costs no memory). Once a second the
reactor swaps both out, turns source addresses into usernames with the policy
table (sources with no subscriber are skipped), and hands the batch to a
thread that writes it in one transaction:

- `dns_block_daily(username, day, category, count)`: upsert, day = UTC date;
- `dns_block_recent(username, domain, category, blocked_at)`: one row per
  (username, domain) per batch, blocked_at in epoch seconds;

and prunes both to `keep_days` once a minute. A failed write drops that
batch (logged, counted in metrics): the block log is a report, never a
reason to hold memory or stall answers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.internet import task, threads

from dns_filter import dburl
from dns_filter.metrics import Metrics
from dns_filter.policy import PolicyTable

log = logging.getLogger("ispedge.dns.blocklog")
PRUNE_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Batch:
    at: float  # epoch seconds the batch was taken (events are at most one interval older)
    daily: dict[tuple[str, str, str], int]  # (username, day, category) -> count
    recent: dict[tuple[str, str], str]  # (username, domain) -> category


def summarize(
    counts: dict[tuple[str, str], int],
    recent: dict[tuple[str, str], str],
    usernames: dict[str, str],
    at: float,
) -> Batch:
    """Counts per (source, category) and recent (source, domain) → one batch by username;
    sources without a username are dropped."""
    day = datetime.fromtimestamp(at, UTC).date().isoformat()
    daily: Counter[tuple[str, str, str]] = Counter()
    for (source, category), n in counts.items():
        username = usernames.get(source)
        if username:
            daily[(username, day, category)] += n
    by_user: dict[tuple[str, str], str] = {}
    for (source, domain), category in recent.items():
        username = usernames.get(source)
        if username:
            by_user[(username, domain)] = category
    return Batch(at, dict(daily), by_user)


class UsernameIndex:
    """Source address -> username, straight from the policy table's own maps.

    It used to keep a copy, rebuilt on the reactor whenever the table changed:
    with 200k subscribers and policy churn (every parental switch, session start
    and stop changes the table) that was a ~100 ms stall of the answer thread at
    each block-log flush, the largest share of the resolver's time holding the
    GIL during churn (py-spy --gil, bench/scale_bench.py)."""

    def __init__(self, table: PolicyTable):
        self.table = table

    def lookup(self, source: str) -> str:
        return self.table.owner(source)


class BlockLogDatabase:
    """A writable connection of its own (the policy reader opens SQLite read-only)."""

    def __init__(self, url: str):
        parsed = dburl.parse(url)
        self.kind, self.path, self.mark = parsed.kind, parsed.path, parsed.mark
        self.dsn = parsed.dsn  # any accepted PostgreSQL scheme, as libpq takes it
        self.url = url
        self._conn: Any = None
        # The shutdown flush may run while a pool thread still writes: one at a time.
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        if self._conn is None:
            if self.kind == "sqlite":
                conn = sqlite3.connect(
                    Path(self.path), timeout=5, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA busy_timeout = 5000")
            else:
                import psycopg

                conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
            self._conn = conn
        return self._conn

    def write(self, batch: Batch, prune_before: float | None) -> None:
        with self._lock:
            self._write(batch, prune_before)

    def _write(self, batch: Batch, prune_before: float | None) -> None:
        m = self.mark
        try:
            conn = self._connect()
            cur = conn.cursor()
            cur.execute("BEGIN")
            try:
                if batch.daily:
                    cur.executemany(
                        "INSERT INTO dns_block_daily (username, day, category, count)"
                        f" VALUES ({m}, {m}, {m}, {m})"
                        " ON CONFLICT (username, day, category)"
                        " DO UPDATE SET count = dns_block_daily.count + excluded.count",
                        [(u, d, c, n) for (u, d, c), n in batch.daily.items()],
                    )
                if batch.recent:
                    cur.executemany(
                        "INSERT INTO dns_block_recent (username, domain, category, blocked_at)"
                        f" VALUES ({m}, {m}, {m}, {m})",
                        [(u, dom, c, batch.at) for (u, dom), c in batch.recent.items()],
                    )
                if prune_before is not None:
                    day = datetime.fromtimestamp(prune_before, UTC).date().isoformat()
                    cur.execute(f"DELETE FROM dns_block_recent WHERE blocked_at < {m}",
                                (prune_before,))
                    cur.execute(f"DELETE FROM dns_block_daily WHERE day < {m}", (day,))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
            self._conn = None


class BlockLog:
    def __init__(
        self,
        db: BlockLogDatabase | None,
        table: PolicyTable,
        metrics: Metrics,
        interval_s: float = 1.0,
        keep_days: int = 7,
        max_recent: int = 20_000,
    ):
        self.db = db
        self.usernames = UsernameIndex(table)
        self.metrics = metrics
        self.interval_s = interval_s
        self.keep_days = keep_days
        self.max_recent = max_recent
        self.counts: dict[tuple[str, str], int] = {}  # (source, category) -> blocks
        self.recent: dict[tuple[str, str], str] = {}  # (source, domain) -> category
        self.writing = False
        self.failing = False
        self.last_prune = 0.0
        self.dropped = 0  # recent domains past max_recent in one batch (their counts are kept)
        self.failed_writes = 0
        self._loop: task.LoopingCall | None = None

    def add(self, source: str, domain: str, category: str) -> None:
        """The query path: a counter, and the domain while the batch has room."""
        key = (source, category)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        if len(self.recent) < self.max_recent:
            self.recent[(source, domain)] = category
        else:
            self.dropped += 1

    def _take(self, at: float) -> Batch:
        counts, recent = self.counts, self.recent
        self.counts, self.recent = {}, {}
        names = {source: self.usernames.lookup(source) for source, _ in counts}
        return summarize(counts, recent, names, at)

    def start(self) -> None:
        if self.db is None:
            return
        self._loop = task.LoopingCall(self.flush)
        self._loop.start(self.interval_s, now=False)
        from twisted.internet import reactor

        reactor.addSystemEventTrigger("before", "shutdown", self.flush_final)  # type: ignore[attr-defined]

    def flush_final(self) -> None:
        """At shutdown: write what is pending now, on this thread (a stop loses nothing)."""
        if self.db is None or not self.counts:
            return
        batch = self._take(time.time())
        try:
            self.db.write(batch, None)
        except Exception as e:  # noqa: BLE001 - shutting down: log and go
            log.warning("block log: final write failed, %d blocks dropped: %s",
                        sum(batch.daily.values()), e)

    def flush(self) -> None:
        if self.writing or self.db is None:
            return  # the batch keeps growing (bounded) until the last write is done
        now = time.time()
        prune = now - self.keep_days * 86400 if now - self.last_prune >= PRUNE_EVERY_S else None
        if not self.counts and prune is None:
            return
        batch = self._take(now)
        self.writing = True
        d = threads.deferToThread(self.db.write, batch, prune)
        d.addCallbacks(self._written, self._failed, callbackArgs=(prune,))

    def _gauges(self) -> None:
        self.metrics.gauges["blocklog_dropped_events"] = self.dropped
        self.metrics.gauges["blocklog_failed_writes"] = self.failed_writes

    def _written(self, _result: object, prune: float | None) -> None:
        self.writing = False
        self._gauges()
        if prune is not None:
            self.last_prune = time.time()
        if self.failing:
            log.info("block log: writing again")
        self.failing = False

    def _failed(self, failure: Any) -> None:
        self.writing = False
        self.failed_writes += 1
        self._gauges()
        if not self.failing:
            log.warning("block log: write failed, batch dropped: %s",
                        getattr(failure, "value", failure))
        self.failing = True
