"""Keep FreeRADIUS's tables saying what the network should do for a subscriber.

radcheck holds the password (Cleartext-Password, the same string the portal
checks) and, for a disabled subscriber, Auth-Type := Reject; radreply holds the
current effective speed in the NAS vendor's format, so a reconnect gets the same
speed a CoA set. Called inside the caller's transaction.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from coa import Rate, get_profile
from portal.store.models import RadCheck, RadReply

PASSWORD_ATTRIBUTE = "Cleartext-Password"


async def set_password(tx: BaseDBAsyncClient, username: str, password: str) -> None:
    updated = await RadCheck.filter(username=username, attribute=PASSWORD_ATTRIBUTE).using_db(
        tx
    ).update(value=password, op=":=")
    if not updated:
        await RadCheck.create(
            username=username, attribute=PASSWORD_ATTRIBUTE, op=":=", value=password, using_db=tx
        )


async def set_enabled(tx: BaseDBAsyncClient, username: str, enabled: bool) -> None:
    await RadCheck.filter(username=username, attribute="Auth-Type").using_db(tx).delete()
    if not enabled:
        await RadCheck.create(
            username=username, attribute="Auth-Type", op=":=", value="Reject", using_db=tx
        )


async def set_rate(
    tx: BaseDBAsyncClient, username: str, down_kbps: int, up_kbps: int, profile: str
) -> list[tuple[str, str, str]]:
    """Replace the rate reply attributes; returns the rows written."""
    rows = get_profile(profile).reply_attributes(Rate(down_kbps=down_kbps, up_kbps=up_kbps))
    names = {name for name, _, _ in rows}
    await RadReply.filter(username=username, attribute__in=sorted(names)).using_db(tx).delete()
    for name, op, value in rows:
        await RadReply.create(username=username, attribute=name, op=op, value=value, using_db=tx)
    return rows


async def set_rates(
    tx: BaseDBAsyncClient, rates: dict[str, tuple[int, int]], profile: str
) -> int:
    """set_rate for many subscribers ({username: (down_kbps, up_kbps)}) in batches:
    the enforcer moves a thousand subscribers to a FUP tier at once. Returns rows written."""
    p = get_profile(profile)
    rows = {u: p.reply_attributes(Rate(down_kbps=d, up_kbps=up)) for u, (d, up) in rates.items()}
    names = sorted({name for written in rows.values() for name, _, _ in written})
    users = sorted(rows)
    for i in range(0, len(users), 500):
        await RadReply.filter(username__in=users[i:i + 500], attribute__in=names).using_db(
            tx).delete()
    new = [RadReply(username=u, attribute=name, op=op, value=value)
           for u in users for name, op, value in rows[u]]
    await RadReply.bulk_create(new, batch_size=500, using_db=tx)
    return len(new)


async def password_of(username: str) -> str | None:
    row = await RadCheck.filter(username=username, attribute=PASSWORD_ATTRIBUTE).first()
    return row.value if row else None
