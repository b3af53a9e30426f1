"""Keep the policy table in step with the database.

Polls the change journal every `poll_interval_s`; a relevant row reloads that
username's policy (a NULL username reloads everything). A full reload runs
every `full_reload_s` anyway, since sessions come and go in radacct without
a journal row. Each full load is persisted as a snapshot file, which is what
a resolver serves with when it starts while the database is unreachable.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from twisted.internet import task, threads

from dns_filter.metrics import Metrics
from dns_filter.policy import PolicyRow, PolicyTable
from dns_filter.policy_db import RELEVANT_KINDS, PolicyDatabase

log = logging.getLogger("ispedge.dns.policy")


def write_snapshot(path: Path, rows: list[PolicyRow], cursor: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Rows as plain lists: json's C encoder, so the thread holds the GIL briefly.
    with open(tmp, "w") as f:
        json.dump(
            {
                "saved_at": time.time(),
                "cursor": cursor,
                "rows": [[r.address, r.username, r.categories] for r in rows],
            },
            f,
        )
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_snapshot(path: Path) -> tuple[float, list[PolicyRow]]:
    raw = json.loads(path.read_text())
    return float(raw["saved_at"]), [PolicyRow(*r) for r in raw["rows"]]


class PolicyFollower:
    def __init__(
        self,
        url: str,
        table: PolicyTable,
        snapshot_path: Path,
        metrics: Metrics,
        poll_interval_s: float = 0.2,
        full_reload_s: float = 10.0,
    ):
        self.db = PolicyDatabase(url) if url else None
        self.table = table
        self.snapshot_path = snapshot_path
        self.metrics = metrics
        self.poll_interval_s = poll_interval_s
        self.full_reload_s = full_reload_s
        self.cursor = 0
        self.loaded_at = 0.0  # wall clock of the policy now in force
        self.last_full = 0.0
        self.db_ok = False
        self.busy = False
        self.saving = False
        self._last_rows: list[PolicyRow] | None = None  # touched only by the polling thread
        self._loop: task.LoopingCall | None = None

    def load_initial(self) -> str:
        """Blocking first load before serving: the database, else the snapshot; returns which."""
        if self.db is not None:
            try:
                cursor, rows = self.db.load_all()
                self._apply_full(cursor, rows)
                self._save(rows, cursor)
                self.db_ok = True
                log.info(
                    "policy: loaded %d rows from the database (journal at %d)", len(rows), cursor
                )
                return "database"
            except Exception as e:  # noqa: BLE001 - any DB failure falls back to the snapshot
                log.warning("policy: database unavailable at start (%s)", e)
        try:
            saved_at, rows = read_snapshot(self.snapshot_path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning(
                "policy: no usable snapshot at %s (%s); serving with default categories only",
                self.snapshot_path,
                e,
            )
            return "none"
        self.table.replace_all(rows)
        self.loaded_at = saved_at
        log.warning(
            "policy: DATABASE UNAVAILABLE - serving with the policy snapshot from %s (%d rows, %s)",
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(saved_at)),
            len(rows),
            self.snapshot_path,
        )
        return "snapshot"

    def start(self) -> None:
        if self.db is None:
            return
        self._loop = task.LoopingCall(self.poll)
        self._loop.start(self.poll_interval_s, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def poll(self) -> None:
        if self.busy or self.db is None:
            return
        self.busy = True
        full = not self.db_ok or time.monotonic() - self.last_full >= self.full_reload_s
        d = threads.deferToThread(self._work, full, self.cursor)
        d.addCallbacks(self._applied, self._failed)

    def _work(self, full: bool, cursor: int) -> tuple[str, int, object]:
        """Runs in a thread: DB reads (and snapshot writing) only, no table mutation."""
        assert self.db is not None
        if not full:
            changes = self.db.changes_since(cursor)
            if not changes:
                return "none", cursor, None
            new_cursor = changes[-1][0]
            names = {u for _i, u, kind in changes if kind in RELEVANT_KINDS}
            if None in names:
                full = True
            else:
                # The table now differs from the last full load: the next one must rebuild.
                self._last_rows = None
                return "partial", new_cursor, {u: self.db.load_username(u) for u in names if u}
        head, rows = self.db.load_all()
        if rows == self._last_rows:
            return "same", head, None  # the usual case: nothing to rebuild or persist
        self._last_rows = rows
        return "full", head, (rows, PolicyTable.build(rows))

    def _applied(self, result: tuple[str, int, object]) -> None:
        self.busy = False
        kind, cursor, payload = result
        if not self.db_ok:
            log.info("policy: database reachable again")
        self.db_ok = True
        if kind == "full":
            rows, fresh = payload  # type: ignore[misc]
            self.table.adopt(fresh)
            self._mark_full(cursor)
            self._save_in_background(rows, cursor)
        elif kind == "same":
            self._mark_full(cursor)
        elif kind == "partial":
            for username, rows in payload.items():  # type: ignore[attr-defined]
                self.table.replace_username(username, rows)
            self.cursor = cursor
            self.loaded_at = time.time()
        self._gauges()

    def _failed(self, failure: object) -> None:
        self.busy = False
        if self.db_ok:
            log.warning(
                "policy: database poll failed, keeping current policy: %s",
                getattr(failure, "value", failure),
            )
        self.db_ok = False
        self._gauges()

    def _apply_full(self, cursor: int, rows: list[PolicyRow]) -> None:
        self.table.replace_all(rows)
        self._last_rows = rows
        self._mark_full(cursor)

    def _mark_full(self, cursor: int) -> None:
        self.cursor = cursor
        self.loaded_at = time.time()
        self.last_full = time.monotonic()
        self._gauges()

    def _save_in_background(self, rows: list[PolicyRow], cursor: int) -> None:
        # fsync can take long on a busy disk: never let it hold up the next poll.
        if self.saving:
            return
        self.saving = True
        d = threads.deferToThread(self._save, rows, cursor)
        d.addBoth(self._saved)

    def _saved(self, _result: object) -> None:
        self.saving = False

    def _save(self, rows: list[PolicyRow], cursor: int) -> None:
        try:
            write_snapshot(self.snapshot_path, rows, cursor)
        except OSError as e:
            log.warning("policy: cannot write snapshot %s: %s", self.snapshot_path, e)

    def _gauges(self) -> None:
        self.metrics.gauges["policy_table_size"] = len(self.table)
        self.metrics.gauges["policy_database_ok"] = 1 if self.db_ok else 0

    def age_s(self) -> float:
        return time.time() - self.loaded_at if self.loaded_at else -1.0
