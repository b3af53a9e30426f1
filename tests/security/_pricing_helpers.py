"""Helpers of tests/security/test_pricing.py: an attacker's view of Change Plan.

The attacker knows the old API (amount_cents + quoted_at) and the new one (a
signed `quote`) and sends every field either may read, so the same tricks run
against any version of the portal.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from portal.core.billing.proration import prorate
from portal.store.models import AuditLog, Subscriber, WalletEntry


def quote(c: httpx.Client, h: dict[str, str], plan_id: int) -> dict[str, Any]:
    r = c.post("/customer/api/plans/quote", json={"plan_id": plan_id}, headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


def forged_time_body(c: httpx.Client, h: dict[str, str], plan_id: int,
                     at: datetime) -> dict[str, Any]:
    """A confirm that claims the preview was made at `at`, with the amount the old
    server computed for that instant, plus whatever quote the server handed out."""
    listing = c.get("/customer/api/plans", headers=h).json()
    prices = {p["id"]: p["price_cents"] for p in listing["plans"]}
    current = listing["current_plan_id"]
    amount = prorate(prices[current], prices[plan_id],
                     datetime.fromisoformat(listing["cycle_start"]),
                     datetime.fromisoformat(listing["expires_at"]), at).amount_cents
    if amount < 0 and not listing["refund_allowed"]:
        amount = 0
    fresh = quote(c, h, plan_id)
    return {"plan_id": plan_id, "amount_cents": amount, "quoted_at": at.isoformat(),
            **({"quote": fresh["quote"]} if "quote" in fresh else {})}


def late(now: datetime | None = None) -> datetime:
    """The latest instant the old server accepted: an upgrade priced later is cheaper."""
    return (now or datetime.now(UTC)) + timedelta(seconds=4)


def early(now: datetime | None = None) -> datetime:
    """The earliest one: a downgrade priced earlier refunds more."""
    return (now or datetime.now(UTC)) - timedelta(minutes=14, seconds=50)


def tamper_amount(token: str, amount_cents: int) -> str:
    """The quote's payload re-encoded with another amount; the MAC kept."""
    body, _, mac = token.partition(".")
    raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[3] = amount_cents
    data = json.dumps(raw, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode() + "." + mac


def flip_mac(token: str) -> str:
    body, _, mac = token.partition(".")
    return body + "." + ("A" if mac[0] != "A" else "B") + mac[1:]


async def balance(username: str) -> int:
    return (await Subscriber.get(username=username)).balance_cents


async def wallet_matches_ledger(username: str) -> None:
    sub = await Subscriber.get(username=username)
    entries = await WalletEntry.filter(subscriber_id=sub.id).order_by("id")
    assert sum(e.amount_cents for e in entries) == sub.balance_cents
    running = 0
    for e in entries:
        running += e.amount_cents
        assert e.balance_after_cents == running


async def accepted_changes(username: str) -> int:
    return await AuditLog.filter(username=username, action="plan.change").count()
