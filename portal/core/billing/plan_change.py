"""Change Plan: the rules, the quote (preview) and the change itself.

quote_plan_change() is what the subscriber sees; change_plan() recomputes the
same quote inside the charging transaction at the instant the preview was made
and refuses (409 price_changed) unless it is the amount the subscriber confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.core import wallet
from portal.core.billing import purchase
from portal.core.billing.idempotency import Claim
from portal.core.billing.invoices import Line, as_json, issue
from portal.core.billing.proration import Proration, prorate
from portal.core.money import fmt
from portal.errors import Conflict, Forbidden, NotFound, PortalError
from portal.speed import effective
from portal.store import journal
from portal.store.models import Plan, Reseller, Subscriber

# How long a preview stays valid: the charge is computed at the preview's instant.
QUOTE_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class Quote:
    current: Plan
    target: Plan
    proration: Proration
    amount_cents: int  # what moves: > 0 charged, < 0 refunded, 0 nothing
    refund_allowed: bool
    quoted_at: datetime

    @property
    def description(self) -> str:
        days = f"{self.proration.remaining_days} of {self.proration.cycle_days} days"
        text = f"Plan change {self.current.name} → {self.target.name}, {days}"
        return f"Refund: {text}" if self.amount_cents < 0 else text

    def as_json(self, balance_cents: int) -> dict[str, Any]:
        return {
            "from_plan": plan_json(self.current), "to_plan": plan_json(self.target),
            "plan_id": self.target.id, "amount_cents": self.amount_cents,
            "prorated_cents": self.proration.amount_cents,
            "direction": "upgrade" if self.proration.amount_cents > 0 else
                         "downgrade" if self.proration.amount_cents < 0 else "same_price",
            "refund_allowed": self.refund_allowed,
            "remaining_days": self.proration.remaining_days,
            "cycle_days": self.proration.cycle_days, "description": self.description,
            "quoted_at": self.quoted_at.isoformat(),
            "balance_after_cents": balance_cents - self.amount_cents,
        }


def plan_json(plan: Plan) -> dict[str, Any]:
    return {"id": plan.id, "name": plan.name, "down_kbps": plan.down_kbps,
            "up_kbps": plan.up_kbps, "quota_bytes": plan.quota_bytes,
            "price_cents": plan.price_cents, "period_days": plan.period_days}


async def offered_plans(sub: Subscriber) -> list[Plan]:
    return await Plan.filter(reseller_id=sub.reseller_id, offered=True).order_by(
        "price_cents", "id")


async def quote_plan_change(sub: Subscriber, plan_id: int, at: datetime,
                            tx: BaseDBAsyncClient | None = None) -> Quote:
    """Validate a change of sub to plan_id and price it at instant `at`."""
    reseller = await Reseller.get(id=sub.reseller_id, using_db=tx)
    if not reseller.allow_plan_change:
        raise Forbidden("feature_disabled", "plan changes are not enabled for your account")
    target = await Plan.filter(id=plan_id, reseller_id=sub.reseller_id, offered=True) \
        .using_db(tx).first()
    if target is None:
        raise NotFound("unknown_plan", "no such plan is offered to you")
    if target.id == sub.plan_id:
        raise PortalError("same_plan", "you are already on this plan")
    if at >= sub.expires_at:
        raise Forbidden("subscription_expired",
                        "your subscription has expired: renew it before changing plan")
    current = await Plan.get(id=sub.plan_id, using_db=tx)
    p = prorate(current.price_cents, target.price_cents, sub.cycle_start, sub.expires_at, at)
    refund_allowed = reseller.allow_downgrade_refund
    amount = p.amount_cents if p.amount_cents > 0 or refund_allowed else 0
    return Quote(current, target, p, amount, refund_allowed, at)


def quote_instant(quoted_at: str | None, now: datetime) -> datetime:
    """The preview's instant from the confirm request; a stale or future one is refused."""
    if quoted_at is None:
        return now
    try:
        at = datetime.fromisoformat(str(quoted_at))
    except ValueError:
        raise PortalError("invalid_quoted_at", "quoted_at must be the preview's time") from None
    if at.tzinfo is None:
        raise PortalError("invalid_quoted_at", "quoted_at must carry a time zone")
    if at > now + timedelta(seconds=5) or now - at > QUOTE_TTL:
        raise Conflict("quote_expired", "this price preview has expired: please review it again")
    return at


async def change_plan(subscriber_id: int, plan_id: int, previewed_cents: int,
                      quoted_at: str | None, now: datetime, *, ip: str = "",
                      claim: Claim | None = None) -> tuple[dict[str, Any], bool]:
    """Charge or refund the previewed amount and switch plan; (result, replayed)."""
    at = quote_instant(quoted_at, now)

    async def body(tx: BaseDBAsyncClient, sub: Subscriber) -> dict[str, Any]:
        if now >= sub.expires_at:
            raise Forbidden("subscription_expired",
                            "your subscription has expired: renew it before changing plan")
        q = await quote_plan_change(sub, plan_id, at, tx)
        if q.amount_cents != previewed_cents:
            raise Conflict("price_changed",
                           f"price changed: the amount is now {fmt(q.amount_cents)}, "
                           "please review it again", amount_cents=q.amount_cents)
        reseller = await Reseller.get(id=sub.reseller_id, using_db=tx)
        invoice = None
        if q.amount_cents > 0:
            entry = await wallet.debit(tx, sub.id, q.amount_cents, "plan_change", "",
                                       f"customer:{sub.username}")
            invoice = await issue(tx, sub, reseller, "invoice",
                                  [Line(q.description, q.amount_cents)], now)
        elif q.amount_cents < 0:
            entry = await wallet.credit(tx, sub.id, -q.amount_cents, "plan_refund", "",
                                        f"customer:{sub.username}")
            invoice = await issue(tx, sub, reseller, "credit_note",
                                  [Line(q.description, -q.amount_cents)], now)
        if invoice is not None:
            await wallet.set_reference(tx, entry.id, invoice.number)
        await Subscriber.filter(id=sub.id).using_db(tx).update(plan_id=q.target.id)
        # The new plan's FUP tiers may already apply: radreply gets the effective speed.
        await effective.write(tx, sub.username, now, "plan", plan_id=q.target.id,
                              down_kbps=q.target.down_kbps, up_kbps=q.target.up_kbps)
        await journal.audit(tx, f"customer:{sub.username}", "plan.change", sub.username, ip=ip,
                            from_plan=q.current.name, to_plan=q.target.name,
                            amount_cents=q.amount_cents,
                            invoice=invoice.number if invoice else None)
        balance = (await Subscriber.get(id=sub.id, using_db=tx)).balance_cents
        return {"plan": plan_json(q.target), "amount_cents": q.amount_cents,
                "description": q.description,
                "invoice": as_json(invoice) if invoice else None, "balance_cents": balance}

    return await purchase.run(subscriber_id, claim, now, body)
