"""Change Plan: the rules, the quote (preview) and the change itself.

quote_plan_change() prices a change at the server's clock; offer() signs it
(quote_token) for the subscriber to confirm. change_plan() prices it again at
the server's clock inside the charging transaction and charges that, capped by
the signed quote (never a larger charge nor a larger refund than quoted, else
409 with a fresh quote); it counts the day's changes in the same transaction
(change_limit, 429). Nothing the client says about time is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from portal import i18n
from portal.core import wallet
from portal.core.billing import change_limit, lines, purchase, quote_token
from portal.core.billing.idempotency import Claim
from portal.core.billing.invoices import Line, as_json, issue
from portal.core.billing.proration import Proration, prorate
from portal.core.money import fmt
from portal.errors import Conflict, Forbidden, NotFound, PortalError
from portal.speed import effective, rollover
from portal.store import db, journal
from portal.store.models import Plan, Reseller, Subscriber
from portal.store.tx import transaction


@dataclass(frozen=True)
class ChangeRules:
    """The portal's settings for plan changes, handed in (core reads no config)."""

    key: bytes  # the portal's signing key: signs and verifies quotes
    per_day: int  # plan changes per subscriber per local day (0 = no limit)
    tz: ZoneInfo  # whose midnight starts a new day (general.timezone)


@dataclass(frozen=True)
class Quote:
    current: Plan
    target: Plan
    proration: Proration
    amount_cents: int  # what moves: > 0 charged, < 0 refunded, 0 nothing
    refund_allowed: bool
    quoted_at: datetime  # the server's clock; never taken from a client

    @property
    def said(self) -> lines.Said:
        """What the change's invoice line says (in any language: lines.text)."""
        return lines.plan_change(self.current.name, self.target.name,
                                 self.proration.remaining_days, self.proration.cycle_days,
                                 refund=self.amount_cents < 0)

    @property
    def description(self) -> str:
        return self.said.text(i18n.DEFAULT)

    def as_json(self, balance_cents: int, language: str = i18n.DEFAULT) -> dict[str, Any]:
        """`description` in English as before; `description_text` in `language` (the plan
        names between Unicode isolates, see portal.core.billing.lines)."""
        return {
            "from_plan": plan_json(self.current), "to_plan": plan_json(self.target),
            "plan_id": self.target.id, "amount_cents": self.amount_cents,
            "prorated_cents": self.proration.amount_cents,
            "direction": "upgrade" if self.proration.amount_cents > 0 else
                         "downgrade" if self.proration.amount_cents < 0 else "same_price",
            "refund_allowed": self.refund_allowed,
            "remaining_days": self.proration.remaining_days,
            "cycle_days": self.proration.cycle_days, "description": self.description,
            "description_text": self.said.text(language),
            "balance_after_cents": balance_cents - self.amount_cents,
        }

    def claims(self, subscriber_id: int) -> quote_token.QuoteClaims:
        return quote_token.QuoteClaims(subscriber_id, self.current.id, self.target.id,
                                       self.amount_cents, int(self.quoted_at.timestamp()))


def offer(q: Quote, subscriber_id: int, balance_cents: int, key: bytes,
          language: str = i18n.DEFAULT) -> dict[str, Any]:
    """The quote as the subscriber sees it, with the signed `quote` to confirm it by."""
    claims = q.claims(subscriber_id)
    return {**q.as_json(balance_cents, language), "quote": quote_token.sign(key, claims),
            "quote_expires_at": claims.expires_at().isoformat()}


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
    # A prepaid next cycle was paid at this plan's price and the proration covers only
    # the running cycle: a change now would run that cycle on the new plan at the old
    # price (docs/BILLING.md "Renewal"). So the plan stays until it has started.
    prepaid = await db.fetch("SELECT MIN(starts_at) AS starts_at FROM prepaid_cycles"
                             " WHERE subscriber_id = ? AND started_at IS NULL", [sub.id])
    if prepaid and prepaid[0]["starts_at"] is not None:
        starts = db.from_db_time(prepaid[0]["starts_at"])
        raise Conflict("next_cycle_paid", "your next cycle is already paid for on this plan:"
                       f" you can change plan once it has started ({starts:%Y-%m-%d})",
                       starts_at=starts.isoformat())
    current = await Plan.get(id=sub.plan_id, using_db=tx)
    p = prorate(current.price_cents, target.price_cents, sub.cycle_start, sub.expires_at, at)
    refund_allowed = reseller.allow_downgrade_refund
    amount = p.amount_cents if p.amount_cents > 0 or refund_allowed else 0
    return Quote(current, target, p, amount, refund_allowed, at)


async def changes_today(subscriber_id: int, now: datetime, tz: ZoneInfo) -> int:
    """Plan changes committed since local midnight (read inside the charging transaction,
    after the subscriber's row lock, so concurrent changes are counted one by one)."""
    start, _ = change_limit.day_bounds(now, tz)
    rows = await db.fetch("SELECT COUNT(*) AS n FROM plan_changes"
                          " WHERE subscriber_id = ? AND changed_at >= ?",
                          [subscriber_id, db.db_time(start.astimezone(UTC))])
    return int(rows[0]["n"])


