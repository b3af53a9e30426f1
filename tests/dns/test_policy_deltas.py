"""Issue 17: the resolver keeps its policy by deltas, never by a periodic full reload
on the answer path, and reads the journal in bounded batches.

A real migrated database (SQLite, then PostgreSQL in the suite's second pass), the
portal's own use cases writing; the follower's steps (`_work` in the polling
thread, `_applied` on the reactor) are run in turn, and the reads of the whole
dns_policy view are counted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise.backends.base.client import BaseDBAsyncClient

from coa import CoaClient
from dns_filter.metrics import Metrics
from dns_filter.policy import PolicyTable
from dns_filter.policy_sync import PolicyFollower
from portal.core import parental
from portal.enforcer.daemon import Enforcer
from portal.store import db, journal
from portal.store.models import Subscriber
from portal.store.radacct import AcctSession, insert_sessions
from portal.store.tx import transaction
from tests.enforcer import helpers
from tests.support import seed

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("db")]

CATEGORIES = ["adult", "gambling", "social-media", "doh"]


async def online(username: str, address: str) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    await insert_sessions([AcctSession(username, f"s-{username}", "127.0.0.1", start, start,
                                       None, 0, 0, framed_ip=address)])


async def step(f: PolicyFollower, full: bool = False) -> str:
    result = await asyncio.to_thread(f._work, full, f.cursor)
    f._applied(result)
    return result[0]


async def test_changes_arrive_as_deltas_without_a_full_reload(db_url: str,
                                                              tmp_path: Path) -> None:
    await seed.reseller_with_plans("acme", parental_enabled=True)
    for name in ("ann", "ben", "cat"):
        await seed.subscriber(name)
    await online("ann", "100.64.9.1")
    await online("ben", "100.64.9.2")
    table = PolicyTable()
    f = PolicyFollower(db_url, table, tmp_path / "snap.json", Metrics(), 0.2, 300.0)
    assert await asyncio.to_thread(f.load_initial) == "database"
    assert f.db is not None and f.db.full_loads == 1
    assert set(table.v4) == {"100.64.9.1", "100.64.9.2"}

    # a parental change, a session start and a session stop, as the portal and
    # FreeRADIUS write them
    ann = await Subscriber.get(username="ann")
    await parental.change(ann, {"enabled": True, "categories": {"gambling": True}}, CATEGORIES)
    await online("cat", "100.64.9.3")
    await helpers.offline("s-ben")
    for _ in range(3):
        await step(f)
    assert table.v4 == {"100.64.9.1": frozenset({"gambling"}), "100.64.9.3": frozenset()}
    assert f.db.full_loads == 1, "a change was applied by reloading the whole view"

    # the safety-net check reads the view again but changes nothing: the table the
    # resolver answers from is neither rebuilt nor swapped
    version = table.version
    assert await step(f, full=True) == "same"
    assert f.db.full_loads == 2 and table.version == version
    # ... and repairs a difference the deltas could not see, as one edit
    await db.execute("UPDATE radacct SET framedipaddress = ? WHERE acctsessionid = 's-cat'",
                     ["100.64.9.4"])
    f.session_cursor = None  # as if the accounting change had been missed
    f.follow_sessions = False
    assert await step(f, full=True) == "full"
    assert set(table.v4) == {"100.64.9.1", "100.64.9.4"}
    f.db.close()


async def test_journal_batches_are_bounded(db_url: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    await seed.reseller_with_plans("acme", parental_enabled=True)
    await seed.subscriber("ann")
    table = PolicyTable()
    f = PolicyFollower(db_url, table, tmp_path / "snap.json", Metrics(), 0.2, 300.0)
    await asyncio.to_thread(f.load_initial)
    enforcer = Enforcer(helpers.settings(batch=1000), CoaClient(), None)
    await enforcer.start_cursor()

    async def burst(tx: BaseDBAsyncClient) -> None:
        await journal.record_many(tx, [journal.Entry(f"x{i:05d}", "parental", {})
                                       for i in range(2500)])

    await transaction(burst)
    assert f.db is not None
    queries: list[str] = []
    real = f.db._query

    def counted(sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        queries.append(sql)
        return real(sql, params)

    monkeypatch.setattr(f.db, "_query", counted)
    sizes = []
    while True:
        queries.clear()
        kind, _cursor, payload = await asyncio.to_thread(f._work, False, f.cursor)
        f._applied((kind, _cursor, payload))
        if kind == "none":
            break
        assert kind == "partial" and isinstance(payload, dict)
        sizes.append(len(payload))
        # one journal read, one session read, and 1,000 names in two policy reads
        assert len(queries) <= 4, queries
    assert sizes == [1000, 1000, 500]
    assert f.db.full_loads == 1
    assert [await enforcer.poll_journal() for _ in range(4)] == [1000, 1000, 500, 0]
    f.db.close()
