"""The policy contract with the database: `dns_policy` rows and the `change_journal`.

The journal kinds the resolver follows come from the journal contract,
dns_filter/journal_contract.json (the same document the portal writes by).

Blocking calls; the follower runs them in a thread so a stalled database
never delays a DNS answer. One connection, reopened after any error.
"""

from __future__ import annotations

import json
import sqlite3
import time
from importlib import resources
from pathlib import Path
from typing import Any

from dns_filter import dburl, gapcursor, journal_prune
from dns_filter.gapcursor import GapCursor
from dns_filter.policy import PolicyRow
from dns_filter.sessions import SessionRow


def journal_contract() -> dict[str, Any]:
    """dns_filter/journal_contract.json: journal kinds, payloads, origins, followers."""
    text = resources.files("dns_filter").joinpath("journal_contract.json").read_text("utf-8")
    contract: dict[str, Any] = json.loads(text)
    return contract


def followed_kinds(follower: str = "resolver") -> frozenset[str]:
    """The journal kinds the contract says `follower` acts on."""
    kinds = journal_contract()["kinds"]
    return frozenset(name for name, spec in kinds.items() if follower in spec["followers"])


RELEVANT_KINDS = followed_kinds("resolver")

# Sent by the database after a change_journal insert commits (migration 0013's trigger).
JOURNAL_CHANNEL = "ispedge_journal"
# Sent after every radacct insert/update commits (migration 0013's trigger).
RADACCT_CHANNEL = "ispedge_radacct"

SESSION_COLUMNS = ("radacctid, username, nasipaddress, open, framedipaddress, framedipv6prefix,"
                   " delegatedipv6prefix, categories")


