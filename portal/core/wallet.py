"""The wallet: an append-only ledger plus a balance that can never go negative.

A debit is one conditional UPDATE (balance >= amount) inside the caller's
transaction, so two concurrent purchases can never both spend the same money,
whatever the database. The CHECK constraint on subscribers.balance_cents backs it.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from portal.errors import PortalError
from portal.store.models import Subscriber, WalletEntry


class InsufficientFunds(PortalError):
    status = 402

    def __init__(self, missing_cents: int):
        super().__init__(
            "insufficient_funds",
            f"not enough balance: {missing_cents / 100:.2f} more is needed",
            missing_cents=missing_cents,
        )


async def credit(
    tx: BaseDBAsyncClient, subscriber_id: int, amount_cents: int, reason: str,
    reference: str, actor: str,
) -> WalletEntry:
    if amount_cents <= 0:
        raise PortalError("invalid_amount", "a credit must be positive")
    await Subscriber.filter(id=subscriber_id).using_db(tx).update(
        balance_cents=F("balance_cents") + amount_cents
    )
    return await _entry(tx, subscriber_id, amount_cents, reason, reference, actor)


async def debit(
    tx: BaseDBAsyncClient, subscriber_id: int, amount_cents: int, reason: str,
    reference: str, actor: str,
) -> WalletEntry:
    if amount_cents <= 0:
        raise PortalError("invalid_amount", "a debit must be positive")
    changed = await Subscriber.filter(
        id=subscriber_id, balance_cents__gte=amount_cents
    ).using_db(tx).update(balance_cents=F("balance_cents") - amount_cents)
    if not changed:
        sub = await Subscriber.get(id=subscriber_id, using_db=tx)
        raise InsufficientFunds(amount_cents - sub.balance_cents)
    return await _entry(tx, subscriber_id, -amount_cents, reason, reference, actor)


async def _entry(
    tx: BaseDBAsyncClient, subscriber_id: int, amount_cents: int, reason: str,
    reference: str, actor: str,
) -> WalletEntry:
    sub = await Subscriber.get(id=subscriber_id, using_db=tx)
    return await WalletEntry.create(
        subscriber_id=subscriber_id, amount_cents=amount_cents,
        balance_after_cents=sub.balance_cents, reason=reason, reference=reference,
        created_by=actor, using_db=tx,
    )
