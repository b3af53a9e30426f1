"""The change journal: written in the same transaction as the business change.

Followers (dns_filter, the enforcer) poll `id > cursor`; payload says what changed
so a follower can skip rows it does not care about.
"""

from __future__ import annotations

import json
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.store.models import AuditLog, ChangeJournal

# Kinds: subscriber (created/plan/status), parental, topup, wallet, session, speed
# "speed": the enforcer changed the effective speed itself (FUP tier, expiry).
KINDS = frozenset({"subscriber", "plan", "status", "parental", "topup", "wallet", "session",
                   "speed"})


async def record(
    tx: BaseDBAsyncClient, username: str | None, kind: str, *, origin: str = "portal",
    **payload: Any
) -> ChangeJournal:
    if kind not in KINDS:
        raise ValueError(f"unknown journal kind {kind!r}")
    return await ChangeJournal.create(
        username=username, kind=kind, payload=json.dumps(payload, sort_keys=True), using_db=tx
    )


async def record_many(tx: BaseDBAsyncClient, rows: list[tuple[str | None, str, dict[str, Any]]],
                      *, origin: str) -> None:
    """Many rows at once: (username, kind, payload) each."""
    for _, kind, _ in rows:
        if kind not in KINDS:
            raise ValueError(f"unknown journal kind {kind!r}")
    # TODO(journal): origin column (the journal contract branch)
    await ChangeJournal.bulk_create(
        [ChangeJournal(username=u, kind=k, payload=json.dumps(p, sort_keys=True))
         for u, k, p in rows], batch_size=500, using_db=tx)


async def audit(
    tx: BaseDBAsyncClient,
    actor: str,
    action: str,
    username: str | None = None,
    ip: str = "",
    **detail: Any,
) -> None:
    await AuditLog.create(
        actor=actor, action=action, username=username, ip=ip,
        detail=json.dumps(detail, sort_keys=True, default=str), using_db=tx,
    )
