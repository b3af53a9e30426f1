"""Issue 17: the full reconcile runs in slices with the journal read between them, so
a click (a plan change) is enforced while a full pass is still under way, not after
it. The enforcer's own worker loop, a real database, a NAS emulator over UDP."""

from __future__ import annotations

import asyncio
import re

import pytest

from coa import COA_REQUEST, CoaClient
from coa.emulator import NasEmulator
from portal.core import subscribers
from portal.enforcer import daemon
from portal.enforcer.daemon import Enforcer
from tests.enforcer import helpers
from tests.enforcer.helpers import FAST
from tests.enforcer.test_enforcer_db import coa, nas, rate_limit, sent  # noqa: F401

USERS = 16
SLICE = 2


async def test_a_plan_change_is_enforced_between_two_slices(
        nas: NasEmulator, coa: CoaClient) -> None:  # noqa: F811
    names = [f"u{i:03d}" for i in range(USERS)]
    await helpers.subscribers(*names)
    for i, name in enumerate(names):
        await helpers.online(name, f"s-{name}", f"100.64.3.{i + 1}")
    last = names[-1]  # the full pass reaches it last
    enforcer = Enforcer(helpers.settings(reconcile_slice=SLICE), coa, None)
    # After two slices the sweep waits for the click to have committed: without the
    # gate a sweep of 16 quick slices can reach `last` before the click's own
    # transaction commits (seen on a loaded PostgreSQL in CI), and the test would
    # measure that race, not whether the journal is read between two slices.
    clicked = asyncio.Event()
    real_slice = enforcer.reconcile_slice

    async def gated_slice() -> bool:
        if enforcer.slices >= 2:
            await clicked.wait()
        return await real_slice()

    enforcer.reconcile_slice = gated_slice
    stop = asyncio.Event()
    worker = asyncio.ensure_future(enforcer.run(stop))
    try:
        await helpers.until(lambda: asyncio.sleep(0, enforcer.slices >= 2), 30,
                            "the first slices of the full reconcile")
        await subscribers.set_plan(last, "Fast")
        clicked.set()
        want = (COA_REQUEST, rate_limit(*FAST))
        seen_at = None
        while seen_at is None:
            if want in sent(nas, last):
                seen_at = (enforcer.sweep, enforcer.slices)
            await asyncio.sleep(0.01)
        sweep, slices = seen_at
        # enforced by the journal, with the sweep still short of `last`
        assert sweep is not None and sweep < last and slices < USERS // SLICE, seen_at
        await helpers.until(lambda: asyncio.sleep(0, enforcer.sweep is None), 60,
                            "the end of the full reconcile")
        assert enforcer.last_sweep.subscribers == USERS
        # every subscriber applied once; the click's subscriber not sent twice
        assert sent(nas, last).count(want) == 1
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)


async def test_a_slow_turn_is_logged_with_the_part_that_took_the_time(
        nas: NasEmulator, coa: CoaClient, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    await helpers.subscribers("u000", "u001")
    enforcer = Enforcer(helpers.settings(reconcile_slice=1), coa, None)
    monkeypatch.setattr(daemon, "SLOW_TURN_S", 0.2)
    real_slice = enforcer.reconcile_slice

    async def slow_slice() -> bool:
        if enforcer.slices == 0:
            await asyncio.sleep(0.3)  # what a click would wait for
        return await real_slice()

    enforcer.reconcile_slice = slow_slice
    stop = asyncio.Event()
    worker = asyncio.ensure_future(enforcer.run(stop))
    try:
        await helpers.until(lambda: asyncio.sleep(0, "slow turn" in caplog.text), 30,
                            "the slow turn's log line")
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
    line = next(r.getMessage() for r in caplog.records if "slow turn" in r.getMessage())
    took = {part: float(secs) for part, secs in re.findall(r"(\w+) ([\d.]+) s", line)}
    assert set(took) == {"journal", "sessions", "enforce", "slice"}, line
    assert took["slice"] >= 0.3 and max(took.values()) == took["slice"], line
