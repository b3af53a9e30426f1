"""The policy contract with the database: `dns_policy` rows and the `change_journal`.

The journal kinds the resolver follows come from the journal contract,
dns_filter/journal_contract.json (the same document the portal writes by).

Blocking calls; the follower runs them in a thread so a stalled database
never delays a DNS answer. One connection, reopened after any error.
"""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

from dns_filter import dburl
from dns_filter.policy import PolicyRow


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


class PolicyDatabase:
    def __init__(self, url: str, connect_timeout_s: int = 5):
        self.url = url
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

    def load_all(self) -> tuple[int, list[PolicyRow]]:
        """(journal cursor, rows); the cursor is read first so no change falls between."""
        head = self.journal_head()
        rows = self._query("SELECT address, username, categories FROM dns_policy")
        return head, [PolicyRow(str(a), str(u or ""), str(c or "")) for a, u, c in rows]

    def load_username(self, username: str) -> list[PolicyRow]:
        rows = self._query(
            "SELECT address, username, categories FROM dns_policy WHERE username = ?", (username,)
        )
        return [PolicyRow(str(a), str(u or ""), str(c or "")) for a, u, c in rows]

    def changes_since(self, cursor: int) -> list[tuple[int, str | None, str]]:
        rows = self._query(
            "SELECT id, username, kind FROM change_journal WHERE id > ? ORDER BY id", (cursor,)
        )
        return [(int(i), u, str(k)) for i, u, k in rows]

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
            self._conn = None
