"""The one write path: the transaction helper's retries and the one speed writer.

Retry safety: each writing use case is made to fail with a busy database on its
first attempt (just before commit, after all its writes ran); the helper retries
it whole, and exactly one of each row it writes exists afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from portal.core import parental, renewal, subscribers, tickets, topups
from portal.core.billing import plan_change
from portal.store import tx
from portal.store.models import (
    AuditLog,
    ChangeJournal,
    Invoice,
    ParentalSettings,
    Plan,
    RadReply,
    Subscriber,
    Ticket,
    UsageDaily,
    WalletEntry,
)
from tests.portal.billing_helpers import (
    counts,
    customer,
    invoice_numbers_gap_free,
    ledger_matches_balances,
    setup_resellers,
)
from tests.support.portal import ispedge_cli

GB = 10**9


@pytest.fixture
def busy_once() -> Iterator[list[int]]:
    """The first attempt of every transaction fails as if FreeRADIUS held the lock."""
    attempts: list[int] = []

    def fail_first(attempt: int) -> None:
        attempts.append(attempt)
        if attempt == 1:
            raise sqlite3.OperationalError("database is locked")

    tx._before_commit = fail_first
    try:
        yield attempts
    finally:
        tx._before_commit = None


async def _rows(model: type, **filters: object) -> int:
    return await model.filter(**filters).count()  # type: ignore[attr-defined, no-any-return]


UseCase = Callable[[Subscriber], Awaitable[object]]


async def _buy(sub: Subscriber) -> object:
    return await topups.buy_data(sub.id, 2, None, datetime.now(UTC))


async def _change_plan(sub: Subscriber) -> object:
    fast = await Plan.get(name="Fast", reseller_id=sub.reseller_id)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    q = await plan_change.quote_plan_change(sub, fast.id, now)
    key = b"k" * 32
    signed = plan_change.offer(q, sub.id, sub.balance_cents, key)["quote"]
    rules = plan_change.ChangeRules(key=key, per_day=3, tz=ZoneInfo("UTC"))
    return await plan_change.change_plan(sub.id, fast.id, signed, now, rules)


async def _credit(sub: Subscriber) -> object:
    return await subscribers.credit(sub.username, 700, "cash")


async def _renew(sub: Subscriber) -> object:
    return await renewal.renew_username(sub.username, datetime.now(UTC), paid_by="free",
                                        reference="test")


async def _set_plan(sub: Subscriber) -> object:
    return await subscribers.set_plan(sub.username, "Fast")


async def _set_status(sub: Subscriber) -> object:
    return await subscribers.set_status(sub.username, "disabled")


async def _parental(sub: Subscriber) -> object:
    return await parental.change(sub, {"enabled": True, "categories": {"adult": True}},
                                 ["adult", "gambling"])


async def _ticket(sub: Subscriber) -> object:
    return await tickets.open_ticket(sub, "billing", "Invoice", "Where is my invoice?")


CASES: dict[str, tuple[UseCase, dict[str, int]]] = {
    # use case: (call, rows of each table it adds exactly once)
    "buy data": (_buy, {"wallet": 1, "journal": 1, "invoices": 1, "topups": 1, "audit": 1}),
    "change plan": (_change_plan, {"wallet": 1, "journal": 1, "invoices": 1, "topups": 0,
                                   "audit": 1}),
    "credit": (_credit, {"wallet": 1, "journal": 1, "invoices": 1, "topups": 0, "audit": 1}),
    "renew": (_renew, {"wallet": 0, "journal": 1, "invoices": 0, "topups": 0, "audit": 1}),
    "set plan": (_set_plan, {"wallet": 0, "journal": 1, "invoices": 0, "topups": 0,
                             "audit": 1}),
    "set status": (_set_status, {"wallet": 0, "journal": 1, "invoices": 0, "topups": 0,
                                 "audit": 1}),
    "parental": (_parental, {"wallet": 0, "journal": 1, "invoices": 0, "topups": 0,
                             "audit": 1}),
    "open ticket": (_ticket, {"wallet": 0, "journal": 0, "invoices": 0, "topups": 0,
                              "audit": 1}),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_busy_first_attempt_is_retried_whole_and_writes_once(
        db: str, busy_once: list[int], name: str) -> None:
    call, added = CASES[name]
    await setup_resellers()
    sub = await customer("retry@x", 10000, days_used=3)
    before = await counts()
    busy_once.clear()
    await call(sub)
    after = await counts()
    assert busy_once == [1, 2], "the use case must have been retried exactly once"
    grown = dict(zip(("wallet", "journal", "invoices", "topups", "audit"),
                     (b - a for a, b in zip(astuple(before), astuple(after), strict=True)),
                     strict=True))
    assert grown == added
    await ledger_matches_balances()
    await invoice_numbers_gap_free()
    if name == "parental":
        assert await _rows(ParentalSettings, subscriber_id=sub.id) == 1
    if name == "open ticket":
        assert await _rows(Ticket, subscriber_id=sub.id) == 1


async def test_a_database_busy_past_the_budget_is_503_and_writes_nothing(db: str) -> None:
    await setup_resellers()
    sub = await customer("stuck@x", 10000)
    before = await counts()

    def always_busy(attempt: int) -> None:
        raise sqlite3.OperationalError("database is locked")

    tx._before_commit = always_busy
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(tx.Busy) as caught:
            await tx.transaction(lambda conn: _buy(sub), budget_s=0.3)
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        tx._before_commit = None
    assert caught.value.status == 503 and caught.value.extra["retry_after"] >= 1
    assert elapsed < 1.0
    assert await counts() == before


async def test_errors_that_are_not_busy_are_not_retried(db: str) -> None:
    calls = 0

    async def broken(conn: object) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not a lock")

    with pytest.raises(ValueError):
        await tx.transaction(broken)
    assert calls == 1


async def test_busy_is_recognised_on_both_databases() -> None:
    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__("pg")
            self.sqlstate = sqlstate

    assert tx.is_busy(sqlite3.OperationalError("database is locked"))
    assert tx.is_busy(RuntimeError(PgError("40001")))  # wrapped, as Tortoise wraps them
    assert tx.is_busy(PgError("40P01")) and tx.is_busy(PgError("55P03"))
    assert not tx.is_busy(PgError("23505"))  # a unique violation is not retried
    assert not tx.is_busy(sqlite3.OperationalError("no such table: x"))


# --- the one speed writer ----------------------------------------------------------------

@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Callable[..., str]:
    return ispedge_cli(db_url, tmp_path / "state")


def _db(db_url: str, fn: Callable[[], Awaitable[object]]) -> object:
    from portal.store import db

    async def run() -> object:
        await db.open_db(db_url)
        try:
            return await fn()
        finally:
            await db.close_db()

    return asyncio.run(run())


def test_cli_set_plan_in_a_fup_tier_writes_the_tier_speed(cli, db_url: str) -> None:
    cli("reseller", "add", "acme")
    cli("plan", "add", "Fiber 10M", "--reseller", "acme", "--down", "10000", "--up", "5000",
        "--price", "15.00", "--tier", "monthly:1:80GB:2000/1000")
    cli("plan", "add", "Fiber 20M", "--reseller", "acme", "--down", "20000", "--up", "8000",
        "--price", "25.00", "--tier", "monthly:1:80GB:3000/1500")
    cli("subscriber", "add", "ali@acme.net", "--password", "pppoe-pw", "--reseller", "acme",
        "--plan", "Fiber 10M")

    async def heavy_use() -> None:
        await UsageDaily.create(username="ali@acme.net", day=datetime.now(UTC).date(),
                                bytes_in=0, bytes_out=90 * GB)

    _db(db_url, heavy_use)
    cli("subscriber", "set-plan", "ali@acme.net", "Fiber 20M")

    async def reply() -> tuple[str, list[dict[str, object]]]:
        row = await RadReply.get(username="ali@acme.net", attribute="Mikrotik-Rate-Limit")
        rows = await ChangeJournal.filter(username="ali@acme.net", kind="plan").values()
        return row.value, [json.loads(str(r["payload"])) for r in rows]

    value, plan_rows = _db(db_url, reply)  # type: ignore[misc]
    # Past 80 GB this cycle: Fiber 20M's tier 1 (3000 down / 1500 up; MikroTik says up/down).
    assert value == "1500k/3000k"
    assert plan_rows[-1]["speed"] == {"reason": "fup:monthly:1", "action": "rate",
                                      "down_kbps": 3000, "up_kbps": 1500}


async def test_every_speed_input_change_writes_radreply_and_says_so_in_the_journal(
        db: str) -> None:
    await setup_resellers()
    await customer("io@x", 10000)
    await UsageDaily.create(username="io@x", day=datetime.now(UTC).date(), bytes_in=0,
                            bytes_out=105 * GB)

    async def reply() -> str:
        return (await RadReply.get(username="io@x", attribute="Mikrotik-Rate-Limit")).value

    await subscribers.set_status("io@x", "disabled")
    assert await reply() == "256k/256k"
    await subscribers.set_status("io@x", "active")
    assert await reply() == "1000k/2000k"  # Basic's tier 1: past 100 GB this cycle
    await topups.buy_data((await Subscriber.get(username="io@x")).id, 10, None,
                          datetime.now(UTC))
    assert await reply() == "5000k/10000k"  # the bonus lifts the tier
    await Subscriber.filter(username="io@x").update(
        expires_at=datetime.now(UTC) - timedelta(minutes=1))
    await renewal.renew_username("io@x", datetime.now(UTC), paid_by="free", reference="test")
    assert await reply() == "1000k/2000k"  # a new cycle's bonus is 0 again
    kinds = [r.kind for r in await ChangeJournal.filter(username="io@x").order_by("id")]
    assert kinds == ["subscriber", "wallet", "status", "status", "topup", "status"]
    for row in await ChangeJournal.filter(username="io@x", kind__in=["status", "topup"]):
        assert set(json.loads(row.payload)["speed"]) == {"reason", "action", "down_kbps",
                                                         "up_kbps"}
    assert await AuditLog.filter(username="io@x").count() == 6
    assert await Invoice.all().count() == 2  # the credit's receipt, the top-up's invoice
    assert await WalletEntry.all().count() == 2


# --- the WAL checkpoint, off the event loop -----------------------------------------------

async def test_sqlite_commits_never_checkpoint_and_a_thread_keeps_the_wal_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The portal's commits run on the event loop, so they must not checkpoint (that
    stalled every request for up to ~110 ms); the checkpoint thread must still stop
    the WAL from growing with everything ever written."""
    from portal.store import db as portal_db

    monkeypatch.setattr(tx, "CHECKPOINT_S", 0.2)
    path = tmp_path / "wal.db"
    await portal_db.open_db(f"sqlite://{path}")
    try:
        async def create(conn: object) -> None:
            tx._sqlite_writer().conn.execute("CREATE TABLE blob_log (b BLOB)")

        await tx.transaction(create)
        writer = tx._sqlite_writer()
        assert writer.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        page = 4096
        rounds, per_round = 6, 300  # 1,800 pages written: above the 1,000-page autocheckpoint

        async def write(conn: object) -> None:
            writer.conn.executemany("INSERT INTO blob_log VALUES (?)",
                                    [(b"x" * page,) for _ in range(per_round)])

        for _ in range(rounds):
            await tx.transaction(write)
            await asyncio.sleep(0.5)  # a checkpoint lands; the next write restarts the WAL
        wal = await asyncio.to_thread(os.path.getsize, f"{path}-wal")
        assert wal < rounds * per_round * page / 2, wal
    finally:
        await portal_db.close_db()
    writer.checkpointer.join(timeout=2)
    assert not writer.checkpointer.is_alive()  # closing the database ends the thread
