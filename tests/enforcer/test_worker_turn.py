"""The enforcer's worker turn loses no subscriber another task marks dirty meanwhile.

The live ingest (its own task) adds the subscribers whose usage it counted to
`dirty` at any await of the worker. Before the fix the worker copied `dirty`,
awaited the retries' query, then emptied it: a subscriber added during that query
was dropped (scale_bench, 20k subscribers under load: a FUP crossing with no CoA
until the next full reconcile, 60 s later). Real database, the worker's own loop.
"""

from __future__ import annotations

import asyncio

from coa import CoaClient
from coa.emulator import NasEmulator
from portal.enforcer.daemon import Enforcer, PassReport
from tests.enforcer import helpers
from tests.enforcer.test_enforcer_db import coa, nas  # noqa: F401


async def test_a_subscriber_marked_during_the_retry_lookup_is_enforced(
        nas: NasEmulator, coa: CoaClient) -> None:  # noqa: F811
    await helpers.subscribers("u000", "u001")
    await helpers.online("u001", "s-u001", "100.64.4.2")
    enforcer = Enforcer(helpers.settings(), coa, None)
    enforced: list[set[str]] = []
    real_enforce, real_retries = enforcer.enforce, enforcer.due_retries

    async def recording(usernames: set[str] | None, sweep: bool = False) -> PassReport:
        if usernames is not None and not sweep:  # the full reconcile's slices aside
            enforced.append(set(usernames))
        return await real_enforce(usernames, sweep=sweep)

    async def retries(now: float) -> set[str]:
        if not marked.is_set():
            enforcer.dirty.add("u001")  # what the live ingest does, during this query
            marked.set()
        return await real_retries(now)

    marked = asyncio.Event()
    enforcer.enforce = recording  # type: ignore[method-assign]
    enforcer.due_retries = retries  # type: ignore[method-assign]
    stop = asyncio.Event()
    worker = asyncio.ensure_future(enforcer.run(stop))
    try:
        await helpers.until(lambda: asyncio.sleep(0, any("u001" in s for s in enforced)), 10,
                            "u001 enforced by a worker turn")
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
    assert marked.is_set()
