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
from portal.store import db

MAX_KEY = 128


@dataclass(frozen=True)
class Claim:
    key: str
    request_hash: str


def request_hash(path: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"path": path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(header: str | None) -> str | None:
    """The Idempotency-Key header's value, or None without one (the one rule for a
    valid key: the subscriber's purchases and the operator console's actions)."""
    if header is None:
        return None
    key = header.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise PortalError("invalid_idempotency_key",
                          f"Idempotency-Key must be 1-{MAX_KEY} printable characters")
    return key


def claim_from(header: str | None, path: str, body: dict[str, Any]) -> Claim | None:
    key = check_key(header)
    return None if key is None else Claim(key, request_hash(path, body))


async def replay(subscriber_id: int, claim: Claim) -> tuple[int, Any] | None:
    rows = await db.fetch_indexed("SELECT request_hash, status, response FROM idempotency_keys"
                                  " WHERE subscriber_id = ? AND key = ?",
                                  [subscriber_id, claim.key])
    if not rows:
        return None
    row = rows[0]
    if row["request_hash"] != claim.request_hash:
        raise PortalError("idempotency_key_reused",
                          "this Idempotency-Key was already used for a different request", 422)
    return int(row["status"]), json.loads(str(row["response"]))


async def claim(tx: BaseDBAsyncClient, subscriber_id: int, claim: Claim | None,
                now: datetime) -> int | None:
    """Insert the key (IntegrityError when another request holds it); the row's id."""
    if claim is None:
        return None
    # Plain SQL in the caller's transaction (portal.store.db): on every keyed purchase.
    rows = await db.fetch(
        "INSERT INTO idempotency_keys (subscriber_id, key, request_hash, status, response,"
        " created_at) VALUES (?, ?, ?, 0, 'null', ?) RETURNING id",
        [subscriber_id, claim.key, claim.request_hash, db.db_time(now)])
    return int(rows[0]["id"])


async def store(tx: BaseDBAsyncClient, row: int | None, status: int, body: Any) -> None:
    """The answer of the claimed key `row` (claim's id)."""
    if row is None:
        return
    await db.execute("UPDATE idempotency_keys SET status = ?, response = ? WHERE id = ?",
                     [status, json.dumps(body, sort_keys=True), row])
