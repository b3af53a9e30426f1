"""Data lifecycle (issue 17): what is kept, how long, and the pruning itself.

- radacct: a closed session older than `radacct_days` (never under 35) is moved
  to its per-session record, acct_sessions (username, NAS, address and prefixes,
  start, stop, bytes), and deleted from radacct, in the same transaction. The
  Usage tab's session detail reads the record beside the young radacct rows
  (portal.usage.queries.sessions_on). Records are kept `session_record_days`
  (0: for ever: they tie an address to a subscriber).
- change_journal: pruned behind the slowest LIVE follower (boxes.journal_cursor of
  every enforcer and resolver seen within `follower_timeout_s`), and only rows
  older than `journal_min_age_s`. A follower unseen for longer no longer holds it
  back; when it comes back its cursor is below `retention.pruned_through` and it
  reconciles in full (dns_filter.journal_prune, used by the enforcer and the
  resolver).
- radacct_changes: behind the usage ingest's cursor, older than
  `radacct_changes_keep_s` (the ingest also trims it at each full pass).
- audit_log: rows older than `audit_days` (0: kept for ever).

Each step deletes in bounded batches, one short transaction per batch (on SQLite
FreeRADIUS waits for our write lock; on PostgreSQL one box prunes at a time,
under an advisory lock, and the others skip).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from dns_filter import journal_prune
from portal.config import Config, ConfigError
from portal.store import db, radacct
from portal.store.tx import DAEMON_BUDGET_S, transaction

MIN_RADACCT_DAYS = 35  # a month of sessions plus a billing dispute's few days
MAX_DAYS = 36500  # a century: beyond it dates overflow
PRUNE_LOCK = 0x15ED6E17  # pg advisory lock: one pruner at a time over all boxes


@dataclass(frozen=True)
class Policy:
    radacct_days: int = 90
    session_record_days: int = 0  # 0: kept for ever
    audit_days: int = 365  # 0: kept for ever
    journal_min_age_s: int = 3600
    follower_timeout_s: int = 86400
    radacct_changes_keep_s: int = 3600
    batch: int = 1000
    max_batches: int = 1000  # per step and run: a huge backlog goes over several runs
    prune_s: int = 3600  # the enforcer prunes this often (0: never; `ispedge db prune`)

    def __post_init__(self) -> None:
        if self.radacct_days < MIN_RADACCT_DAYS:
            raise ConfigError(f"retention.radacct_days: {self.radacct_days} is under the "
                              f"minimum of {MIN_RADACCT_DAYS} days")
        if self.radacct_days > MAX_DAYS:
            raise ConfigError(f"retention.radacct_days: at most {MAX_DAYS}")
        for name in ("session_record_days", "audit_days", "journal_min_age_s",
                     "follower_timeout_s", "radacct_changes_keep_s", "prune_s"):
            most = MAX_DAYS if name.endswith("_days") else MAX_DAYS * 86400
            if not 0 <= getattr(self, name) <= most:
                raise ConfigError(f"retention.{name}: 0 to {most}")
        if self.session_record_days and self.session_record_days < self.radacct_days:
            raise ConfigError("retention.session_record_days: shorter than radacct_days")
        if not 0 < self.batch <= 100_000 or self.max_batches < 1:
            raise ConfigError("retention.batch: 1 to 100000")

    @classmethod
    def from_config(cls, config: Config, **overrides: int) -> Policy:
        section = config.section("retention")
        values: dict[str, int] = {}
        for name in cls.__dataclass_fields__:
            raw = overrides.get(name, section.get(name))
            if raw is None:
                continue
            try:
                values[name] = int(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"retention.{name}: expected a whole number, "
                                  f"got {raw!r}") from None
        return cls(**values)


@dataclass
class Report:
    sessions_recorded: int = 0
    session_records_pruned: int = 0
    journal_pruned: int = 0
    journal_pruned_through: int = 0
    journal_held_by: str = ""
    radacct_changes_pruned: int = 0
    audit_pruned: int = 0
    skipped: str = ""  # another box was pruning
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Busy(Exception):
    """Another box holds the prune lock."""


async def _locked(tx: BaseDBAsyncClient) -> None:
    if db.current_dialect() == "postgres":
        rows = await db.fetch("SELECT pg_try_advisory_xact_lock(?) AS ok", [PRUNE_LOCK])
        if not rows[0]["ok"]:
            raise _Busy


async def _batches(step: Any, policy: Policy) -> int:
    """Run `step(tx)` (returns rows handled) as one transaction per batch until a
    short batch."""
    total = 0
    for _ in range(policy.max_batches):
        async def body(tx: BaseDBAsyncClient) -> int:
            await _locked(tx)
            n: int = await step(tx)
            return n

        n = await transaction(body, budget_s=DAEMON_BUDGET_S)
        total += n
        if n < policy.batch:
            break
    return total


def _text(value: object) -> str:
    return "" if value is None else str(value)


_RECORD = (
    "INSERT INTO acct_sessions (radacctid, acctuniqueid, acct_session_id, username, nas_ip,"
    " framed_ip, framed_ipv6_prefix, delegated_ipv6_prefix, started_at, stopped_at, bytes_in,"
    " bytes_out, terminate_cause) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (radacctid) DO NOTHING"
)


async def record_sessions(policy: Policy, now: datetime) -> int:
    """Closed radacct rows stopped before now - radacct_days -> acct_sessions."""
    cutoff = radacct.to_db_time(now - timedelta(days=policy.radacct_days))

    async def step(tx: BaseDBAsyncClient) -> int:
        rows = await db.fetch(
            "SELECT radacctid, acctuniqueid, acctsessionid, username, nasipaddress,"
            " framedipaddress, framedipv6prefix, delegatedipv6prefix, acctstarttime,"
            " acctstoptime, acctinputoctets, acctoutputoctets, acctterminatecause"
            " FROM radacct WHERE acctstoptime IS NOT NULL AND acctstoptime < ?"
            " ORDER BY acctstoptime LIMIT ?", [cutoff, policy.batch])
        if not rows:
            return 0
        records = []
        for r in rows:
            stop = radacct.from_db_time(r["acctstoptime"])
            start = radacct.from_db_time(r["acctstarttime"]) or stop
            assert stop is not None and start is not None
            records.append([
                int(r["radacctid"]), _text(r["acctuniqueid"]), _text(r["acctsessionid"]),
                _text(r["username"]), _text(r["nasipaddress"]), _text(r["framedipaddress"]),
                _text(r["framedipv6prefix"]), _text(r["delegatedipv6prefix"]),
                int(start.timestamp()), int(stop.timestamp()),
                int(r["acctinputoctets"] or 0), int(r["acctoutputoctets"] or 0),
                _text(r["acctterminatecause"])])
        await db.execute_many(_RECORD, records)
        ids = [rec[0] for rec in records]
        await db.execute(f"DELETE FROM radacct WHERE radacctid IN ({', '.join('?' * len(ids))})",
                         ids)
        return len(rows)

    return await _batches(step, policy)


async def prune_records(policy: Policy, now: datetime) -> int:
    if not policy.session_record_days:
        return 0
    cutoff = int((now - timedelta(days=policy.session_record_days)).timestamp())

    async def step(tx: BaseDBAsyncClient) -> int:
        return await db.execute(
            "DELETE FROM acct_sessions WHERE radacctid IN (SELECT radacctid FROM acct_sessions"
            " WHERE stopped_at < ? LIMIT ?)", [cutoff, policy.batch])

    return await _batches(step, policy)


async def prune_audit(policy: Policy, now: datetime) -> int:
    if not policy.audit_days:
        return 0
    cutoff = db.db_time(now - timedelta(days=policy.audit_days))

    async def step(tx: BaseDBAsyncClient) -> int:
        return await db.execute(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE created_at < ?"
            " ORDER BY id LIMIT ?)", [cutoff, policy.batch])

    return await _batches(step, policy)


async def journal_hold(policy: Policy, now: float) -> tuple[int | None, str]:
    """The journal id every live follower has read (None: no limit from followers),
    and which box/role sets it."""
    rows = await db.fetch(
        "SELECT name, role, journal_cursor FROM boxes WHERE last_seen >= ?"
        " AND journal_cursor IS NOT NULL ORDER BY journal_cursor, name LIMIT 1",
        [now - policy.follower_timeout_s])
    if not rows:
        return None, ""
    r = rows[0]
    return int(r["journal_cursor"]), f"{r['name']}/{r['role']}"


async def _mark(name: str, through: int, now: float) -> None:
    await db.execute(
        "UPDATE retention SET pruned_through = CASE WHEN pruned_through > ? THEN pruned_through"
        " ELSE ? END, pruned_at = ? WHERE name = ?", [through, through, now, name])


async def prune_journal(policy: Policy, now: datetime, report: Report) -> int:
    hold, held_by = await journal_hold(policy, now.timestamp())
    report.journal_held_by = held_by
    cutoff = db.db_time(now - timedelta(seconds=policy.journal_min_age_s))

    async def step(tx: BaseDBAsyncClient) -> int:
        limit = "" if hold is None else " AND id <= ?"
        ids = await db.fetch(
            f"SELECT id FROM change_journal WHERE created_at < ?{limit} ORDER BY id LIMIT ?",
            [cutoff, *([] if hold is None else [hold]), policy.batch])
        if not ids:
            return 0
        first, last = int(ids[0]["id"]), int(ids[-1]["id"])
        await db.execute("DELETE FROM change_journal WHERE id >= ? AND id <= ?"
                         " AND created_at < ?", [first, last, cutoff])
        await _mark(journal_prune.JOURNAL, last, now.timestamp())
        report.journal_pruned_through = max(report.journal_pruned_through, last)
        return len(ids)

    return await _batches(step, policy)


async def prune_radacct_changes(policy: Policy, now: datetime) -> int:
    cutoff = int(now.timestamp()) - policy.radacct_changes_keep_s

    async def step(tx: BaseDBAsyncClient) -> int:
        ids = await db.fetch(
            "SELECT id FROM radacct_changes WHERE changed_at < ? AND id <= (SELECT"
            " change_cursor FROM usage_ingest WHERE id = 1)"
            # Never the newest row: on SQLite the next id is the highest present + 1
            # (a rowid table, migration 0022); keeping it keeps ids from repeating.
            " AND id < (SELECT MAX(id) FROM radacct_changes) ORDER BY id LIMIT ?",
            [cutoff, policy.batch])
        if not ids:
            return 0
        first, last = int(ids[0]["id"]), int(ids[-1]["id"])
        await db.execute("DELETE FROM radacct_changes WHERE id >= ? AND id <= ?"
                         " AND changed_at < ?", [first, last, cutoff])
        await _mark(journal_prune.RADACCT_CHANGES, last, now.timestamp())
        return len(ids)

    return await _batches(step, policy)


async def prune(policy: Policy, now: datetime | None = None) -> Report:
    """One run of every step (`ispedge db prune`, the enforcer every prune_s)."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    report = Report()
    try:
        report.sessions_recorded = await record_sessions(policy, now)
        report.session_records_pruned = await prune_records(policy, now)
        report.journal_pruned = await prune_journal(policy, now, report)
        report.radacct_changes_pruned = await prune_radacct_changes(policy, now)
        report.audit_pruned = await prune_audit(policy, now)
    except _Busy:
        report.skipped = "another box is pruning"
    report.seconds = time.perf_counter() - started
    return report