async def change_plan(subscriber_id: int, plan_id: int, quote: object, now: datetime,
                      rules: ChangeRules, *, ip: str = "", claim: Claim | None = None,
                      language: str = i18n.DEFAULT) -> tuple[dict[str, Any], bool]:
    """Switch plan, charging or refunding the price at `now` capped by the signed
    `quote`; (result, replayed). Refusals: 409 with a fresh quote, 429 past the limit."""
    refused: list[Subscriber] = []

    async def body(tx: BaseDBAsyncClient, sub: Subscriber) -> dict[str, Any]:
        await rollover.roll_over(tx, sub, now)  # a due prepaid cycle first (as buy_data)
        if now >= sub.expires_at:
            raise Forbidden("subscription_expired",
                            "your subscription has expired: renew it before changing plan")
        done = await changes_today(sub.id, now, rules.tz)
        try:
            change_limit.check(done, rules.per_day, now, rules.tz)
        except change_limit.PlanChangeLimit:
            refused.append(sub)
            raise
        q = await quote_plan_change(sub, plan_id, now, tx)

        def retry(code: str, message: str) -> Conflict:
            return Conflict(code, message, amount_cents=q.amount_cents,
                            quote=offer(q, sub.id, sub.balance_cents, rules.key, language))

        if quote is None:
            raise retry("quote_required", "please review the price of this change and "
                        "confirm it again")
        try:
            quoted = quote_token.verify(rules.key, quote, now)
        except Conflict as exc:
            raise retry(exc.code, exc.message) from None
        if (quoted.subscriber_id, quoted.from_plan_id, quoted.to_plan_id) != (
                sub.id, q.current.id, q.target.id):
            raise retry("quote_mismatch", "this price quote is for another change: "
                        "please review the change again")
        reseller = await Reseller.get(id=sub.reseller_id, using_db=tx)
        if not quote_token.within_quote(q.amount_cents, quoted.amount_cents):
            raise retry("price_changed", f"price changed: the amount is now "
                        f"{fmt(q.amount_cents, reseller.currency)}, please review it again")
        invoice = None
        if q.amount_cents > 0:
            entry = await wallet.debit(tx, sub.id, q.amount_cents, "plan_change", "",
                                       f"customer:{sub.username}")
            invoice = await issue(tx, sub, reseller, "invoice",
                                  [Line(q.said, q.amount_cents)], now)
        elif q.amount_cents < 0:
            entry = await wallet.credit(tx, sub.id, -q.amount_cents, "plan_refund", "",
                                        f"customer:{sub.username}")
            invoice = await issue(tx, sub, reseller, "credit_note",
                                  [Line(q.said, -q.amount_cents)], now)
        if invoice is not None:
            await wallet.set_reference(tx, entry.id, invoice.number)
        await Subscriber.filter(id=sub.id).using_db(tx).update(plan_id=q.target.id)
        await db.execute("INSERT INTO plan_changes (subscriber_id, changed_at, from_plan_id,"
                         " to_plan_id, amount_cents) VALUES (?, ?, ?, ?, ?)",
                         [sub.id, db.db_time(now.astimezone(UTC)), q.current.id, q.target.id,
                          q.amount_cents])
        # The new plan's FUP tiers may already apply: radreply gets the effective speed.
        await effective.write(tx, sub.username, now, "plan", plan_id=q.target.id,
                              down_kbps=q.target.down_kbps, up_kbps=q.target.up_kbps)
        await journal.audit(tx, f"customer:{sub.username}", "plan.change", sub.username, ip=ip,
                            from_plan=q.current.name, to_plan=q.target.name,
                            amount_cents=q.amount_cents, quoted_cents=quoted.amount_cents,
                            changes_today=done + 1,
                            invoice=invoice.number if invoice else None)
        balance = (await Subscriber.get(id=sub.id, using_db=tx)).balance_cents
        return {"plan": plan_json(q.target), "amount_cents": q.amount_cents,
                "quoted_cents": quoted.amount_cents, "description": q.description,
                "description_text": q.said.text(language),
                "invoice": as_json(invoice) if invoice else None, "balance_cents": balance}

    try:
        return await purchase.run(subscriber_id, claim, now, body)
    except change_limit.PlanChangeLimit as exc:
        if refused:  # the refusal is kept: the change's transaction was rolled back
            await _audit_refusal(refused[0], plan_id, exc, ip)
        raise


async def _audit_refusal(sub: Subscriber, plan_id: int, exc: PortalError, ip: str) -> None:
    async def record(tx: BaseDBAsyncClient) -> None:
        await journal.audit(tx, f"customer:{sub.username}", "plan.change_refused",
                            sub.username, ip=ip, reason=exc.code, plan_id=plan_id,
                            **exc.extra)

    await transaction(record, lock=sub.username)
