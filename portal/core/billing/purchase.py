"""Running one charging transaction with an optional Idempotency-Key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from portal.core.billing import idempotency
from portal.core.billing.idempotency import Claim
from portal.core.wallet import InsufficientFunds
from portal.errors import NotFound
from portal.store import db
from portal.store.models import Subscriber
from portal.store.tx import transaction

Body = Callable[[BaseDBAsyncClient, Subscriber], Awaitable[dict[str, Any]]]


async def run(subscriber_id: int, claim: Claim | None, now: datetime,
              body: Body) -> tuple[dict[str, Any], bool]:
    """(result, replayed). body(tx, locked subscriber) does the charge; all or nothing."""
    if claim is not None:
        prior = await idempotency.replay(subscriber_id, claim)
        if prior is not None:
            return prior[1], True

    async def charge(tx: BaseDBAsyncClient) -> dict[str, Any]:
        # Locks the subscriber row on PostgreSQL (SQLite has one writer anyway), so
        # two purchases of one subscriber are decided one after the other.
        sub = await db.fetch_model(Subscriber, "SELECT * FROM subscribers WHERE id = ?" + (
            " FOR UPDATE" if db.current_dialect() == "postgres" else ""), [subscriber_id])
        if sub is None:
            raise NotFound("unknown_subscriber", "no such subscriber")
        row = await idempotency.claim(tx, subscriber_id, claim, now)
        result = await body(tx, sub)
        await idempotency.store(tx, row, 200, result)
        return result

    try:
        return await transaction(charge), False
    except InsufficientFunds as short:
        # Where the shortfall is shown, so is how to pay: the reseller's instructions.
        rows = await db.fetch("SELECT r.payment_instructions, r.payment_contact, r.currency"
                              " FROM resellers r"
                              " JOIN subscribers s ON s.reseller_id = r.id WHERE s.id = ?",
                              [subscriber_id])
        if rows:
            short.extra["payment_instructions"] = str(rows[0]["payment_instructions"])
            short.extra["payment_contact"] = str(rows[0]["payment_contact"])
            short.in_currency(str(rows[0]["currency"]))
        raise
    except IntegrityError:
        if claim is None:
            raise
        prior = await idempotency.replay(subscriber_id, claim)
        if prior is None:
            raise
        return prior[1], True
