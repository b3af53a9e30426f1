"""The local shaper, driven from the event loop: every netlink call runs on one
worker thread (the Shaper is not thread-safe and netlink calls block)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shaper import Counters, Rate, ReconcileResult, Shaper

CAP_NET_ADMIN = 12


def has_net_admin(status_path: str = "/proc/self/status") -> bool:
    """CAP_NET_ADMIN in the effective set (root has it; the unit grants only it)."""
    try:
        with open(status_path) as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def unavailable_reason(enabled: bool, down: str, up: str, net_admin: bool) -> str | None:
    """Why the local shaper cannot run (None: it can)."""
    if not enabled:
        return "disabled ([enforcer] shaper = false)"
    if not down or not up:
        return "no interfaces configured ([enforcer] down_interface/up_interface)"
    if not net_admin:
        return "no CAP_NET_ADMIN"
    return None


class LocalShaper:
    def __init__(self, down: str, up: str, netns: str | None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shaper")
        self._shaper: Shaper | None = None
        self._args = (down, up, netns)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _get(self) -> Shaper:
        if self._shaper is None:
            down, up, netns = self._args
            self._shaper = Shaper(down, up, netns=netns)
        return self._shaper

    async def reconcile(self, desired: Mapping[str, Rate]) -> ReconcileResult:
        return await self._call(lambda: self._get().reconcile(dict(desired)))

    async def update(self, changes: Mapping[str, Rate | None]) -> ReconcileResult:
        return await self._call(lambda: self._get().update(dict(changes)))

    async def counters(self) -> dict[str, Counters]:
        return await self._call(lambda: self._get().counters())

    async def close(self) -> None:
        def close() -> None:
            if self._shaper is not None:
                self._shaper.close()  # the tree stays: a restarted enforcer adopts it

        await self._call(close)
        self._pool.shutdown()
