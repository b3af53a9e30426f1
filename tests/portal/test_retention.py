"""Data lifecycle (issue 17): radacct -> per-session records, journal pruned behind the
slowest live follower (and a returning follower reconciles in full), radacct_changes
and audit_log pruned; `ispedge db prune`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coa import CoaClient
from dns_filter import journal_prune
from dns_filter.metrics import Metrics
from dns_filter.policy import PolicyTable
from dns_filter.policy_sync import PolicyFollower
from portal.config import ConfigError, load_config
from portal.enforcer.daemon import Enforcer
from portal.store import boxes, journal, radacct, retention
from portal.store import db as pdb
from portal.store.tx import transaction
from portal.usage import queries
from tests.enforcer import helpers
from tests.support.cli import run_main, sqlite_copy

UTC_ZONE = ZoneInfo("UTC")


NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=40)


def test_retention_under_35_days_is_refused():
    with pytest.raises(ConfigError, match="minimum of 35"):
        retention.Policy(radacct_days=34)
    with pytest.raises(ConfigError, match="expected an integer"):
        retention.Policy.from_config(load_config(environ={"ISPEDGE_RETENTION_AUDIT_DAYS": "x"}))


def test_cli_refuses_a_short_retention(tmp_path: Path, monkeypatch, capsys):
    # refused before the database is opened (so not a `db` test)
    code, _out, err = run_main(monkeypatch, capsys, f"sqlite://{tmp_path / 'none.db'}",
                               tmp_path, "db", "prune", "--radacct-days", "30")
    assert code == 1 and "minimum of 35" in err


async def _sessions() -> None:
    await radacct.insert_sessions([
        # closed 40 days ago: moved to its record
        radacct.AcctSession("alice", "s-old", "10.255.0.1", OLD, OLD + timedelta(hours=2),
                            OLD + timedelta(hours=3), 1234, 987654321, "100.64.0.7",
                            terminate_cause="User-Request"),
        # open since 40 days ago: stays
        radacct.AcctSession("alice", "s-open", "10.255.0.1", OLD + timedelta(hours=4),
                            NOW - timedelta(minutes=5), None, 5, 6, "100.64.0.8"),
        # closed yesterday: stays
        radacct.AcctSession("alice", "s-young", "10.255.0.1", NOW - timedelta(days=1),
                            None, NOW - timedelta(hours=20), 7, 8, "100.64.0.9"),
        radacct.AcctSession("bob", "s-bob", "10.255.0.2", OLD, None,
                            OLD + timedelta(minutes=30), 1, 2, "100.64.1.1"),
    ])


async def test_old_closed_sessions_move_to_the_record_the_usage_tab_reads(db: str):
    await _sessions()
    day = OLD.date()
    before = await queries.sessions_on("alice", day, UTC_ZONE, NOW)
    assert len(before) == 2
    report = await retention.prune(retention.Policy(radacct_days=35, batch=1), NOW)
    assert report.sessions_recorded == 2  # s-old and s-bob, one batch each
    left = {r["acctsessionid"] for r in await pdb.fetch("SELECT acctsessionid FROM radacct")}
    assert left == {"s-open", "s-young"}
    rec = (await pdb.fetch("SELECT * FROM acct_sessions WHERE username = 'alice'"))[0]
    assert (rec["nas_ip"], rec["framed_ip"], rec["bytes_in"], rec["bytes_out"],
            rec["started_at"], rec["stopped_at"]) == (
        "10.255.0.1", "100.64.0.7", 1234, 987654321, int(OLD.timestamp()),
        int((OLD + timedelta(hours=3)).timestamp()))
    # the Usage tab's session detail is the same before and after the move
    assert await queries.sessions_on("alice", day, UTC_ZONE, NOW) == before
    assert len(await queries.sessions_on("bob", day, UTC_ZONE, NOW)) == 1
    # a second run moves nothing more; records are kept (session_record_days = 0)
    again = await retention.prune(retention.Policy(radacct_days=35), NOW)
    assert again.sessions_recorded == 0 and again.session_records_pruned == 0
    later = await retention.prune(retention.Policy(radacct_days=35, session_record_days=35),
                                  NOW + timedelta(days=10))
    assert later.session_records_pruned == 2
    assert later.sessions_recorded == 0  # s-young is 11 days old then; s-open is open


async def _journal_rows(n: int, age: timedelta) -> list[int]:
    async def write(tx: object) -> None:
        for i in range(n):
            await journal.record(tx, f"user{i}", "parental", origin=journal.PORTAL,  # type: ignore[arg-type]
                                 enabled=True)

    await transaction(write)
    await pdb.execute("UPDATE change_journal SET created_at = ?",
                     [pdb.db_time(datetime.now(UTC) - age)])
    return [int(r["id"]) for r in await pdb.fetch("SELECT id FROM change_journal ORDER BY id")]


async def test_journal_pruned_behind_the_slowest_live_follower_only(db: str):
    ids = await _journal_rows(10, timedelta(hours=2))
    now = time.time()
    await boxes.heartbeat("box-a", boxes.ENFORCER, now, now, journal_cursor=ids[6])
    await boxes.heartbeat("box-b", boxes.RESOLVER, now - 10, now, journal_cursor=ids[4])
    # unseen for 25 h: no longer holds the journal back
    await boxes.heartbeat("box-gone", boxes.ENFORCER, now - 25 * 3600, now,
                          journal_cursor=ids[0])
    report = await retention.prune(retention.Policy(), datetime.now(UTC))
    assert report.journal_pruned == 5 and report.journal_held_by == "box-b/resolver"
    left = [int(r["id"]) for r in await pdb.fetch("SELECT id FROM change_journal ORDER BY id")]
    assert left == ids[5:]
    pruned = await pdb.fetch(journal_prune.sql(), [journal_prune.JOURNAL])
    assert int(pruned[0]["pruned_through"]) == ids[4]
    # rows younger than journal_min_age_s stay whatever the followers read
    young = await _journal_rows(3, timedelta(minutes=5))
    await boxes.heartbeat("box-a", boxes.ENFORCER, now, now, journal_cursor=young[-1])
    await boxes.heartbeat("box-b", boxes.RESOLVER, now, now, journal_cursor=young[-1])
    await retention.prune(retention.Policy(journal_min_age_s=3600), datetime.now(UTC))
    assert len(await pdb.fetch("SELECT id FROM change_journal")) == 13 - 5


async def test_a_returning_enforcer_reconciles_in_full(db: str):
    async with CoaClient(timeout_s=0.2, retries=0) as coa:
        enforcer = Enforcer(helpers.settings(), coa)
        await enforcer.start_cursor()
        behind = enforcer.cursor.high
        await _journal_rows(4, timedelta(hours=2))
        # Seen 25 h ago: pruning goes past it.
        await boxes.heartbeat(enforcer.box, boxes.ENFORCER, time.time() - 25 * 3600,
                              time.time(), journal_cursor=behind)
        report = await retention.prune(retention.Policy(), datetime.now(UTC))
        assert report.journal_pruned == 4
        # Reading on within RETURN_CHECK_S: no extra query, nothing to notice.
        assert not await enforcer._journal_pruned_past()
        enforcer.journal_read_at -= journal_prune.RETURN_CHECK_S + 1  # it was away
        await enforcer.poll_journal()
        assert enforcer.force_full  # the next pass is a full reconcile
        assert enforcer.cursor.high == report.journal_pruned_through  # a new cursor at head
        # Back again but nothing was pruned past it: it just reads on.
        enforcer.force_full = False
        enforcer.journal_read_at -= journal_prune.RETURN_CHECK_S + 1
        await enforcer.poll_journal()
        assert not enforcer.force_full


async def test_a_returning_resolver_loads_in_full(db: str, tmp_path: Path):
    follower = PolicyFollower(db, PolicyTable(), tmp_path / "snap.json", Metrics())
    assert follower.load_initial() == "database"
    assert follower.db is not None and follower.cursor is not None
    ids = await _journal_rows(3, timedelta(hours=2))
    assert follower._work(False)[0] == "partial"  # the usual delta
    await _journal_rows(2, timedelta(hours=2))
    follower.cursor.high = ids[-1]  # as if it stopped reading there
    await retention.prune(retention.Policy(), datetime.now(UTC))
    follower.read_at -= journal_prune.RETURN_CHECK_S + 1
    kind, position, _ = follower._work(False)
    assert kind in ("full", "same")  # a full load, not the deltas after its old cursor
    assert position >= ids[-1] + 2
    follower.db.close()


async def test_radacct_changes_and_audit_log_pruned(db: str):
    await _sessions()
    await pdb.execute("UPDATE radacct_changes SET changed_at = ?", [int(time.time()) - 7200])
    high = int((await pdb.fetch("SELECT MAX(id) AS m FROM radacct_changes"))[0]["m"])
    await pdb.execute("UPDATE usage_ingest SET change_cursor = ? WHERE id = 1", [high - 1])

    async def write(tx: object) -> None:
        await journal.audit(tx, "operator", "old")  # type: ignore[arg-type]
        await journal.audit(tx, "operator", "new")  # type: ignore[arg-type]

    await transaction(write)
    first = (await pdb.fetch("SELECT MIN(id) AS m FROM audit_log"))[0]["m"]
    await pdb.execute("UPDATE audit_log SET created_at = ? WHERE id = ?",
                     [pdb.db_time(datetime.now(UTC) - timedelta(days=400)), first])
    report = await retention.prune(retention.Policy(), datetime.now(UTC))
    assert report.audit_pruned == 1
    assert [r["action"] for r in await pdb.fetch("SELECT action FROM audit_log")] == ["new"]
    # behind the ingest's cursor only: the row it has not read stays
    rows = await pdb.fetch("SELECT id FROM radacct_changes")
    assert report.radacct_changes_pruned >= 1 and [int(r["id"]) for r in rows] == [high]



async def test_pruning_keeps_the_newest_change_so_ids_never_repeat(db: str):
    """Migration 0022: on SQLite radacct_changes hands out max(id) + 1, so even with
    every row read and old, the newest stays: an emptied table would hand out again
    ids the followers' cursors have passed."""
    await _sessions()
    await pdb.execute("UPDATE radacct_changes SET changed_at = ?", [int(time.time()) - 7200])
    high = int((await pdb.fetch("SELECT MAX(id) AS m FROM radacct_changes"))[0]["m"])
    await pdb.execute("UPDATE usage_ingest SET change_cursor = ? WHERE id = 1", [high])
    await retention.prune(retention.Policy(), datetime.now(UTC))
    assert [int(r["id"]) for r in await pdb.fetch("SELECT id FROM radacct_changes")] == [high]
    await pdb.execute("UPDATE radacct SET acctinterval = 300")
    ids = [int(r["id"]) for r in await pdb.fetch("SELECT id FROM radacct_changes")]
    assert min(ids) == high and len(ids) > 1


