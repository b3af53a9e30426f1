"""The enforcer's live ingest, in process, against a real database and a NAS emulator
speaking RADIUS over UDP: accounting changes -> one ingest pass -> a pass over the
subscribers whose sessions changed, on the usage just counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coa import COA_REQUEST, CoaClient
from coa.emulator import NasEmulator
from portal.config import load_config
from portal.demo import simnas
from portal.enforcer.daemon import Enforcer
from portal.store import db as pdb
from tests.enforcer import helpers
from tests.enforcer.helpers import BASIC, BASIC_TIER1, GB
from tests.enforcer.test_enforcer_db import coa, nas, rate_limit, sent  # noqa: F401


async def started(db_url: str, client: CoaClient) -> Enforcer:
    config = load_config(None, {"ISPEDGE_DATABASE_URL": db_url})
    enforcer = Enforcer(helpers.settings(ingest_coalesce_s=0.05), client, None, config)
    assert enforcer.live_ingest
    await enforcer.start_cursor()
    await enforcer.poll_sessions()  # its accounting cursor at the head
    return enforcer


async def test_an_interim_is_ingested_before_its_subscriber_is_enforced(
        nas: NasEmulator, coa: CoaClient, db_url: str) -> None:  # noqa: F811
    await helpers.subscribers("alice")
    enforcer = await started(db_url, coa)
    now = datetime.now(UTC)
    alice = simnas.SimSession("alice", "s-alice", "127.0.0.1", "100.64.0.10")
    await simnas.start([alice], now - timedelta(minutes=5))
    assert await enforcer.poll_sessions() == 1
    # not enforced on the old usage: it waits for the ingest (one pass, not two)
    assert enforcer.dirty == set() and enforcer.after_ingest == {"alice"}
    assert enforcer.coalesce.due_in(0.0) is not None
    await enforcer.ingest_now()
    assert enforcer.dirty == {"alice"} and enforcer.after_ingest == set()
    await enforcer.enforce(enforcer.dirty)
    await enforcer.settle()
    assert sent(nas, "alice") == [(COA_REQUEST, rate_limit(*BASIC))]
    enforcer.dirty.clear()

    alice.bytes_out = 101 * GB  # the interim that crosses monthly tier 1
    await simnas.interim([alice], now)
    assert await enforcer.poll_sessions() == 1
    result = await enforcer.ingest_now()
    assert result.bytes_out == 101 * GB and enforcer.dirty == {"alice"}
    report = await enforcer.enforce(enforcer.dirty)
    await enforcer.settle()
    assert report.sent == 1
    assert sent(nas, "alice")[-1] == (COA_REQUEST, rate_limit(*BASIC_TIER1))


async def test_a_box_enforces_usage_another_box_ingested(
        nas: NasEmulator, coa: CoaClient, db_url: str) -> None:  # noqa: F811
    """The ingest is shared: box B's pass may count the interim of box A's
    subscriber. A still enforces her after its own pass (which then finds nothing
    new), so the new usage is read, never counted twice."""
    await helpers.subscribers("alice")
    a = await started(db_url, coa)
    b = await started(db_url, coa)
    now = datetime.now(UTC)
    alice = simnas.SimSession("alice", "s-alice", "127.0.0.1", "100.64.0.10")
    await simnas.start([alice], now - timedelta(minutes=5))
    for e in (a, b):
        await e.poll_sessions()
        await e.ingest_now()
    await a.enforce(a.dirty)
    await a.settle()
    a.dirty.clear()

    alice.bytes_out = 101 * GB
    await simnas.interim([alice], now)
    await a.poll_sessions()
    await b.poll_sessions()
    counted = await b.ingest_now()  # B got there first
    assert counted.bytes_out == 101 * GB
    mine = await a.ingest_now()
    assert mine.bytes_out == 0 and a.dirty == {"alice"}
    await a.enforce(a.dirty)
    await a.settle()
    assert sent(nas, "alice")[-1] == (COA_REQUEST, rate_limit(*BASIC_TIER1))
    rows = await pdb.fetch("SELECT SUM(bytes_out) AS o FROM usage_daily"
                                  " WHERE username = 'alice'")
    assert int(rows[0]["o"]) == 101 * GB
