"""Keep the policy table in step with the database.

Polls the change journal every `poll_interval_s`, and at once when PostgreSQL
says a journal row committed (LISTEN on JOURNAL_CHANNEL; polling stays the
fallback); a relevant row reloads that username's policy (a NULL username
reloads everything). The journal is read in bounded batches through a gap-safe
cursor (dns_filter.gapcursor): a row that commits after a higher id was read is
still acted on.

Sessions are followed the same way: `radacct_changes` (one row per radacct
insert or update) through a second gap-safe cursor, woken by NOTIFY on
RADACCT_CHANNEL; each changed radacct row, read from `dns_session`, is applied as
a delta (dns_filter.sessions) to the address map, so a session start or an
IPv6 prefix arriving in an Interim-Update is filtered one poll after it commits.
Only sessions on the NASes this resolver serves (`nas`) are loaded or followed.
Every `full_reload_s` the whole view is read again as the safety net (issue 17):
read in chunks and compared with the table in the polling thread, so the answer
thread only applies the few edits that differ (usually none) -- no table is
rebuilt or swapped and no second copy of it is held; it moves neither cursor.
Each full load is persisted as a snapshot file, which is what
a resolver serves with when it starts while the database is unreachable.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from twisted.internet import reactor, task, threads

from dns_filter import journal_prune
from dns_filter.gapcursor import GapCursor
from dns_filter.metrics import Metrics
from dns_filter.policy import PolicyRow, PolicyTable, key_of
from dns_filter.policy_db import (
    JOURNAL_CHANNEL,
    RADACCT_CHANNEL,
    RELEVANT_KINDS,
    PolicyDatabase,
)
from dns_filter.sessions import Edit, SessionIndex

log = logging.getLogger("ispedge.dns.policy")

SNAPSHOT_CHUNK = 5000
NOTIFY_GAP_S = 0.05  # polls woken by NOTIFY start at least this far apart


def write_snapshot(path: Path, rows: list[PolicyRow], cursor: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Rows as plain lists through json's C encoder, a few thousand per call: one call
    # over 200k rows would hold the GIL (and the answer thread) for ~100 ms.
    with open(tmp, "w") as f:
        f.write(json.dumps({"saved_at": time.time(), "cursor": cursor})[:-1] + ', "rows": [')
        for start in range(0, len(rows), SNAPSHOT_CHUNK):
            part = json.dumps([[r.address, r.username, r.categories]
                               for r in rows[start:start + SNAPSHOT_CHUNK]])[1:-1]
            f.write(("," if start else "") + part)
            time.sleep(0)
        f.write("]}")
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
        full_reload_s: float = 300.0,
        nas: list[str] | None = None,
        listen_poll_s: float = 0.2,
    ):
        self.db = PolicyDatabase(url, nas=nas) if url else None
        self.table = table
        self.snapshot_path = snapshot_path
        self.metrics = metrics
        self.poll_interval_s = poll_interval_s
        self.full_reload_s = full_reload_s
        # Touched only by the polling thread (`busy` keeps it to one at a time);
        # None until the first read of the journal head.
        self.cursor: GapCursor | None = None
        # radacct_changes, likewise; None until first read, or when the database has
        # no session contract (then sessions come with the full reload only).
        self.session_cursor: GapCursor | None = None
        self.follow_sessions: bool | None = None  # None: not known yet
        self.sessions = SessionIndex()  # touched only by the polling thread
        self.pending_edits: list[Edit] = []  # read by the polling thread, applied on the reactor
        # A NOTIFY came while polling (set on the reactor only).
        self.more = False
        # The poll's batch was full (set by the polling thread only, read after it).
        # Two flags, not one: the thread's `more = more or full` racing the reactor's
        # `more = True` lost a NOTIFY that landed between its read and write, and the
        # parental change behind it waited for the fallback poll (CI, PostgreSQL, 1.03 s).
        self.read_more = False
        self._listening = False
        # LISTENing now (PostgreSQL): each NOTIFY wakes a poll, so the poll every
        # poll_interval_s is only the fallback, run every listen_poll_s instead.
        self.listen_ok = False
        self.listen_poll_s = listen_poll_s
        self.polled_at = 0.0  # monotonic: the last poll started
        self._wake_pending = False
        self.loaded_at = 0.0  # wall clock of the policy now in force
        self.last_full = 0.0
        self.db_ok = False
        self.busy = False
        self.saving = False
        self.read_at = time.monotonic()  # the last successful read (polling thread)
        self._loop: task.LoopingCall | None = None

    def load_initial(self) -> str:
        """Blocking first load before serving: the database, else the snapshot; returns which."""
        if self.db is not None:
            try:
                self.cursor = self.db.start_cursor()  # before the rows: nothing falls between
                self._start_sessions()
                _head, rows = self.db.load_all()
                cursor = self.cursor.high
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
        self._loop = task.LoopingCall(self._tick)
        self._loop.start(self.poll_interval_s, now=False)
        if self.db.postgres:
            self._listening = True
            threading.Thread(target=self._listen, name="policy-listen", daemon=True).start()

    def stop(self) -> None:
        self._listening = False
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _listen(self) -> None:
        """Thread: LISTEN on its own connection; each NOTIFY wakes a poll at once."""
        import psycopg

        assert self.db is not None
        while self._listening:
            try:
                with psycopg.connect(self.db.dsn, autocommit=True,
                                     connect_timeout=self.db.connect_timeout_s) as conn:
                    conn.execute(f"LISTEN {JOURNAL_CHANNEL}")
                    conn.execute(f"LISTEN {RADACCT_CHANNEL}")
                    self.listen_ok = True
                    # A poll now: a row may have committed before LISTEN took effect.
                    reactor.callFromThread(self.wake)  # type: ignore[attr-defined]
                    while self._listening:
                        for _n in conn.notifies(timeout=1.0, stop_after=1):
                            reactor.callFromThread(self.wake)  # type: ignore[attr-defined]
            except Exception as e:  # noqa: BLE001 - polling carries on; listen again soon
                self.listen_ok = False
                log.debug("policy: LISTEN connection lost (%s); polling meanwhile", e)
                time.sleep(1.0)
            self.listen_ok = False

    def _tick(self) -> None:
        """The fallback poll: every poll_interval_s, or listen_poll_s while NOTIFY
        wakes the follower (idle, a resolver then reads the database every 2 s, not
        5 times a second)."""
        if (self.listen_ok and self.db_ok
                and time.monotonic() - self.polled_at < self.listen_poll_s):
            return  # after a failed poll, retried every poll_interval_s
        self.poll()

    def wake(self) -> None:
        """A journal or accounting row committed: poll now (or right after the poll
        in progress), at most once a NOTIFY_GAP_S: accounting NOTIFYs come with every
        commit (hundreds a second at 200k sessions), one poll reads them all."""
        if self.busy or self._wake_pending:
            self.more = True
            return
        wait = self.polled_at + NOTIFY_GAP_S - time.monotonic()
        if wait > 0:
            self._wake_pending = True
            reactor.callLater(wait, self._woken)
        else:
            self.poll()

    def _woken(self) -> None:
        self._wake_pending = False
        self.poll()

    def poll(self) -> None:
        if self.busy or self.db is None:
            return
        self.busy = True
        self.more = False
        self.read_more = False
        self.polled_at = time.monotonic()
        full = not self.db_ok or time.monotonic() - self.last_full >= self.full_reload_s
        d = threads.deferToThread(self._work, full, self.cursor)
        d.addCallbacks(self._applied, self._failed)

    def _start_sessions(self) -> None:
        """Polling thread: the session cursor, if the database has the contract."""
        assert self.db is not None
        if self.follow_sessions is None:
            self.follow_sessions = self.db.has_session_contract()
            if not self.follow_sessions:
                log.warning("policy: no radacct_changes/dns_session in the database: new "
                            "sessions reach the resolver only with the full reload")
        if self.follow_sessions and self.session_cursor is None:
            self.session_cursor = self.db.start_session_cursor()

    def _work(self, full: bool, cursor: object = None) -> tuple[str, int, object]:
        """Runs in a thread: `_read`, after the retention check (issue 17): back after
        a while (database unreachable), journal rows this cursor had not read may have
        been pruned (dns_filter.journal_prune): then a new cursor and a full load."""
        assert self.db is not None
        if self.cursor is not None and journal_prune.needs_check(self.read_at, time.monotonic()):
            pruned = self.db.journal_pruned_through()
            if pruned is not None and journal_prune.missed(self.cursor.high, pruned):
                log.warning("policy: journal pruned past this resolver's cursor (%d): "
                            "full load", self.cursor.high)
                self.cursor = self.db.start_cursor()
                self.cursor.high = max(self.cursor.high, pruned)  # all of it may be gone
                full = True
        result = self._read(full)
        self.read_at = time.monotonic()
        return result

    def _read(self, full: bool) -> tuple[str, int, object]:
        """Runs in a thread: DB reads (and snapshot writing) only, no table mutation.

        Advances the cursors and the session index (only this thread touches them
        while `busy`); the session edits wait in `pending_edits` for `_applied`.
        Returns (journal result kind, journal position, its payload).
        """
        assert self.db is not None
        if self.cursor is None:
            self.cursor = self.db.start_cursor()
            full = True
        if self.session_cursor is None:
            self._start_sessions()  # before a full load: nothing falls between
        edits = self.pending_edits
        if self.session_cursor is not None:
            changed, more = self.db.read_session_changes(self.session_cursor)
            self.read_more = self.read_more or more
            for radacctid, row in changed:
                edits.extend(self.sessions.apply(radacctid, row))
            # Only what changes the table reaches the answer thread (issue 17).
            if edits:
                edits = [Edit(a, r) for a, r in
                         self.table.net_edits((e.address, e.row) for e in edits).items()]
                self.pending_edits = edits
        if not full:
            changes, more = self.db.read_changes(self.cursor)
            self.read_more = self.read_more or more
            if not changes:
                return "none", self.cursor.high, None
            names = {u for _i, u, kind in changes if kind in RELEVANT_KINDS}
            if None in names:
                full = True
            else:
                return "partial", self.cursor.high, self.db.load_usernames(
                    u for u in names if u)
        # A full read (start, the database back, a NULL-username row, the periodic
        # check): compared with the table here, in the polling thread, in chunks;
        # the answer thread applies only the differences. The addresses of the session
        # edits read above are included: the read is newer than those edits.
        rows: list[PolicyRow] = []
        database = self.db

        def chunks() -> Iterator[list[PolicyRow]]:
            for chunk in database.iter_all():
                rows.extend(chunk)
                yield chunk

        diff = self.table.diff(chunks())
        if edits:
            want = {key_of(r.address): r for r in rows}
            for e in edits:
                if e.address not in diff:
                    diff[e.address] = want.get(e.address)
        if not diff:
            return "same", self.cursor.high, None  # the usual case: nothing to change
        return "full", self.cursor.high, (diff, rows)

    def _applied(self, result: tuple[str, int, object]) -> None:
        self.busy = False
        kind, cursor, payload = result
        edits, self.pending_edits = self.pending_edits, []
        if not self.db_ok:
            log.info("policy: database reachable again")
        self.db_ok = True
        if edits:
            if self.table.apply_edits((e.address, e.row) for e in edits):
                self.loaded_at = time.time()
            self.metrics.gauges["policy_sessions_followed"] = len(self.sessions.sessions)
        if kind == "full":
            diff, rows = cast(tuple[dict[str, PolicyRow | None], list[PolicyRow]], payload)
            self.table.apply_edits(diff.items())
            self._mark_full(cursor)
            self._save_in_background(rows, cursor)
        elif kind == "same":
            self._mark_full(cursor)
        elif kind == "partial":
            for username, rows in payload.items():  # type: ignore[attr-defined]
                self.table.replace_username(username, rows)
            self.loaded_at = time.time()
        self._gauges()
        if self.more or self.read_more:
            self.wake()  # a full batch, or a NOTIFY during this poll: read on at once

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
        self._mark_full(cursor)
        # The table is long-lived: out of the collector's reach, a full collection
        # never walks its million objects while a query waits (gc.freeze is O(1)).
        gc.freeze()

    def _mark_full(self, cursor: int) -> None:
        # `cursor` is the journal position the snapshot file records; the gap-safe
        # cursor itself moves only by reading the journal.
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
