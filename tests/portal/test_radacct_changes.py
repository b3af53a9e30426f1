"""Accounting change capture (migration 0013): every radacct insert and update is
followed by id, so rows updated in place within one second, or stamped long ago,
are never missed; on PostgreSQL an update that commits late is still counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from coa import CoaClient
from portal.demo import simnas
from portal.enforcer.daemon import Enforcer
from portal.store import db as pdb
from portal.usage import ingest
from portal.usage.ingest import Settings
from tests.enforcer import helpers

SETTINGS = Settings(ZoneInfo("UTC"), interim_seconds=300, stale_after_missed=3,
                    overlap_seconds=900)
T0 = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)


async def total(username: str = "alice") -> tuple[int, int]:
    rows = await pdb.fetch("SELECT COALESCE(SUM(bytes_in), 0) AS i,"
                           " COALESCE(SUM(bytes_out), 0) AS o FROM usage_daily"
                           " WHERE username = ?", [username])
    return int(rows[0]["i"]), int(rows[0]["o"])


async def changes() -> list[int]:
    return [int(r["radacctid"]) for r in
            await pdb.fetch("SELECT radacctid FROM radacct_changes ORDER BY id")]


async def test_every_insert_and_update_of_radacct_is_captured(db: str):
    s = simnas.SimSession("alice", "s1", framed_ip="10.0.0.2")
    await simnas.start([s], T0)
    rid = int((await pdb.fetch("SELECT radacctid FROM radacct"))[0]["radacctid"])
    s.bytes_out = 10
    await simnas.interim([s], T0 + timedelta(seconds=1))
    s.bytes_out = 20
    await simnas.interim([s], T0 + timedelta(seconds=1))  # the same second again
    assert await changes() == [rid, rid, rid]


async def test_two_updates_in_the_same_second_are_both_counted(db: str):
    s = simnas.SimSession("alice", "s1", framed_ip="10.0.0.2")
    await simnas.start([s], T0)
    await ingest.ingest_once(SETTINGS, T0)
    t = T0 + timedelta(minutes=5)
    s.bytes_out = 1000
    await simnas.interim([s], t)
    r = await ingest.ingest_once(SETTINGS, t)
    assert (r.changed, r.bytes_out) == (1, 1000)
    s.bytes_out = 1500  # rewritten in place, acctupdatetime unchanged (same second)
    await simnas.interim([s], t)
    r = await ingest.ingest_once(SETTINGS, t)
    assert (r.changed, r.bytes_out) == (1, 500)
    assert await total() == (0, 1500)
    assert (await ingest.ingest_once(SETTINGS, t)).changed == 0  # nothing twice


async def test_a_stop_stamped_long_before_the_last_pass_is_counted(db: str):
    """A NAS back after an outage reports a Stop with its old Event-Timestamp: no time
    window ("changed since the watermark - overlap") finds it; the change row does."""
    quiet = Settings(ZoneInfo("UTC"), interim_seconds=36_000)  # nothing goes stale here
    s = simnas.SimSession("alice", "s1", framed_ip="10.0.0.2")
    await simnas.start([s], T0)
    await ingest.ingest_once(quiet, T0)
    other = simnas.SimSession("bob", "s2", framed_ip="10.0.0.3")
    later = T0 + timedelta(hours=3)
    await simnas.start([other], later)
    await ingest.ingest_once(quiet, later)  # the ingest has seen rows of 3 h later
    s.bytes_out = 7000
    await simnas.stop([s], T0 + timedelta(minutes=10))  # stamped 3 h before that
    r = await ingest.ingest_once(quiet, later + timedelta(minutes=1))
    assert r.stopped == 1
    assert await total() == (0, 7000)


async def test_the_enforcer_follows_accounting_changes_within_a_second(db: str):
    await helpers.subscribers("alice")
    async with CoaClient() as coa:
        enforcer = Enforcer(helpers.settings(), coa)
    assert await enforcer.poll_sessions() == 0  # the start: its cursor at the head
    await helpers.online("alice", "s-alice", "100.64.0.10")
    assert await enforcer.poll_sessions() == 1 and enforcer.dirty == {"alice"}
    enforcer.dirty.clear()
    # an Interim-Update (e.g. bringing the IPv6 prefix) in the same second: seen too
    await pdb.execute("UPDATE radacct SET delegatedipv6prefix = '2001:db8:5::/56'"
                      " WHERE acctsessionid = 's-alice'")
    assert await enforcer.poll_sessions() == 1 and enforcer.dirty == {"alice"}


async def test_an_accounting_update_committing_late_is_counted(db: str):
    """PostgreSQL: an Interim-Update whose transaction took a lower radacct_changes id
    commits after a pass has read a higher one; the next pass counts it. (SQLite:
    writers are serialized, ids commit in order; the pass simply sees it next.)"""
    import psycopg

    from dns_filter import dburl

    a = simnas.SimSession("alice", "s1", framed_ip="10.0.0.2")
    b = simnas.SimSession("bob", "s2", framed_ip="10.0.0.3")
    await simnas.start([a, b], T0)
    await ingest.ingest_once(SETTINGS, T0)
    t = T0 + timedelta(minutes=5)
    if pdb.current_dialect() != "postgres":
        a.bytes_out = 4000
        await simnas.interim([a], t)
        assert (await ingest.ingest_once(SETTINGS, t)).bytes_out == 4000
        return
    held = psycopg.connect(dburl.parse(db).dsn)
    try:
        held.execute("UPDATE radacct SET acctoutputoctets = 4000, acctupdatetime = %s"
                     " WHERE acctsessionid = 's1'", (t,))
        b.bytes_out = 100
        await simnas.interim([b], t)  # a higher change id, committed first
        r = await ingest.ingest_once(SETTINGS, t)
        assert r.bytes_out == 100
        mark = await pdb.fetch("SELECT change_gaps FROM usage_ingest")
        assert mark[0]["change_gaps"] != "{}"  # alice's change id is an open gap
        held.commit()
    finally:
        held.close()
    r = await ingest.ingest_once(SETTINGS, t)
    assert (r.changed, r.bytes_out) == (1, 4000)
    assert await total("alice") == (0, 4000)


async def test_retention_keeps_the_newest_change_so_ids_never_repeat(db: str):
    """Migration 0022: on SQLite radacct_changes is a rowid table that hands out
    max(id) + 1, so the ingest's retention leaves the newest row: an emptied table
    would hand out again ids a follower's cursor has already passed."""
    quiet = Settings(ZoneInfo("UTC"), interim_seconds=36_000)  # nothing goes stale here
    now = datetime.now(UTC).replace(microsecond=0)  # change rows are stamped by the clock
    s = simnas.SimSession("alice", "s1", framed_ip="10.0.0.2")
    await simnas.start([s], now - timedelta(minutes=10))
    s.bytes_out = 10
    await simnas.interim([s], now - timedelta(minutes=5))
    before = [int(r["id"]) for r in
              await pdb.fetch("SELECT id FROM radacct_changes ORDER BY id")]
    await ingest.ingest_once(quiet, now)
    # A full pass two hours on: every row read is past CHANGE_KEEP_S.
    await ingest.ingest_once(quiet, now + timedelta(hours=2))
    kept = [int(r["id"]) for r in await pdb.fetch("SELECT id FROM radacct_changes")]
    assert kept == [before[-1]]
    s.bytes_out = 20
    await simnas.interim([s], now)
    after = [int(r["id"]) for r in
             await pdb.fetch("SELECT id FROM radacct_changes ORDER BY id")]
    assert after[-1] > before[-1]
    assert (await ingest.ingest_once(quiet, now + timedelta(hours=2))).changed == 1
