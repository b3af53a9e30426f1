"""Keep FreeRADIUS's tables saying what the network should do for a subscriber.

radcheck holds the password (Cleartext-Password, the same string the portal
checks) and, for a disabled subscriber, Auth-Type := Reject; radreply holds the
current effective speed (written by portal.store.rate, for the speed layer only).
Called inside the caller's transaction.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.store.models import RadCheck

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


async def password_of(username: str) -> str | None:
    row = await RadCheck.filter(username=username, attribute=PASSWORD_ATTRIBUTE).first()
    return row.value if row else None
