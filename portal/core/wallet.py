"""The wallet: an append-only ledger plus a balance that can never go negative.

A debit is one conditional UPDATE (balance >= amount) inside the caller's
transaction, so two concurrent purchases can never both spend the same money,
whatever the database. The CHECK constraint on subscribers.balance_cents backs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise import timezone
from tortoise.backends.base.client import BaseDBAsyncClient

from portal.core.money import fmt
from portal.errors import NotFound, PortalError
from portal.store import db


class InsufficientFunds(PortalError):
    status = 402

    def __init__(self, missing_cents: int, currency: str = "USD"):
        super().__init__(
            "insufficient_funds",
            f"not enough balance: {fmt(missing_cents, currency)} more is needed",
            missing_cents=missing_cents,
        )
        self.missing_cents = missing_cents

    def in_currency(self, currency: str) -> None:
        """Say the missing amount in the reseller's currency (the debit knows only units)."""
        self.message = f"not enough balance: {fmt(self.missing_cents, currency)} more is needed"
        self.args = (self.message,)
        self.extra["currency"] = currency  # so the message can be said in any language


@dataclass(frozen=True)
class Posted:
    """A ledger row just written."""

    id: int
    balance_after_cents: int


async def credit(
    tx: BaseDBAsyncClient, subscriber_id: int, amount_cents: int, reason: str,
    reference: str, actor: str,
) -> Posted:
    if amount_cents <= 0:
        raise PortalError("invalid_amount", "a credit must be positive")
    rows = await db.fetch("UPDATE subscribers SET balance_cents = balance_cents + ?"
                          " WHERE id = ? RETURNING balance_cents", [amount_cents, subscriber_id])
    if not rows:
        raise NotFound("unknown_subscriber", "no such subscriber")
    return await _entry(subscriber_id, amount_cents, int(rows[0]["balance_cents"]), reason,
                        reference, actor)


async def debit(
    tx: BaseDBAsyncClient, subscriber_id: int, amount_cents: int, reason: str,
    reference: str, actor: str,
) -> Posted:
    if amount_cents <= 0:
        raise PortalError("invalid_amount", "a debit must be positive")
    rows = await db.fetch("UPDATE subscribers SET balance_cents = balance_cents - ?"
                          " WHERE id = ? AND balance_cents >= ? RETURNING balance_cents",
                          [amount_cents, subscriber_id, amount_cents])
    if not rows:
        held = await db.fetch("SELECT balance_cents FROM subscribers WHERE id = ?",
                              [subscriber_id])
        if not held:
            raise NotFound("unknown_subscriber", "no such subscriber")
        raise InsufficientFunds(amount_cents - int(held[0]["balance_cents"]))
    return await _entry(subscriber_id, -amount_cents, int(rows[0]["balance_cents"]), reason,
                        reference, actor)


async def set_reference(tx: BaseDBAsyncClient, entry_id: int, reference: str) -> None:
    """Name the document a ledger row paid for (the invoice is issued after the debit)."""
    await db.execute("UPDATE wallet_entries SET reference = ? WHERE id = ?", [reference, entry_id])


async def _entry(subscriber_id: int, amount_cents: int, balance_after_cents: int, reason: str,
                 reference: str, actor: str) -> Posted:
    # Plain SQL in the caller's transaction (portal.store.db): every purchase writes one.
    # created_at as the model's auto_now_add would store it.
    rows = await db.fetch(
        "INSERT INTO wallet_entries (subscriber_id, amount_cents, balance_after_cents, reason,"
        " reference, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [subscriber_id, amount_cents, balance_after_cents, reason, reference, actor,
         db.db_time(timezone.localtime())])
    return Posted(int(rows[0]["id"]), balance_after_cents)


# What each ledger reason is called in the wallet view (one name per movement).
KINDS = {"credit": "operator credit", "payment": "payment", "topup": "data purchase",
         "plan_change": "plan-change charge", "plan_refund": "plan-change refund",
         "renewal": "renewal"}
PAGE_MAX = 100


async def history(subscriber_id: int, before_id: int | None = None,
                  limit: int = 50) -> dict[str, object]:
    """One page of the subscriber's ledger, newest first: date, kind, amount, balance after
    and the document (its number) each movement issued. `next_before` pages on (keyset)."""
    limit = max(1, min(limit, PAGE_MAX))
    rows = await db.fetch(
        "SELECT w.id, w.created_at, w.reason, w.amount_cents, w.balance_after_cents,"
        " w.reference, i.id AS document_id, i.kind AS document_kind"
        " FROM wallet_entries w LEFT JOIN invoices i"
        " ON i.subscriber_id = w.subscriber_id AND i.number = w.reference"
        " WHERE w.subscriber_id = ?" + (" AND w.id < ?" if before_id else "") +
        " ORDER BY w.id DESC LIMIT ?",
        [subscriber_id, *([before_id] if before_id else []), limit + 1])
    entries = [{
        "id": int(r["id"]), "created_at": db.from_db_time(r["created_at"]).isoformat(),
        "kind": str(r["reason"]), "label": KINDS.get(str(r["reason"]), str(r["reason"])),
        "amount_cents": int(r["amount_cents"]),
        "balance_after_cents": int(r["balance_after_cents"]),
        "document": None if r["document_id"] is None else {
            "id": int(r["document_id"]), "number": str(r["reference"]),
            "kind": str(r["document_kind"])},
    } for r in rows[:limit]]
    return {"entries": entries,
            "next_before": entries[-1]["id"] if len(rows) > limit else None}
