"""The outbox: queue, claim, send-once bookkeeping (migration 0019).

A row's life: pending -> claimed -> sending -> sent, or back to pending with
backoff, or failed after max_attempts. Exactly once:
- `claim` commits state 'claimed' (claimed_by, lease_until) before anything goes
  out. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so two notifiers take disjoint rows;
  SQLite: the one transaction helper's BEGIN IMMEDIATE serializes the claims.
- the channel prepares all it can (connects, for SMTP up to the end of DATA)
  and then `to_sending` commits the point of no return, conditional on the claim
  still being ours; only then is the last step (SMTP's final '.', the HTTP
  request) sent.
- a notifier that dies while 'claimed' sent nothing: after its lease the row is
  pending again (`recover`). One that dies while 'sending' may have delivered:
  after its lease the row becomes 'unknown' and is never sent again by itself
  (`ispedge notifications resend` makes a copy).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.store import db
from portal.store.tx import DAEMON_BUDGET_S, transaction


@dataclass(frozen=True)
class Message:
    username: str
    event: str
    channel: str
    target: str
    dedup_key: str
    language: str
    subject: str
    body: str
    next_try_at: float


_INSERT = ("INSERT INTO notification_outbox (username, event, channel, target, dedup_key,"
           " language, subject, body, state, attempts, next_try_at, created_at)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)"
           " ON CONFLICT (dedup_key) DO NOTHING")


async def enqueue(messages: Iterable[Message], now: float | None = None) -> int:
    """Queue the messages not queued before (by dedup_key); how many were new.

    The keys already queued are read first, so a scan that finds nothing new takes
    no write lock (SQLite) and burns no ids; the unique key still settles a race
    with another notifier (ON CONFLICT DO NOTHING).
    """
    now = time.time() if now is None else now
    wanted = {m.dedup_key[:400]: m for m in messages}
    if not wanted:
        return 0
    keys = list(wanted)
    known: set[str] = set()
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        known |= {str(r["dedup_key"]) for r in await db.fetch(
            "SELECT dedup_key FROM notification_outbox WHERE dedup_key IN"
            f" ({', '.join('?' * len(chunk))})", chunk)}
    rows = [[m.username, m.event, m.channel, m.target, key, m.language, m.subject, m.body,
             m.next_try_at, now] for key, m in wanted.items() if key not in known]
    if not rows:
        return 0

    async def write(tx: BaseDBAsyncClient) -> int:
        made = 0
        for row in rows:
            made += len(await db.fetch(_INSERT + " RETURNING id", row))
        return made

    return await transaction(write, budget_s=DAEMON_BUDGET_S)


async def anything_due(now: float | None = None) -> bool:
    """A read first: the poll takes no write lock (SQLite) when there is nothing to do."""
    now = time.time() if now is None else now
    rows = await db.fetch(
        "SELECT 1 AS due FROM notification_outbox WHERE (state = 'pending' AND next_try_at <= ?)"
        " OR (state IN ('claimed', 'sending') AND lease_until < ?) LIMIT 1", [now, now])
    return bool(rows)


async def recover(now: float | None = None) -> tuple[int, int]:
    """Rows whose notifier's lease ran out: 'claimed' ones are pending again (nothing
    left), 'sending' ones become 'unknown' (maybe delivered). Returns both counts."""
    now = time.time() if now is None else now

    async def write(tx: BaseDBAsyncClient) -> tuple[int, int]:
        back = await db.fetch(
            "UPDATE notification_outbox SET state = 'pending', claimed_by = '',"
            " lease_until = NULL WHERE state = 'claimed' AND lease_until < ? RETURNING id",
            [now])
        lost = await db.fetch(
            "UPDATE notification_outbox SET state = 'unknown', last_error = ?"
            " WHERE state = 'sending' AND lease_until < ? RETURNING id",
            ["the notifier stopped during the send: maybe delivered, not sent again", now])
        return len(back), len(lost)

    return await transaction(write, budget_s=DAEMON_BUDGET_S)


_CLAIM_PG = (
    "UPDATE notification_outbox SET state = 'claimed', claimed_by = ?, lease_until = ?"
    " WHERE id IN (SELECT id FROM notification_outbox WHERE state = 'pending'"
    " AND next_try_at <= ? ORDER BY next_try_at, id LIMIT ? FOR UPDATE SKIP LOCKED)"
    " RETURNING *")
_CLAIM_SQLITE = (
    "UPDATE notification_outbox SET state = 'claimed', claimed_by = ?, lease_until = ?"
    " WHERE id IN (SELECT id FROM notification_outbox WHERE state = 'pending'"
    " AND next_try_at <= ? ORDER BY next_try_at, id LIMIT ?) RETURNING *")


async def claim(me: str, limit: int, lease_s: float, now: float | None = None
                ) -> list[dict[str, Any]]:
    """Take up to `limit` due rows for this notifier, committed before any is sent."""
    now = time.time() if now is None else now
    sql = _CLAIM_PG if db.current_dialect() == "postgres" else _CLAIM_SQLITE

    async def write(tx: BaseDBAsyncClient) -> list[dict[str, Any]]:
        return await db.fetch(sql, [me, now + lease_s, now, limit])

    rows = await transaction(write, budget_s=DAEMON_BUDGET_S)
    return sorted(rows, key=lambda r: int(r["id"]))


async def to_sending(row_id: int, me: str, hold_s: float) -> bool:
    """Commit the point of no return; False: the claim is no longer ours (send nothing)."""
    async def write(tx: BaseDBAsyncClient) -> bool:
        rows = await db.fetch(
            "UPDATE notification_outbox SET state = 'sending', lease_until = ?,"
            " attempts = attempts + 1 WHERE id = ? AND state = 'claimed' AND claimed_by = ?"
            " RETURNING id", [time.time() + hold_s, row_id, me])
        return bool(rows)

    return await transaction(write, budget_s=DAEMON_BUDGET_S)


async def finish(row_id: int, me: str, *, sent: bool, error: str = "",
                 retry_at: float | None = None, before_send: bool = False) -> None:
    """The outcome of a send this notifier made.

    sent: delivered. Else `error`, and `retry_at` (pending again) or None (failed).
    before_send: the attempt ended before the point of no return (still 'claimed';
    it counts as an attempt all the same).
    """
    states = "('claimed')" if before_send else "('sending', 'unknown')"
    bump = ", attempts = attempts + 1" if before_send else ""
    if sent:
        sql, params = ("UPDATE notification_outbox SET state = 'sent', sent_at = ?,"
                       " last_error = '', lease_until = NULL WHERE id = ? AND claimed_by = ?"
                       f" AND state IN {states}", [time.time(), row_id, me])
    elif retry_at is not None:
        sql, params = ("UPDATE notification_outbox SET state = 'pending', next_try_at = ?,"
                       f" last_error = ?, lease_until = NULL, claimed_by = ''{bump}"
                       f" WHERE id = ? AND claimed_by = ? AND state IN {states}",
                       [retry_at, error[:500], row_id, me])
    else:
        sql, params = ("UPDATE notification_outbox SET state = 'failed', last_error = ?,"
                       f" lease_until = NULL{bump} WHERE id = ? AND claimed_by = ?"
                       f" AND state IN {states}", [error[:500], row_id, me])

    async def write(tx: BaseDBAsyncClient) -> None:
        await db.execute(sql, params)

    await transaction(write, budget_s=DAEMON_BUDGET_S)


def backoff(attempts: int, base_s: float, max_s: float) -> float:
    """Seconds before attempt `attempts + 1`: base, 2 x base, 4 x base ... up to max."""
    return float(min(max_s, base_s * (2 ** max(0, attempts - 1))))
