"""The effective speed written to radreply inside the portal's own transaction.

A top-up, plan change or re-activation changes what a reconnect must get; the
enforcer would correct radreply within a poll, but FreeRADIUS must never answer
a reconnect with a stale speed in between, so the portal writes it in the same
transaction as the journal row, with the same rules the enforcer applies.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.config import Config
from portal.speed import facts, rules
from portal.speed.settings import Settings
from portal.store import radius


async def write_effective_rate(tx: BaseDBAsyncClient, username: str, now: datetime,
                               config: Config, *, bonus_bytes: int | None = None
                               ) -> rules.Desired | None:
    """Compute the subscriber's speed as the enforcer would and put it in radreply.

    Reads run inside the caller's transaction (Tortoise routes them to it), so
    they see the plan or top-up being written. bonus_bytes overrides the bonus
    when the caller already knows it.
    """
    settings = Settings.from_config(config)
    known = await facts.subscriber_facts([username], now, ZoneInfo(settings.timezone),
                                         settings.cycle)
    if username not in known:
        return None
    subject = known[username]
    if bonus_bytes is not None:
        subject = replace(subject, bonus_bytes=bonus_bytes)
    desired = rules.desired_state(subject, settings.policy, now)
    await radius.set_rate(tx, username, desired.down_kbps, desired.up_kbps,
                               settings.reply_profile)
    return desired
