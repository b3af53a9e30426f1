"""Shared set-up of the notifier tests: settings, subscribers, a notifier run in-process
(its real loop) or as `ispedge notifier` in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from portal.core import subscribers
from portal.notifier.daemon import Notifier
from portal.notifier.settings import Gateway, Settings, Smtp
from portal.store import db
from tests.support import seed
from tests.support.portal import portal_env

SENDER = "noc@acme.example"


def settings(smtp_port: int | None = None, gateway: Gateway | None = None,
             **kw: Any) -> Settings:
    base = Settings(channels=("email", "sms", "push"), expiry_days=(3, 1), poll_s=0.05,
                    scan_s=0.2, lease_s=2.0, send_timeout_s=5.0, retry_base_s=0.3,
                    retry_max_s=1.0, portal_url="https://portal.acme.example/customer/",
                    smtp=Smtp("127.0.0.1", smtp_port, "none", sender=SENDER)
                    if smtp_port else None, gateway=gateway, name="test-notifier")
    return replace(base, **kw)


async def customer(username: str, email: str = "", phone: str = "",
                   expires_in: timedelta | None = None, full_name: str = "Test Person",
                   reseller: str = "acme") -> None:
    """A subscriber of `reseller` (made with its plans if new)."""
    if not await db.fetch("SELECT id FROM resellers WHERE name = ?", [reseller]):
        await seed.reseller_with_plans(reseller)
    await subscribers.add_subscriber(username, "secret-pw", reseller, "Basic",
                                     full_name=full_name, email=email, phone=phone,
                                     now=datetime.now(UTC))
    if expires_in is not None:
        await db.execute("UPDATE subscribers SET expires_at = ? WHERE username = ?",
                         [db.db_time(datetime.now(UTC) + expires_in), username])


async def outbox(username: str | None = None) -> list[dict[str, Any]]:
    if username is None:
        return await db.fetch("SELECT * FROM notification_outbox ORDER BY id")
    return await db.fetch("SELECT * FROM notification_outbox WHERE username = ? ORDER BY id",
                          [username])


@contextlib.asynccontextmanager
async def running(s: Settings) -> AsyncIterator[Notifier]:
    """The notifier's real loop in this process, stopped (and awaited) on exit."""
    notifier = Notifier(s)
    stop = asyncio.Event()
    task = asyncio.ensure_future(notifier.run(stop))
    try:
        yield notifier
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def until(check: Callable[[], Awaitable[object]] | Callable[[], object],
                timeout_s: float = 10.0, what: str = "condition") -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return loop.time() - started
        if loop.time() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def start_notifier(db_url: str, state_dir: Path, name: str, **keys: str
                   ) -> tuple[subprocess.Popen[bytes], Path]:
    """`ispedge notifier` as operators run it; keys: [notifier] settings."""
    state_dir.mkdir(parents=True, exist_ok=True)
    env = portal_env(db_url, state_dir, ISPEDGE_GENERAL_BOX=name,
                     **{f"ISPEDGE_NOTIFIER_{k.upper()}": v for k, v in keys.items()})
    log = state_dir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "portal.main", "notifier"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    return proc, log
