"""Data top-ups: whole GB bought from the wallet for the current billing cycle.

Bought bytes raise this cycle's allowance and are used before the monthly FUP
tiers apply; they expire at the cycle reset. The bonus of a cycle is simply the
sum of what was bought in it, so a second purchase adds to it and can never
re-credit bonus already used (usage is counted separately, never reset here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.core import wallet
from portal.core.billing import lines, purchase
from portal.core.billing.idempotency import Claim
from portal.core.billing.invoices import Line, as_json, issue
from portal.core.money import fmt
from portal.errors import Conflict, Forbidden, NotFound
from portal.speed import effective, facts, rollover
from portal.store import db, journal
from portal.store.models import Reseller, Subscriber

GB = 10**9  # data is sold in decimal GB, like the quotas


async def cycle_bonus_bytes(
    subscriber_id: int, cycle_start: datetime, using_db: BaseDBAsyncClient | None = None
) -> int:
    """Bytes of data bought since cycle_start: the bonus that raises this cycle's allowance."""
    # using_db: the caller's transaction, which raw SQL joins anyway (portal.store.db).
    return await facts.bonus_bytes(subscriber_id, cycle_start)


async def buy_data(subscriber_id: int, gb: int, previewed_cents: int | None, now: datetime, *,
                   ip: str = "", claim: Claim | None = None) -> tuple[dict[str, Any], bool]:
    """Charge gb x the reseller's price per GB and add the bytes to this cycle's bonus.

    gb is already validated (billing.quantity.parse_gb). previewed_cents, when given,
    must equal the total (409 price_changed otherwise). Returns (result, replayed).
    """

    async def body(tx: BaseDBAsyncClient, sub: Subscriber) -> dict[str, Any]:
        reseller = await db.fetch_model(Reseller, "SELECT * FROM resellers WHERE id = ?",
                                        [sub.reseller_id])
        if reseller is None:
            raise NotFound("unknown_reseller", "no such reseller")
        if reseller.price_per_gb_cents <= 0:
            raise Forbidden("feature_disabled", "buying data is not enabled for your account")
        # A prepaid cycle due but not yet started by the enforcer is started here, so
        # the data goes to it and a paid subscriber is never told "expired".
        await rollover.roll_over(tx, sub, now)
        if now >= sub.expires_at:
            raise Forbidden("subscription_expired",
                            "your subscription has expired: renew it before buying data")
        amount = gb * reseller.price_per_gb_cents
        if previewed_cents is not None and previewed_cents != amount:
            raise Conflict("price_changed",
                           f"price changed: {gb} GB now costs"
                           f" {fmt(amount, reseller.currency)}, please review it",
                           amount_cents=amount)
        actor = f"customer:{sub.username}"
        entry = await wallet.debit(tx, sub.id, amount, "topup", "", actor)
        invoice = await issue(tx, sub, reseller, "invoice",
                              [Line(lines.data_topup(gb, reseller.price_per_gb_cents,
                                                     reseller.currency), amount)], now)
        await wallet.set_reference(tx, entry.id, invoice.number)
        rows = await db.fetch(
            "INSERT INTO topups (subscriber_id, gb, bytes, price_per_gb_cents, amount_cents,"
            " cycle_start, invoice_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [sub.id, gb, gb * GB, reseller.price_per_gb_cents, amount,
             db.db_time(sub.cycle_start), invoice.id, db.db_time(now)])
        topup_id = int(rows[0]["id"])
        bonus = await cycle_bonus_bytes(sub.id, sub.cycle_start, tx)
        # The bonus may lift a FUP tier: a reconnect must get the restored speed.
        await effective.write(tx, sub.username, now, "topup", known_bonus_bytes=bonus, gb=gb,
                              bytes=gb * GB, bonus_bytes=bonus,
                              cycle_start=sub.cycle_start.isoformat())
        await journal.audit(tx, actor, "data.buy", sub.username, ip=ip, gb=gb,
                            amount_cents=amount, invoice=invoice.number)
        return {"topup": {"id": topup_id, "gb": gb, "bytes": gb * GB, "amount_cents": amount},
                "invoice": as_json(invoice), "balance_cents": entry.balance_after_cents,
                "bonus_bytes": bonus, "currency": reseller.currency}

    return await purchase.run(subscriber_id, claim, now, body)
