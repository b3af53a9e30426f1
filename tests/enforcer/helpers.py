"""Shared set-up for the enforcer tests: subscribers with open sessions, usage, NAS rows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime

from coa.emulator import NasEmulator
from portal.enforcer.settings import Settings
from portal.speed.rules import Policy
from portal.store import db, radacct
from portal.store.models import EnforcementState, Nas, Subscriber
from portal.usage.ingest import day_param
from tests.support import seed

GB = 10**9
SECRET = "enforcer-test-secret"
# seed.reseller_with_plans: Basic 10000/5000 with monthly:1:100GB:2000/1000; Fast 50000/20000
BASIC = (10000, 5000)
BASIC_TIER1 = (2000, 1000)
FAST = (50000, 20000)


def settings(**kw: object) -> Settings:
    policy = kw.pop("policy", Policy(128, 64, "suspend", retry_base_s=0.3, retry_max_s=2))
    return Settings(policy=policy, poll_s=0.05, reply_profile="mikrotik",  # type: ignore[arg-type]
                    **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def nas_emulator() -> AsyncIterator[NasEmulator]:
    """A NAS that answers CoA and Disconnect on loopback (SECRET), registered in the nas
    table; closed afterwards."""
    emulator = NasEmulator(SECRET)
    port = await emulator.start()
    await add_nas("127.0.0.1", port)
    try:
        yield emulator
    finally:
        emulator.close()


async def add_nas(address: str, port: int, profile: str = "mikrotik",
                  secret: str = SECRET) -> None:
    await Nas.create(nasname=address, shortname="test", secret=secret, coa_port=port,
                     profile=profile)


async def online(username: str, session_id: str, framed_ip: str,
                 nas_ip: str = "127.0.0.1") -> None:
    now = datetime.now(UTC)
    await radacct.insert_sessions([radacct.AcctSession(username, session_id, nas_ip, now, None,
                                                       None, 0, 0, framed_ip)])


async def offline(session_id: str) -> None:
    await db.execute("UPDATE radacct SET acctstoptime = ? WHERE acctsessionid = ?",
                     [radacct.to_db_time(datetime.now(UTC)), session_id])


async def use_bytes(username: str, total: int, day: date | None = None) -> None:
    """Usage for today as the ingest would have written it (download only)."""
    day = day or datetime.now(UTC).date()
    updated = await db.execute(
        "UPDATE usage_daily SET bytes_out = ? WHERE username = ? AND day = ?",
        [total, username, day_param(day)])
    if not updated:
        await db.execute("INSERT INTO usage_daily (username, day, bytes_in, bytes_out)"
                         " VALUES (?, ?, 0, ?)", [username, day_param(day), total])


async def subscribers(*names: str, price_per_gb: str = "1.00", balance_cents: int = 10_000,
                      plan: str = "Basic") -> list[Subscriber]:
    await seed.reseller_with_plans("acme", price_per_gb=price_per_gb, allow_plan_change=True)
    return [await seed.subscriber(n, balance_cents=balance_cents, plan=plan) for n in names]


async def until(check: Callable[[], Awaitable[object]], timeout_s: float = 10.0,
                what: str = "condition", log: Callable[[], str] | None = None) -> float:
    """Poll an async check until truthy; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        if loop.time() - started > timeout_s:
            extra = ("\n" + log()[-4000:]) if log else ""
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{extra}")
        await asyncio.sleep(0.02)
    return loop.time() - started


async def state_is(username: str, state: str, down_kbps: int | None = None) -> bool:
    row = await EnforcementState.get_or_none(username=username)
    return row is not None and row.state == state and (
        down_kbps is None or row.applied_down_kbps == down_kbps)
