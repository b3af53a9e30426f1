"""Issue 16: a journal row that commits after higher ids is acted on when it commits.

Real components: the database (PostgreSQL in the suite's second pass, SQLite in
the first), the resolver process (`python -m dns_filter`, asked with `dig -b`),
the enforcer (its daemon loop, in this process) sending CoA to a NAS emulator
over RADIUS. Maya's parental switch and plan change are written by a
transaction that holds its (lower) journal ids open for 30 s; Sami's changes are
written by the portal's use cases meanwhile and take higher ids. Each follower
must act on Sami's rows at once and on Maya's right after her commit -- with
the resolver's full reload set far beyond the 30 s, so only following the
journal can do it.

On SQLite writers are serialized (BEGIN IMMEDIATE), so a later id cannot commit
while an earlier one is held: the same scenario shows Sami's writes waiting for
Maya's commit and then every row followed in order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from coa import CoaClient
from coa.emulator import NasEmulator
from portal.core import parental, subscribers
from portal.enforcer.daemon import Enforcer
from portal.store import db as pdb
from portal.store.radacct import insert_sessions
from portal.store.tx import transaction
from tests.dns.conftest import Launcher, Proc
from tests.dns.test_resolver_process import dig, status
from tests.enforcer import helpers
from tests.enforcer.helpers import FAST
from tests.support import seed

pytestmark = pytest.mark.db

MAYA, SAMI = "127.0.6.2", "127.0.6.3"
HOLD_S = 30.0
COA_REQUEST = 43
LATENCY_S = 1.5  # poll 0.2 s + a pass, with margin for a loaded 2-core machine


@pytest.fixture
async def nas(db: str) -> AsyncIterator[NasEmulator]:
    async with helpers.nas_emulator() as emulator:
        yield emulator


async def answer(r: Proc, source: str) -> str:
    return status(await asyncio.to_thread(dig, r.port, "www.bet365.com", source=source))


def coa_rates(nas: NasEmulator, username: str) -> list[str]:
    return [str(r.attributes["Mikrotik-Rate-Limit"][0]) for r in nas.received
            if r.code == COA_REQUEST and r.attributes.get("User-Name") == [username]
            and r.attributes.get("Mikrotik-Rate-Limit")]


FAST_RATE = f"{FAST[1]}k/{FAST[0]}k"  # Mikrotik-Rate-Limit rx/tx = up/down


async def within(check, seconds: float, what: str) -> float:  # noqa: ANN001
    started = time.monotonic()
    while not await check():
        took = time.monotonic() - started
        assert took < seconds, f"{what}: not done after {took:.2f} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


class Held:
    """Maya's changes in one transaction on its own connection, committed on demand."""

    def __init__(self, url: str, dialect: str, maya_id: int, fast_plan_id: int):
        self.url, self.dialect = url, dialect
        self.maya_id, self.fast_plan_id = maya_id, fast_plan_id
        self.ids: list[int] = []

    def begin(self) -> None:
        if self.dialect == "postgres":
            import psycopg

            from dns_filter import dburl

            self.conn = psycopg.connect(dburl.parse(self.url).dsn)  # a transaction opens
            mark = "%s"
        else:
            self.conn = sqlite3.connect(pdb.sqlite_path(self.url), timeout=30,
                                        isolation_level=None, check_same_thread=False)
            self.conn.execute("BEGIN IMMEDIATE")
            mark = "?"
        now = datetime.now(UTC).isoformat(" ")
        ex = self.conn.execute
        ex(f"UPDATE subscribers SET plan_id = {mark} WHERE id = {mark}",
           (self.fast_plan_id, self.maya_id))
        ex(f"INSERT INTO parental_settings (enabled, categories, updated_at, subscriber_id)"
           f" VALUES ({mark}, 'gambling', {mark}, {mark})", (True, now, self.maya_id))
        for kind, payload in (("plan", {"plan_id": self.fast_plan_id}),
                              ("parental", {"enabled": True, "categories": ["gambling"]})):
            cur = ex(f"INSERT INTO change_journal (created_at, username, kind, payload, origin)"
                     f" VALUES ({mark}, 'maya', {mark}, {mark}, 'portal') RETURNING id",
                     (now, kind, json.dumps(payload, sort_keys=True)))
            self.ids.append(int(cur.fetchone()[0]))

    def commit(self) -> None:
        self.conn.commit() if self.dialect == "postgres" else self.conn.execute("COMMIT")
        self.conn.close()