def test_db_prune_command(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch,
                          capsys):
    # the command's wiring (SQLite pass only: the prune itself is tested on both above)
    code, out, err = run_main(monkeypatch, capsys, sqlite_copy(request, tmp_path), tmp_path,
                              "db", "prune")
    assert code == 0, err
    assert "radacct: 0 closed sessions moved" in out and "change_journal:" in out


async def test_the_resolver_heartbeat_reports_its_journal_cursor(db: str):
    from dns_filter.heartbeat import Heartbeat

    beat = Heartbeat(db, "edge-r", cursor=lambda: 42)
    try:
        beat.beat()
    finally:
        beat.close()
    [row] = await boxes.all_boxes(boxes.RESOLVER)
    assert (row.name, row.journal_cursor) == ("edge-r", 42)
    hold, held_by = await retention.journal_hold(retention.Policy(), time.time())
    assert (hold, held_by) == (42, "edge-r/resolver")


async def test_the_enforcer_prunes_every_prune_s(db: str):
    import asyncio

    await _journal_rows(3, timedelta(hours=2))
    async with CoaClient(timeout_s=0.2, retries=0) as coa:
        enforcer = Enforcer(helpers.settings(), coa)
        stop = asyncio.Event()
        task = asyncio.ensure_future(enforcer._prune_loop(stop, retention.Policy(prune_s=1)))
        try:
            for _ in range(200):
                if not await pdb.fetch("SELECT id FROM change_journal"):
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
    assert not await pdb.fetch("SELECT id FROM change_journal")
    assert enforcer.metrics.registry.get_sample_value(
        "ispedge_enforcer_retention_rows_pruned_total", {"table": "change_journal"}) == 3
