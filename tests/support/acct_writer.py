"""A writer shaped like FreeRADIUS accounting, run as its own process.

It writes radacct the way rlm_sql does -- one short transaction per Interim-Update
that moves acctupdatetime and the octet counters of one session -- into the
portal's database from OUTSIDE the portal, so the portal meets a second writer it
cannot coordinate with in-process (SQLite's file lock, PostgreSQL row/table locks).

Standalone on purpose (stdlib + psycopg only, no ispedge import): it is what a
foreign process does to the database, nothing more.

    python tests/support/acct_writer.py DB --mode MODE [options]

DB is a SQLite file path (or sqlite:// URL) or a postgres:// URL. Modes:

  churn  BEGIN IMMEDIATE (SQLite) / BEGIN (PostgreSQL); UPDATE one radacct row;
         hold the transaction open --hold-ms MIN MAX (random); COMMIT; pause
         --gap-ms MIN MAX; repeat. A stress far beyond FreeRADIUS's own
         sub-millisecond transactions.
  rate   --rate N short transactions per second (UPDATE + COMMIT, nothing held),
         paced on a fixed schedule (late ones catch up, up to 1 s behind):
         FreeRADIUS accounting at ISP load. --synchronous FULL (default, what
         rlm_sql_sqlite runs with: an fsync per commit) or NORMAL.
  hold   take the write lock once and keep it --seconds S (SQLite: BEGIN
         IMMEDIATE; PostgreSQL: LOCK TABLE <--lock-tables> IN EXCLUSIVE MODE,
         which blocks every write and SELECT ... FOR UPDATE but not plain reads).

It inserts its own --sessions radacct rows first (usernames acct-bg-N on NAS
192.0.2.1, no portal subscriber), then prints "READY"; in hold mode "LOCKED"
once the lock is held and "RELEASED" after COMMIT. It runs until --duration
passes or SIGTERM/SIGINT, finishes the transaction in hand, and prints one
line "STATS {json}": commits, errors by kind, achieved rate, transaction
hold and lock-wait milliseconds (p50/p99/max).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import sys
import time
from typing import Any

NAS_IP = "192.0.2.1"
PG_LOCK_TABLES = ("subscribers", "wallet_entries", "change_journal", "tickets",
                  "ticket_messages", "parental_settings", "idempotency_keys", "topups",
                  "invoices", "invoice_lines", "invoice_counters", "audit_log", "radreply")

_stop = False


def _on_signal(signum: int, frame: object) -> None:
    global _stop
    _stop = True


def is_postgres(db: str) -> bool:
    return db.startswith(("postgres://", "postgresql://"))


def sqlite_path(db: str) -> str:
    return db.split("://", 1)[1].split("?", 1)[0] if db.startswith("sqlite://") else db


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    s = sorted(values)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))], 3)

    return {"p50": at(0.50), "p99": at(0.99), "max": round(s[-1], 3)}


class Backend:
    """One connection, FreeRADIUS's statements, per dialect."""

    def __init__(self, db: str, busy_timeout_ms: int, synchronous: str = "FULL") -> None:
        self.pg = is_postgres(db)
        if self.pg:
            import psycopg

            self.errors_of: tuple[type[BaseException], ...] = (psycopg.Error,)
            self.conn: Any = psycopg.connect(db, autocommit=True)
        else:
            self.errors_of = (sqlite3.Error,)
            self.conn = sqlite3.connect(sqlite_path(db), timeout=busy_timeout_ms / 1000,
                                        isolation_level=None)
            # As FreeRADIUS's rlm_sql_sqlite: the same busy_timeout it is configured with.
            self.conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            # rlm_sql_sqlite sets no other pragma: SQLite's default FULL (an fsync per
            # commit in WAL) is what FreeRADIUS runs with.
            self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.ids: list[int] = []

    def _time(self, epoch: float) -> Any:
        if self.pg:
            from datetime import UTC, datetime

            return datetime.fromtimestamp(epoch, UTC)
        return int(epoch)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def setup(self, sessions: int) -> None:
        now = time.time()
        tag = f"{int(now * 1000) % 10**9}-{random.randrange(10**6)}"
        self.begin()
        for i in range(sessions):
            self.conn.execute(self._sql(
                "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress,"
                " nasportid, acctstarttime, acctupdatetime, acctsessiontime, acctinterval,"
                " acctinputoctets, acctoutputoctets, calledstationid, callingstationid,"
                " acctterminatecause, framedipaddress, acctauthentic, nasporttype,"
                " framedprotocol, servicetype) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 300, 0, 0,"
                " '', '', '', ?, 'RADIUS', 'Virtual', 'PPP', 'Framed-User')"),
                (f"bg-{tag}-{i}", f"bg{tag}x{i}"[:32], f"acct-bg-{i}", NAS_IP, str(i),
                 self._time(now), self._time(now),
                 f"100.127.{i // 250}.{i % 250 + 1}"))
        self.commit()
        rows = self.conn.execute(self._sql(
            "SELECT radacctid FROM radacct WHERE acctsessionid LIKE ?"), (f"bg-{tag}-%",))
        self.ids = [int(r[0]) for r in rows.fetchall()]

    def begin(self) -> None:
        self.conn.execute("BEGIN" if self.pg else "BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except self.errors_of:
            pass

    def interim(self) -> None:
        """rlm_sql's accounting_update_query, reduced: one session's row moves on."""
        now = time.time()
        self.conn.execute(self._sql(
            "UPDATE radacct SET acctupdatetime = ?, acctinterval = 300,"
            " acctsessiontime = acctsessiontime + 1,"
            " acctinputoctets = acctinputoctets + ?, acctoutputoctets = acctoutputoctets + ?"
            " WHERE radacctid = ?"),
            (self._time(now), random.randrange(10**4, 10**6), random.randrange(10**5, 10**7),
             random.choice(self.ids)))

    def lock_all(self, tables: list[str]) -> None:
        if self.pg:
            self.conn.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
        # SQLite: BEGIN IMMEDIATE already holds the one write lock.


class WriterProcess:
    """The writer as a child process, for tests and benches (same file, other role)."""

    def __init__(self, db: str, mode: str, *options: str) -> None:
        import subprocess
        import threading

        self.process = subprocess.Popen(
            [sys.executable, __file__, db, "--mode", mode, *options],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, word: str, timeout_s: float = 30.0) -> None:
        end = time.monotonic() + timeout_s
        with self._seen:
            while word not in self.lines:
                left = end - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and word not in self.lines
                                 and not self._reader.is_alive()):
                    raise RuntimeError(f"accounting writer: no {word!r} within {timeout_s} s:\n"
                                       + "\n".join(self.lines[-30:]))
                self._seen.wait(min(left, 0.2))

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """SIGTERM, wait, and return its STATS (raises if it died without them)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except Exception:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)
        for line in reversed(self.lines):
            if line.startswith("STATS "):
                return dict(json.loads(line[len("STATS "):]))
        raise RuntimeError("accounting writer ended without STATS:\n" + "\n".join(self.lines[-30:]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    ap.add_argument("--mode", choices=("churn", "rate", "hold"), required=True)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--hold-ms", type=float, nargs=2, default=(100.0, 500.0))
    ap.add_argument("--gap-ms", type=float, nargs=2, default=(100.0, 200.0))
    ap.add_argument("--rate", type=float, default=700.0)
    ap.add_argument("--seconds", type=float, default=10.0, help="hold mode: how long")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after this long (0: never)")
    ap.add_argument("--busy-timeout-ms", type=int, default=5000)
    ap.add_argument("--synchronous", choices=("FULL", "NORMAL", "OFF"), default="FULL",
                    help="SQLite only; FULL is FreeRADIUS's (SQLite's default)")
    ap.add_argument("--lock-tables", default=",".join(PG_LOCK_TABLES))
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    random.seed(args.seed)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    backend = Backend(args.db, args.busy_timeout_ms, args.synchronous)
    backend.setup(max(1, args.sessions))
    print("READY", flush=True)

    started = time.perf_counter()
    deadline = started + args.duration if args.duration > 0 else float("inf")
    commits = 0
    errors: dict[str, int] = {}
    hold_ms: list[float] = []
    wait_ms: list[float] = []

    def one(hold_s: float) -> None:
        nonlocal commits
        t0 = time.perf_counter()
        try:
            backend.begin()
            t1 = time.perf_counter()
            backend.interim()
            if hold_s > 0:
                time.sleep(hold_s)
            backend.commit()
            t2 = time.perf_counter()
        except backend.errors_of as exc:
            backend.rollback()
            kind = str(exc).split("\n")[0][:60] or type(exc).__name__
            errors[kind] = errors.get(kind, 0) + 1
            return
        commits += 1
        wait_ms.append((t1 - t0) * 1000)
        hold_ms.append((t2 - t1) * 1000)

    if args.mode == "hold":
        t0 = time.perf_counter()
        backend.begin()
        backend.lock_all([t.strip() for t in args.lock_tables.split(",") if t.strip()])
        backend.interim()
        wait_ms.append((time.perf_counter() - t0) * 1000)
        print("LOCKED", flush=True)
        t1 = time.perf_counter()
        end = t1 + args.seconds
        while not _stop and time.perf_counter() < end:
            time.sleep(min(0.05, max(0.0, end - time.perf_counter())))
        backend.commit()
        hold_ms.append((time.perf_counter() - t1) * 1000)
        commits = 1
        print("RELEASED", flush=True)
    elif args.mode == "churn":
        while not _stop and time.perf_counter() < deadline:
            one(random.uniform(*args.hold_ms) / 1000)
            if _stop:
                break
            time.sleep(random.uniform(*args.gap_ms) / 1000)
    else:
        period = 1.0 / args.rate
        k = 0
        base = time.perf_counter()
        while not _stop and time.perf_counter() < deadline:
            due = base + k * period
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            elif now - due > 1.0:
                base, k = now, 0  # far behind (the database was busy): no burst to catch up
            one(0.0)
            k += 1

    elapsed = time.perf_counter() - started
    stats = {"mode": args.mode, "dialect": "postgres" if backend.pg else "sqlite",
             "commits": commits, "errors": errors, "seconds": round(elapsed, 3),
             "rate": round(commits / elapsed, 1) if elapsed > 0 else 0.0,
             "hold_ms": quantiles(hold_ms), "lock_wait_ms": quantiles(wait_ms)}
    print("STATS " + json.dumps(stats, sort_keys=True), flush=True)
    backend.conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
