"""Renewal, one rule (docs/BILLING.md "Renewal").

A renewal never touches the running cycle: while the subscription runs, it records a
prepaid next cycle starting at the old expiry (after any cycle already prepaid), and
the enforcer starts it at that expiry (`roll_over`) without suspending. After expiry
(nothing prepaid left) the new cycle starts now. So the days paid for and the data
bought for the current cycle are never dropped, and a cycle never starts in the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.core import wallet
from portal.core.billing import lines, purchase
from portal.core.billing.idempotency import Claim
from portal.core.billing.invoices import Line, as_json, issue
from portal.errors import Forbidden, NotFound, PortalError
from portal.speed import effective, rollover
from portal.store import db, journal
from portal.store.models import Plan, Reseller, Subscriber

PAID_BY = ("wallet", "cash", "free")


@dataclass(frozen=True)
class Placed:
    starts_at: datetime
    expires_at: datetime
    ahead: bool  # a prepaid next cycle (True) or a cycle starting now (False)


def place(expires_at: datetime, paid_until: datetime | None, length: timedelta,
          now: datetime) -> Placed:
    """Where a renewal's cycle goes. Running: after everything already paid (the current
    cycle and any prepaid ones). Expired (due prepaid cycles already rolled over): now."""
    if now < expires_at:
        start = max(expires_at, paid_until or expires_at)
        return Placed(start, start + length, True)
    return Placed(now, now + length, False)


async def next_cycle(subscriber_id: int) -> dict[str, Any] | None:
    """What is prepaid after the current cycle ("next cycle paid"), if anything."""
    rows = await db.fetch("SELECT MIN(starts_at) AS starts_at, MAX(expires_at) AS paid_until"
                          " FROM prepaid_cycles WHERE subscriber_id = ? AND started_at IS NULL",
                          [subscriber_id])
    if not rows or rows[0]["starts_at"] is None:
        return None
    return {"starts_at": db.from_db_time(rows[0]["starts_at"]).isoformat(),
            "paid_until": db.from_db_time(rows[0]["paid_until"]).isoformat()}


def renewal_line(plan: Plan, placed: Placed) -> lines.Said:
    return lines.renewal(plan.name, placed.starts_at.date(), placed.expires_at.date())


async def renew(subscriber_id: int, now: datetime, *, paid_by: str = "wallet",
                reference: str = "", days: int | None = None, actor: str = "operator:cli",
                self_service: bool = False, previewed_cents: int | None = None,
                claim: Claim | None = None, ip: str = "") -> tuple[dict[str, Any], bool]:
    """Renew for one plan period, paid from the wallet, in cash (`reference`: the
    payment's reference, gets a receipt) or free (`reference`: the reason, audited).
    Returns (result, replayed)."""
    if paid_by not in PAID_BY:
        raise PortalError("invalid_payment", "paid by wallet, cash or free")
    reference = reference.strip()
    if paid_by == "cash" and not reference:
        raise PortalError("reference_required", "a cash payment needs its reference")
    if paid_by == "free" and not reference:
        raise PortalError("reason_required", "a free renewal needs a reason")
    if days is not None and (paid_by != "free" or not 1 <= days <= 3660):
        raise PortalError("invalid_days", "renewal length must be 1-3660 days, and only a"
                          " free renewal may choose it (a paid one is the plan's period)")

    async def body(tx: BaseDBAsyncClient, sub: Subscriber) -> dict[str, Any]:
        reseller = await db.fetch_model(Reseller, "SELECT * FROM resellers WHERE id = ?",
                                        [sub.reseller_id])
        plan = await db.fetch_model(Plan, "SELECT * FROM plans WHERE id = ?", [sub.plan_id])
        if reseller is None or plan is None:
            raise NotFound("unknown_subscriber", "no such subscriber")
        if self_service and not reseller.allow_self_renewal:
            raise Forbidden("feature_disabled", "renewal is done by your operator")
        await rollover.roll_over(tx, sub, now)
        paid = await db.fetch("SELECT MAX(expires_at) AS until FROM prepaid_cycles"
                              " WHERE subscriber_id = ? AND started_at IS NULL", [sub.id])
        until = paid[0]["until"]
        placed = place(sub.expires_at, db.from_db_time(until) if until else None,
                       timedelta(days=days if days is not None else plan.period_days), now)
        amount = 0 if paid_by == "free" else plan.price_cents
        if previewed_cents is not None and previewed_cents != amount:
            raise PortalError("price_changed", "the price changed, please review it",
                              status=409, amount_cents=amount)
        receipt = invoice = None
        balance = sub.balance_cents
        if amount > 0:
            if paid_by == "cash":
                got = await wallet.credit(tx, sub.id, amount, "payment", "", actor)
                receipt = await issue(tx, sub, reseller, "receipt",
                                      [Line(lines.payment(reference), amount)], now)
                await wallet.set_reference(tx, got.id, receipt.number)
            entry = await wallet.debit(tx, sub.id, amount, "renewal", "", actor)
            invoice = await issue(tx, sub, reseller, "invoice",
                                  [Line(renewal_line(plan, placed), amount)], now)
            await wallet.set_reference(tx, entry.id, invoice.number)
            balance = entry.balance_after_cents
        await db.execute(
            "INSERT INTO prepaid_cycles (subscriber_id, plan_id, starts_at, expires_at, paid_by,"
            " amount_cents, reference, created_by, created_at, started_at, invoice_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sub.id, plan.id, db.db_time(placed.starts_at), db.db_time(placed.expires_at),
             paid_by, amount, reference[:128], actor, db.db_time(now),
             None if placed.ahead else db.db_time(now), invoice.id if invoice else None])
        if not placed.ahead:
            sub.cycle_start, sub.expires_at = placed.starts_at, placed.expires_at
            await db.execute("UPDATE subscribers SET cycle_start = ?, expires_at = ?"
                             " WHERE id = ?", [db.db_time(placed.starts_at),
                                               db.db_time(placed.expires_at), sub.id])
        # The speed writer: out of suspension now, or (ahead) the same speed, and the
        # journal says what was paid.
        await effective.write(tx, sub.username, now, "status", status=sub.status, renewed=True,
                              expires_at=sub.expires_at.isoformat())
        await journal.audit(tx, actor, "subscriber.renew", sub.username, ip=ip,
                            paid_by=paid_by, amount_cents=amount, reference=reference,
                            starts_at=placed.starts_at.isoformat(),
                            expires_at=placed.expires_at.isoformat(),
                            invoice=invoice.number if invoice else "",
                            receipt=receipt.number if receipt else "")
        return {"renewal": {"starts_at": placed.starts_at.isoformat(),
                            "expires_at": placed.expires_at.isoformat(),
                            "next_cycle_paid": placed.ahead, "paid_by": paid_by,
                            "amount_cents": amount, "plan": plan.name},
                "cycle_start": sub.cycle_start.isoformat(),
                "current_expires_at": sub.expires_at.isoformat(),
                "invoice": as_json(invoice) if invoice else None,
                "receipt": as_json(receipt) if receipt else None,
                "balance_cents": balance, "currency": reseller.currency}

    return await purchase.run(subscriber_id, claim, now, body)


async def renew_username(username: str, now: datetime, **kwargs: Any
                         ) -> tuple[dict[str, Any], bool]:
    sub = await Subscriber.get_or_none(username=username)
    if sub is None:
        raise NotFound("unknown_subscriber", f"no subscriber {username!r}")
    return await renew(sub.id, now, **kwargs)


@dataclass(frozen=True)
class Lapsed:
    """What the expired page tells the subscriber browsing from an address."""

    username: str
    state: str  # "expired" | "disabled"
    expires_at: datetime
    reseller: Reseller
    plan: str
    price_cents: int
    period_days: int
    self_service: bool  # "Renew now" in the portal (the reseller allows it)


async def lapsed_at(address: str) -> Lapsed | None:
    """The expired or disabled subscriber online at `address`, as the resolver sees it
    (the same dns_policy view and its 'expired' pseudo-category); None for anyone else,
    so the page never says anything about an address that is not such a subscriber's."""
    rows = await db.fetch("SELECT username FROM dns_policy WHERE address = ?"
                          " AND categories = 'expired'", [address])
    if not rows:
        return None
    sub = await db.fetch_model(Subscriber, "SELECT * FROM subscribers WHERE username = ?",
                               [str(rows[0]["username"])])
    if sub is None:
        return None
    reseller = await db.fetch_model(Reseller, "SELECT * FROM resellers WHERE id = ?",
                                    [sub.reseller_id])
    plan = await db.fetch_model(Plan, "SELECT * FROM plans WHERE id = ?", [sub.plan_id])
    if reseller is None or plan is None:
        return None
    disabled = sub.status != "active"
    return Lapsed(sub.username, "disabled" if disabled else "expired", sub.expires_at,
                  reseller, plan.name, plan.price_cents, plan.period_days,
                  reseller.allow_self_renewal and not disabled)
