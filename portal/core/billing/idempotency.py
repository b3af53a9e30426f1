"""Idempotency-Key: a retried purchase returns the first answer instead of charging again.

The key is claimed (inserted) first thing in the charging transaction and its
answer stored before commit, so the charge and the key commit or vanish together.
A concurrent duplicate blocks on the unique index (PostgreSQL) or waits for the
single writer (SQLite), then fails to insert and replays the stored answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.errors import PortalError
from portal.store.models import IdempotencyKey

MAX_KEY = 128


@dataclass(frozen=True)
class Claim:
    key: str
    request_hash: str


def request_hash(path: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"path": path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim_from(header: str | None, path: str, body: dict[str, Any]) -> Claim | None:
    if header is None:
        return None
    key = header.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise PortalError("invalid_idempotency_key",
                          f"Idempotency-Key must be 1-{MAX_KEY} printable characters")
    return Claim(key, request_hash(path, body))


async def replay(subscriber_id: int, claim: Claim) -> tuple[int, Any] | None:
    row = await IdempotencyKey.get_or_none(subscriber_id=subscriber_id, key=claim.key)
    if row is None:
        return None
    if row.request_hash != claim.request_hash:
        raise PortalError("idempotency_key_reused",
                          "this Idempotency-Key was already used for a different request", 422)
    return row.status, json.loads(row.response)


async def claim(tx: BaseDBAsyncClient, subscriber_id: int, claim: Claim | None,
                now: datetime) -> IdempotencyKey | None:
    """Insert the key (IntegrityError when another request holds it)."""
    if claim is None:
        return None
    return await IdempotencyKey.create(subscriber_id=subscriber_id, key=claim.key,
                                       request_hash=claim.request_hash, status=0, response="null",
                                       created_at=now, using_db=tx)


async def store(tx: BaseDBAsyncClient, row: IdempotencyKey | None, status: int,
                body: Any) -> None:
    if row is None:
        return
    await IdempotencyKey.filter(id=row.id).using_db(tx).update(
        status=status, response=json.dumps(body, sort_keys=True))
