"""The one writer of a subscriber's speed: radreply's rate attributes + a journal row.

The effective speed is the plan's, or a FUP tier's once usage crosses it (a
top-up's bonus lifts it again), or the suspended rate when the subscriber is
disabled or expired. Whatever changes one of those inputs (a plan change, a
purchase, a renewal, a status or plan set by the operator, the enforcer seeing
usage cross a tier or an expiry pass) calls `write` in its own transaction, so
a reconnect never gets a stale speed from FreeRADIUS and the enforcer learns of
it from the journal row. Nothing else writes the rate attributes: import-linter
lets only this layer import portal.store.rate.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.speed import facts, rules
from portal.speed.settings import current
from portal.store import journal, rate


async def write(tx: BaseDBAsyncClient, username: str, now: datetime, kind: str, *,
                origin: str | None = None, known_bonus_bytes: int | None = None,
                **payload: object) -> rules.Desired | None:
    """Compute the subscriber's speed from the database, write it to radreply and
    record the change's journal row (`kind` with `payload`, plus the speed written).

    Reads run inside the caller's transaction, so they see the plan, status or
    top-up being written. known_bonus_bytes saves a query when the caller has
    just computed the bonus. None: no such subscriber (nothing written).
    """
    settings = current()
    subject = await facts.one_subscriber(username, now, ZoneInfo(settings.timezone),
                                         settings.cycle, known_bonus_bytes=known_bonus_bytes)
    if subject is None:
        return None
    desired = rules.desired_state(subject, settings.policy, now)
    await rate.set_rates(tx, {username: (desired.down_kbps, desired.up_kbps)},
                         settings.reply_profile)
    await journal.record(tx, username, kind, origin=origin, speed=speed_payload(desired),
                         **payload)
    return desired


async def write_desired(tx: BaseDBAsyncClient, desired: dict[str, rules.Desired], *,
                        origin: str | None = None) -> int:
    """Write speeds already computed by the rules (the enforcer's batch); rows written."""
    if not desired:
        return 0
    written = await rate.set_rates(
        tx, {u: (d.down_kbps, d.up_kbps) for u, d in desired.items()},
        current().reply_profile)
    await journal.record_many(tx, [journal.Entry(u, "speed", speed_payload(d))
                                   for u, d in desired.items()], origin=origin)
    return written


def speed_payload(d: rules.Desired) -> dict[str, object]:
    """What a journal row says of the speed written (all of a "speed" row's payload)."""
    return {"reason": d.reason, "action": d.action,
            "down_kbps": d.down_kbps, "up_kbps": d.up_kbps}
