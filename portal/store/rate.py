"""radreply's rate attributes, in the NAS vendor's format (coa's reply profiles).

Only the speed layer may import this module (an import-linter contract in
pyproject.toml): portal.speed.effective is the one writer of the speed.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from coa import Rate, get_profile
from portal.store import db
from portal.store.models import RadReply


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
    # Plain SQL (portal.store.db, the caller's transaction): every purchase writes one
    # subscriber's rate, and the ORM's query building cost more than the statements.
    for i in range(0, len(users) if names else 0, 500):
        chunk = users[i:i + 500]
        await db.execute(f"DELETE FROM radreply WHERE username IN ({', '.join('?' * len(chunk))})"
                         f" AND attribute IN ({', '.join('?' * len(names))})",
                         [*chunk, *names])
    new = [[u, name, op, value] for u in users for name, op, value in rows[u]]
    for i in range(0, len(new), 500):
        await db.execute_many("INSERT INTO radreply (username, attribute, op, value)"
                              " VALUES (?, ?, ?, ?)", new[i:i + 500])
    return len(new)