async def journal_ids(username: str) -> list[int]:
    rows = await pdb.fetch("SELECT id FROM change_journal WHERE username = ? ORDER BY id",
                           [username])
    return [int(r["id"]) for r in rows]


async def test_a_journal_row_held_open_30_s_is_followed_when_it_commits(
        db: str, db_url: str, launcher: Launcher, nas: NasEmulator) -> None:
    dialect = pdb.current_dialect()
    await seed.reseller_with_plans("acme", parental_enabled=True, allow_plan_change=True)
    maya = await seed.subscriber("maya")
    sami = await seed.subscriber("sami")
    await insert_sessions([seed.online("maya", MAYA), seed.online("sami", SAMI)])
    fast = await pdb.fetch("SELECT id FROM plans WHERE name = 'Fast'")
    auth = launcher.authserver()
    # The production poll; the full reload far beyond the hold: only the journal counts.
    resolver = launcher.resolver([auth.port], database_url=db_url, poll_interval_s=0.2,
                                 full_reload_s=600.0, default_categories=[])
    assert await answer(resolver, MAYA) == "NOERROR"
    assert await answer(resolver, SAMI) == "NOERROR"

    stop = asyncio.Event()
    async with CoaClient(timeout_s=0.5, retries=1) as coa:
        settings = dataclasses.replace(helpers.settings(reconcile_s=600.0), poll_s=0.2)
        enforcer = Enforcer(settings, coa)
        task = asyncio.create_task(enforcer.run(stop))
        try:
            await within(lambda: asyncio.sleep(0, result=enforcer.shaper_ready or
                                               enforcer.last_pass.subscribers >= 2),
                         10, "the enforcer's first reconcile")
            before = set(await journal_ids("sami"))  # its 'subscriber' row
            held = Held(db_url, dialect, maya.id, int(fast[0]["id"]))
            began = time.monotonic()

            async def sami_changes() -> None:
                await parental.change(sami, {"enabled": True, "categories": {"gambling": True}},
                                      ["adult", "gambling"])
                await subscribers.set_plan("sami", "Fast")

            if dialect == "postgres":
                held.begin()
                await sami_changes()  # commits while Maya's lower ids are still open
                sami_ids = set(await journal_ids("sami")) - before
                assert min(sami_ids) > max(held.ids)
                took = await within(lambda: _is(answer(resolver, SAMI), "NXDOMAIN"),
                                    LATENCY_S, "sami blocked")
                took_coa = await within(
                    lambda: asyncio.sleep(0, result=FAST_RATE in coa_rates(nas, "sami")),
                    LATENCY_S, "sami's CoA")
                print(f"\nsami (higher ids, committed): DNS {took * 1000:.0f} ms, "
                      f"CoA {took_coa * 1000:.0f} ms")
                # Maya's rows are still uncommitted: nobody acts on them
                while time.monotonic() - began < HOLD_S:
                    assert await answer(resolver, MAYA) == "NOERROR"
                    assert FAST_RATE not in coa_rates(nas, "maya")
                    await asyncio.sleep(1.0)
                held.commit()
            else:
                # SQLite: Sami's writes wait for the held write lock (BEGIN IMMEDIATE),
                # so they take higher ids AND commit after Maya's.
                held.begin()
                release = threading.Timer(1.0, held.commit)  # within the 2 s use-case budget
                release.start()
                await sami_changes()
                release.join()
                assert min(set(await journal_ids("sami")) - before) > max(held.ids)
            committed = time.monotonic()
            took = await within(lambda: _is(answer(resolver, MAYA), "NXDOMAIN"), LATENCY_S,
                                "maya blocked after her commit")
            took_coa = await within(
                lambda: asyncio.sleep(0, result=FAST_RATE in coa_rates(nas, "maya")),
                max(0.0, LATENCY_S - (time.monotonic() - committed)), "maya's CoA")
            print(f"maya (lower ids, held {time.monotonic() - began:.0f} s): DNS "
                  f"{took * 1000:.0f} ms, CoA {took_coa * 1000:.0f} ms after commit")
            assert await answer(resolver, SAMI) == "NXDOMAIN"
            # On SQLite Sami's rows commit after Maya's: his CoA may come a pass later.
            await within(lambda: asyncio.sleep(0, result=FAST_RATE in coa_rates(nas, "sami")),
                         LATENCY_S, "sami's CoA")
            assert coa_rates(nas, "maya").count(FAST_RATE) == 1
            assert coa_rates(nas, "sami").count(FAST_RATE) == 1
            assert not enforcer.cursor.gaps  # every gap closed by its row
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)


