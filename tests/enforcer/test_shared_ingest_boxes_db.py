"""Issue 17 with 20 boxes: the usage ingest is shared, enforcement is not.

Any box's ingest pass may count the Interim-Update that takes a subscriber past
her FUP tier; the box that owns her NAS must still send the CoA, as soon as
some pass has counted that change -- not once the ingest has caught up with
every change of every box (under 670 interims/s it never had: no CoA at all in
bench/scale_bench.py with 19 followers). And each box looks only at its own
sessions: the accounting changes it follows and the full reconcile it sweeps.

Real components: the database (SQLite and PostgreSQL), two enforcers with their
own CoA clients, NAS emulators speaking RADIUS over UDP on loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from coa import COA_REQUEST, CoaClient
from dns_filter import dburl
from portal.config import load_config
from portal.demo import simnas
from portal.enforcer import daemon
from portal.enforcer.daemon import Enforcer
from portal.store import db, follow
from tests.enforcer import helpers
from tests.enforcer.helpers import BASIC, BASIC_TIER1, GB
from tests.enforcer.test_boxes_db import NAS_1, NAS_2, coas, nas_on, rate_limit, two_clients

__all__ = ["two_clients"]  # the fixture, used by name

NOISE = [f"n{i:02d}" for i in range(6)]  # edge-2's subscribers


async def edge(name: str, client: CoaClient, db_url: str) -> Enforcer:
    config = load_config(None, {"ISPEDGE_DATABASE_URL": db_url})
    enforcer = Enforcer(helpers.settings(box=name, ingest_coalesce_s=0.05), client, None,
                        config)
    assert enforcer.live_ingest
    await enforcer.heartbeat()
    await enforcer.start_cursor()
    await enforcer.poll_sessions()  # its accounting cursor at the head
    return enforcer


async def usage_out(username: str) -> int:
    rows = await db.fetch("SELECT COALESCE(SUM(bytes_out), 0) AS o FROM usage_daily"
                          " WHERE username = ?", [username])
    return int(rows[0]["o"])


async def test_a_crossing_counted_by_another_box_reaches_the_owning_boxs_nas(
        two_clients: tuple[CoaClient, CoaClient], db_url: str) -> None:
    nas_1, _ = await nas_on(NAS_1, "edge-1")
    nas_2, _ = await nas_on(NAS_2, "edge-2")
    other: psycopg.Connection | None = None
    try:
        await helpers.subscribers("alice", *NOISE)
        edge_1 = await edge("edge-1", two_clients[0], db_url)
        edge_2 = await edge("edge-2", two_clients[1], db_url)
        now = datetime.now(UTC)
        alice = simnas.SimSession("alice", "s-alice", NAS_1, "100.64.1.10")
        noise = [simnas.SimSession(n, f"s-{n}", NAS_2, f"100.64.2.{i + 1}")
                 for i, n in enumerate(NOISE)]
        await simnas.start([alice, *noise], now - timedelta(minutes=5))
        for e in (edge_1, edge_2):
            await e.poll_sessions()
        # each box waits only for its own sessions' changes
        assert edge_1.after_ingest == {"alice"} and edge_2.after_ingest == set(NOISE)
        await edge_2.ingest_now()
        await edge_1.ingest_now()  # edge-2 counted the starts: alice is enforced now
        assert edge_1.dirty == {"alice"}
        await edge_1.enforce(edge_1.dirty)
        await edge_1.settle()
        edge_1.dirty.clear()
        assert [c[:2] for c in coas(nas_1, "alice")] == [(COA_REQUEST, rate_limit(*BASIC))]

        # The crossing interim, among edge-2's interims; edge-2's pass counts it.
        alice.bytes_out = 101 * GB
        for s in noise:
            s.bytes_out += 10**6
        await simnas.interim([alice, *noise], now)
        await edge_1.poll_sessions()
        await edge_2.poll_sessions()
        counted = await edge_2.ingest_now()
        assert counted.bytes_out == 101 * GB + len(noise) * 10**6
        # More interims keep coming (670/s in the bench) after that pass...
        for s in noise:
            s.bytes_out += 10**6
        await simnas.interim(noise, now + timedelta(seconds=1))
        await edge_1.poll_sessions()
        assert edge_1.after_ingest == {"alice"}  # edge-2's changes are not edge-1's
        if db.current_dialect() == "postgres":
            # ...and another box's pass is under way when edge-1 looks: its own
            # pass finds the ingest busy, yet alice's change is counted already.
            other = await asyncio.to_thread(psycopg.connect, dburl.parse(db_url).dsn)
            await asyncio.to_thread(other.execute,
                                    "SELECT id FROM usage_ingest WHERE id = 1 FOR UPDATE")
        mine = await edge_1.ingest_now()
        assert mine.busy == (other is not None)
        assert edge_1.dirty == {"alice"} and edge_1.after_ingest == set()
        await edge_1.enforce(edge_1.dirty)
        await edge_1.settle()
        assert [c[:2] for c in coas(nas_1, "alice")][-1] == (COA_REQUEST,
                                                              rate_limit(*BASIC_TIER1))
        # the owning box sent it, once; edge-2 sends nothing for her
        await edge_2.enforce(edge_2.dirty | {"alice"})
        await edge_2.settle()
        assert coas(nas_2, "alice") == []
        assert len(coas(nas_1, "alice")) == 2
        assert await usage_out("alice") == 101 * GB  # counted once
    finally:
        if other is not None:
            await asyncio.to_thread(other.close)
        nas_1.close()
        nas_2.close()


async def sweep(enforcer: Enforcer) -> list[str]:
    """One whole full reconcile in slices of 3; the usernames its slices named."""
    named: list[str] = []
    real = enforcer.enforce

    async def recording(usernames: set[str] | None, sweep: bool = False) -> object:
        assert usernames is not None and sweep  # slices, never one whole pass
        named.extend(sorted(usernames))
        return await real(usernames, sweep)

    enforcer.enforce = recording
    enforcer.slice_size = 3
    enforcer._start_sweep()
    while await enforcer.reconcile_slice():
        enforcer.slice_size = 3
    await enforcer.settle()
    enforcer.enforce = real
    return named


@pytest.mark.parametrize("span", [20, 1])
async def test_each_box_sweeps_only_its_own_sessions_and_state_rows(
        two_clients: tuple[CoaClient, CoaClient], db_url: str, span: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # span 1: the leader's slice looks for offline subscribers among the next 3 only
    # (a slice ends there: nothing past it may be skipped)
    monkeypatch.setattr(daemon, "OFFLINE_SPAN", span)
    nas_1, _ = await nas_on(NAS_1, "edge-1")
    nas_2, _ = await nas_on(NAS_2, "edge-2")
    try:
        ones = [f"a{i:02d}" for i in range(7)]
        twos = [f"b{i:02d}" for i in range(7)]
        await helpers.subscribers(*ones, *twos, "c-offline", "d-moved")
        for i, u in enumerate(ones):
            await helpers.online(u, f"s-{u}", f"100.64.1.{i + 1}", NAS_1)
        for i, u in enumerate(twos):
            await helpers.online(u, f"s-{u}", f"100.64.2.{i + 1}", NAS_2)
        # d-moved: once on edge-1's NAS (its state row says so), now on edge-2's
        await db.execute(
            "INSERT INTO enforcement_state (username, target, acct_session_id, address,"
            " desired_action, desired_down_kbps, desired_up_kbps, reason, state, attempts,"
            " last_error, updated_at) VALUES ('d-moved', ?, 'old', '100.64.1.99', 'rate',"
            " 10000, 5000, 'plan', 'applied', 0, '', 0)", [f"nas:{NAS_1}"])
        await helpers.online("d-moved", "s-d-moved", "100.64.2.99", NAS_2)
        # c-offline's radreply went stale while no session was open
        await db.execute("UPDATE radreply SET value = '1k/1k' WHERE username = 'c-offline'")
        edge_1 = await edge("edge-1", two_clients[0], db_url)
        edge_2 = await edge("edge-2", two_clients[1], db_url)

        named_1 = await sweep(edge_1)
        named_2 = await sweep(edge_2)
        # edge-1 (the first name: it also sweeps the subscribers with no session)
        assert sorted(named_1) == sorted([*ones, "c-offline", "d-moved"])
        assert sorted(named_2) == sorted([*twos, "d-moved"])
        assert edge_1.last_sweep.subscribers == len(ones)
        assert edge_2.last_sweep.subscribers == len(twos) + 1
        assert edge_1.last_sweep.removed == 1  # d-moved's row of edge-1's NAS
        rows = await db.fetch("SELECT value FROM radreply WHERE username = 'c-offline'"
                              " AND attribute = 'Mikrotik-Rate-Limit'")
        assert [r["value"] for r in rows] == [rate_limit(*BASIC)]
        # each NAS got its own subscribers' CoA, once
        assert sorted({str(r.attributes["User-Name"][0]) for r in nas_1.received}) == ones
        assert sorted({str(r.attributes["User-Name"][0])
                       for r in nas_2.received}) == sorted([*twos, "d-moved"])
        assert len(nas_1.received) == len(ones) and len(nas_2.received) == len(twos) + 1
        states = await db.fetch("SELECT target, COUNT(*) AS n FROM enforcement_state"
                                " GROUP BY target ORDER BY target")
        assert [(r["target"], int(r["n"])) for r in states] == [
            (f"nas:{NAS_1}", len(ones)), (f"nas:{NAS_2}", len(twos) + 1)]
    finally:
        nas_1.close()
        nas_2.close()


def test_the_fallback_poll_is_long_only_while_notify_wakes_the_worker() -> None:
    settings = dataclasses.replace(helpers.settings(listen_poll_s=2.0), poll_s=0.2)
    enforcer = Enforcer(settings, CoaClient(), None)
    assert enforcer.poll_wait(1000.0) == 0.2  # no LISTEN (SQLite, or not connected yet)
    enforcer.listener = follow.Listener("postgres://x@127.0.0.1/x", [], lambda: None)
    assert enforcer.poll_wait(1000.0) == 0.2
    enforcer.listener.connected = True
    assert enforcer.poll_wait(1000.0) == 2.0
    enforcer.retry_due = 1000.5  # a retry this box recorded falls due first
    assert enforcer.poll_wait(1000.0) == 0.5
    assert enforcer.poll_wait(1000.45) == 0.2  # never below poll_s
