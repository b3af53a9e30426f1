"""The snapshot a "Slow internet" ticket carries, taken when it is opened.

Plan speed always; the live rate (portal.usage.live, the configured source) and the FUP
tier (portal.core.dashboard / portal.speed.fup) when they can be measured. What could not be
measured is listed in `missing`, so nobody reads a gap as a zero. A failing
measurement never stops the customer from opening the ticket.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from portal.store.models import Subscriber

log = logging.getLogger("ispedge.support")


async def collect(sub: Subscriber, now: datetime, config: Any = None) -> dict[str, Any]:
    plan = await sub.plan
    out: dict[str, Any] = {
        "taken_at": now.isoformat(),
        "plan": {"name": plan.name, "down_kbps": plan.down_kbps, "up_kbps": plan.up_kbps},
        "live": None, "fup": None, "missing": [],
    }
    if config is not None:
        out["live"] = await _live(sub, now, config)
        out["fup"] = await _fup(sub, now, config)
    if out["live"] is None:
        out["missing"].append("live rate (could not be measured)")
    if out["fup"] is None:
        out["missing"].append("FUP tier (usage could not be read)")
    return out


async def _live(sub: Subscriber, now: datetime, config: Any) -> dict[str, Any] | None:
    try:
        from portal.usage import live

        source = live.from_config(config)
        sample = await source.sample(sub.username, now)
        return sample.as_json(source.name)
    except Exception:  # a diagnostic, never a reason to refuse the ticket
        log.warning("live rate for a slow-internet ticket failed", exc_info=True)
        return None


async def _fup(sub: Subscriber, now: datetime, config: Any) -> dict[str, Any] | None:
    try:
        from portal.core.dashboard import dashboard

        state = (await dashboard(sub, now, config))["fup"]
        return dict(state) if isinstance(state, dict) else None
    except Exception:
        log.warning("FUP tier for a slow-internet ticket failed", exc_info=True)
        return None