async def _is(pending, want: str) -> bool:  # noqa: ANN001
    return await pending == want


async def test_writes_commit_in_id_order_on_sqlite(db: str, db_url: str) -> None:
    """The premise of SQLite's gap-free cursor: a held writer blocks the next one."""
    if pdb.current_dialect() != "sqlite":
        return  # PostgreSQL's case is the test above
    await seed.reseller_with_plans("acme")
    conn = sqlite3.connect(pdb.sqlite_path(db_url), timeout=30, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO change_journal (created_at, username, kind, payload, origin)"
                 " VALUES ('now', 'a', 'wallet', '{}', 'portal')")

    async def later(tx: object) -> None:
        await pdb.execute("INSERT INTO change_journal (created_at, username, kind, payload,"
                          " origin) VALUES ('now', 'b', 'wallet', '{}', 'portal')")

    writer = asyncio.create_task(transaction(later, budget_s=10))
    await asyncio.sleep(1.0)
    assert not writer.done()  # waits for the held write lock
    conn.execute("COMMIT")
    await writer
    assert await journal_ids("a") < await journal_ids("b")


async def test_notify_wakes_both_followers_long_before_their_poll(
        db: str, db_url: str, launcher: Launcher, nas: NasEmulator) -> None:
    """PostgreSQL: polls every 5 s, yet each change is acted on within a second
    (LISTEN/NOTIFY). SQLite has no NOTIFY: followers poll (the test above)."""
    from portal.config import load_config
    from portal.store.follow import Listener

    if pdb.current_dialect() != "postgres":
        listener = Listener(db_url, ["ispedge_journal"], lambda: None)
        listener.start()
        assert listener._task is None  # nothing to LISTEN on
        return
    await seed.reseller_with_plans("acme", parental_enabled=True, allow_plan_change=True)
    sami = await seed.subscriber("sami")
    await insert_sessions([seed.online("sami", SAMI)])
    auth = launcher.authserver()
    resolver = launcher.resolver([auth.port], database_url=db_url, poll_interval_s=5.0,
                                 full_reload_s=600.0, default_categories=[])
    assert await answer(resolver, SAMI) == "NOERROR"
    config = load_config(None, {"ISPEDGE_DATABASE_URL": db_url})
    settings = dataclasses.replace(helpers.settings(reconcile_s=600.0), poll_s=5.0, ingest_s=0)
    stop = asyncio.Event()
    async with CoaClient(timeout_s=0.5, retries=1) as coa:
        enforcer = Enforcer(settings, coa, None, config)
        task = asyncio.create_task(enforcer.run(stop))
        try:
            await within(lambda: asyncio.sleep(0, result=enforcer.last_pass.subscribers >= 1),
                         10, "the enforcer's first reconcile")
            await asyncio.sleep(1.0)  # both LISTEN connections up
            dns_ms, coa_ms = [], []
            for on, plan in ((True, "Fast"), (False, "Basic"), (True, "Fast")):
                sent_before = len(coa_rates(nas, "sami"))
                await parental.change(sami, {"enabled": on, "categories": {"gambling": on}},
                                      ["adult", "gambling"])
                await subscribers.set_plan("sami", plan)
                want = "NXDOMAIN" if on else "NOERROR"
                dns_ms.append(await within(lambda w=want: _is(answer(resolver, SAMI), w), 1.0,
                                           f"DNS {want} without waiting for the 5 s poll"))
                coa_ms.append(await within(
                    lambda n=sent_before: asyncio.sleep(0, result=len(coa_rates(nas, "sami"))
                                                        > n), 1.0, "CoA before the 5 s poll"))
            print(f"\nwoken by NOTIFY: DNS {[round(x * 1000) for x in dns_ms]} ms, "
                  f"CoA {[round(x * 1000) for x in coa_ms]} ms (polls every 5 s)")
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