class PolicyDatabase:
    def __init__(self, url: str, connect_timeout_s: int = 5, nas: list[str] | None = None):
        self.url = url
        # The NAS addresses whose sessions this resolver serves; None: every NAS.
        self.nas = sorted(set(nas)) if nas is not None else None
        self.connect_timeout_s = connect_timeout_s
        parsed = dburl.parse(url)
        self.kind, self.path, self.mark = parsed.kind, parsed.path, parsed.mark
        self.dsn = parsed.dsn  # any accepted PostgreSQL scheme, as libpq takes it
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._conn is None:
            if self.kind == "sqlite":
                uri = Path(self.path).as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 5000")
            else:
                import psycopg

                conn = psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s
                )
            self._conn = conn
        return self._conn

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            conn = self._connect()
            cur = conn.execute(sql.replace("?", self.mark), params)
            return list(cur.fetchall())
        except Exception:
            self.close()
            raise

    def journal_head(self) -> int:
        rows = self._query("SELECT COALESCE(MAX(id), 0) FROM change_journal")
        return int(rows[0][0])

    def _nas_filter(self) -> tuple[str, tuple[object, ...]]:
        """The SQL condition (and its parameters) of "a session on a NAS we serve"."""
        if self.nas is None:
            return "1 = 1", ()
        if not self.nas:
            return "1 = 0", ()
        return f"nasipaddress IN ({', '.join('?' for _ in self.nas)})", tuple(self.nas)

    def load_all(self) -> tuple[int, list[PolicyRow]]:
        """(journal cursor, rows); the cursor is read first so no change falls between."""
        head = self.journal_head()
        where, params = self._nas_filter()
        rows = self._query(f"SELECT address, username, categories FROM dns_policy WHERE {where}",
                           params)
        return head, [PolicyRow(str(a), str(u or ""), str(c or "")) for a, u, c in rows]

    def load_username(self, username: str) -> list[PolicyRow]:
        where, params = self._nas_filter()
        rows = self._query(
            f"SELECT address, username, categories FROM dns_policy WHERE username = ? AND {where}",
            (username, *params),
        )
        return [PolicyRow(str(a), str(u or ""), str(c or "")) for a, u, c in rows]

    # --- sessions as deltas (radacct_changes + dns_session) --------------------

    def has_session_contract(self) -> bool:
        """Whether the database has radacct_changes and dns_session (migrations 0013, 0015)."""
        if self.postgres:
            rows = self._query("SELECT to_regclass('radacct_changes') IS NOT NULL"
                               " AND to_regclass('dns_session') IS NOT NULL")
            return bool(rows[0][0])
        rows = self._query("SELECT COUNT(*) FROM sqlite_master"
                           " WHERE name IN ('radacct_changes', 'dns_session')")
        return int(rows[0][0]) == 2

    def start_session_cursor(self) -> GapCursor:
        """The first cursor over radacct_changes: its head, open gaps just below it
        (the full load that follows covers everything up to the head)."""
        return self._start("radacct_changes")

    def read_session_changes(
        self, cursor: GapCursor, limit: int = gapcursor.DEFAULT_BATCH
    ) -> tuple[list[tuple[int, SessionRow | None]], bool]:
        """The next batch of changed radacct rows after `cursor`, advancing it
        gap-safely: (radacctid, its dns_session row if on a NAS we serve, else None)
        once per radacctid in change order; whether the batch was full."""
        gaps = self.postgres and bool(cursor.gaps)
        sql = gapcursor.read_sql("radacct_changes", "id", "radacctid", self.postgres, gaps)
        params = gapcursor.read_params(cursor, self.postgres, limit)
        snap = None
        found: dict[int, int] = {}
        for r in self._query(sql, tuple(params)):
            if self.postgres:
                snap = gapcursor.Snapshot(int(r[0]), int(r[1]))
                r = r[2:]
            if r[0] is not None:
                found[int(r[0])] = int(r[1])
        fresh = cursor.advance(found, snap, time.monotonic(), limit)
        order = list(dict.fromkeys(found[change_id] for change_id in fresh))
        rows = self.load_sessions(order)
        return [(i, rows.get(i)) for i in order], len(found) >= limit

    def load_sessions(self, radacctids: list[int]) -> dict[int, SessionRow]:
        """dns_session rows by radacctid, those on a NAS we serve."""
        out: dict[int, SessionRow] = {}
        where, params = self._nas_filter()
        for start in range(0, len(radacctids), 500):
            chunk = radacctids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for r in self._query(f"SELECT {SESSION_COLUMNS} FROM dns_session"
                                 f" WHERE radacctid IN ({marks}) AND {where}",
                                 (*chunk, *params)):
                row = SessionRow.from_view(*r)
                out[row.radacctid] = row
        return out

    def changes_since(
        self, cursor: int, limit: int = gapcursor.DEFAULT_BATCH
    ) -> list[tuple[int, str | None, str]]:
        """One bounded batch of rows after `cursor` (no gap memory: see read_changes)."""
        rows = self._query(
            "SELECT id, username, kind FROM change_journal WHERE id > ? ORDER BY id LIMIT ?",
            (cursor, limit),
        )
        return [(int(i), u, str(k)) for i, u, k in rows]

    @property
    def postgres(self) -> bool:
        return self.kind != "sqlite"

    def start_cursor(self) -> GapCursor:
        """The follower's first cursor: the head, with open gaps just below it."""
        return self._start("change_journal")

    def _start(self, table: str) -> GapCursor:
        rows = self._query(gapcursor.head_sql(table, "id", self.postgres),
                           (gapcursor.START_LOOKBACK,))
        snap, floor, ids = None, 0, []
        for r in rows:
            if self.postgres:
                snap = gapcursor.Snapshot(int(r[0]), int(r[1]))
                r = r[2:]
            floor = int(r[0])
            if r[1] is not None:
                ids.append(int(r[1]))
        return GapCursor.starting_at(floor, ids, snap, time.monotonic())

    def read_changes(
        self, cursor: GapCursor, limit: int = gapcursor.DEFAULT_BATCH
    ) -> tuple[list[tuple[int, str | None, str]], bool]:
        """The next batch after `cursor` (and its open gaps), advancing it gap-safely.

        Returns (rows new to the cursor, in id order; whether the batch was full).
        """
        gaps = self.postgres and bool(cursor.gaps)
        sql = gapcursor.read_sql("change_journal", "id", "username, kind", self.postgres, gaps)
        params = gapcursor.read_params(cursor, self.postgres, limit)
        snap = None
        found: dict[int, tuple[int, str | None, str]] = {}
        for r in self._query(sql, tuple(params)):
            if self.postgres:
                snap = gapcursor.Snapshot(int(r[0]), int(r[1]))
                r = r[2:]
            if r[0] is not None:
                found[int(r[0])] = (int(r[0]), r[1], str(r[2]))
        fresh = cursor.advance(found, snap, time.monotonic(), limit)
        return [found[i] for i in fresh], len(found) >= limit

    def journal_pruned_through(self) -> int | None:
        """The highest journal id pruned (dns_filter.journal_prune); None: a database
        without the retention contract (before migration 0020)."""
        try:
            rows = self._query(journal_prune.sql(), (journal_prune.JOURNAL,))
        except Exception:  # noqa: BLE001 - no retention table: nothing was pruned
            return None
        return int(rows[0][0]) if rows else None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
            self._conn = None
