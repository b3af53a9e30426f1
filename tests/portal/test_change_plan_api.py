"""Change Plan against the real portal process: quote = charge, refunds, rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from portal.core import resellers
from portal.core.billing.proration import prorate
from portal.store.models import (
    AuditLog,
    ChangeJournal,
    Invoice,
    InvoiceLine,
    Plan,
    RadReply,
    Subscriber,
    WalletEntry,
)
from tests.portal.billing_helpers import bearer, counts, customer, setup_resellers
from tests.support.portal import PortalServer


async def _plan(name: str, reseller: str = "acme") -> Plan:
    return await Plan.get(name=name, reseller__name=reseller)


def _quote(c, h, plan_id):
    r = c.post("/customer/api/plans/quote", json={"plan_id": plan_id}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def _confirm(c, h, q, **extra):
    body = {"plan_id": q["plan_id"], "amount_cents": q["amount_cents"],
            "quoted_at": q["quoted_at"], **extra}
    return c.post("/customer/api/plans/change", json=body, headers=h)


@pytest.fixture
async def acme(db: str) -> None:
    await setup_resellers()
    await customer("ann@x", 5000, days_used=18)


async def test_upgrade_charges_exactly_the_previewed_proration(acme: None,
                                                                portal_server: PortalServer):
    fast = await _plan("Fast")
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        listing = c.get("/customer/api/plans", headers=h).json()
        names = [p["name"] for p in listing["plans"]]
        assert names == ["Basic", "Fast"]  # Hidden is not offered, other resellers' absent
        assert [p["current"] for p in listing["plans"]] == [True, False]
        q = _quote(c, h, fast.id)
        sub = await Subscriber.get(username="ann@x")
        expected = prorate(1500, 3000, sub.cycle_start, sub.expires_at,
                           datetime.fromisoformat(q["quoted_at"])).amount_cents
        assert q["amount_cents"] == expected and 595 <= expected <= 600
        assert q["description"] == "Plan change Basic → Fast, 12 of 30 days"
        assert q["balance_after_cents"] == 5000 - expected
        r = _confirm(c, h, q)
        assert r.status_code == 200, r.text
        assert r.json()["amount_cents"] == expected
        assert r.json()["balance_cents"] == 5000 - expected
        assert r.json()["plan"]["name"] == "Fast"
    sub = await Subscriber.get(username="ann@x")
    assert sub.plan_id == fast.id and sub.balance_cents == 5000 - expected
    entry = await WalletEntry.get(subscriber_id=sub.id, reason="plan_change")
    assert entry.amount_cents == -expected and entry.reference == r.json()["invoice"]["number"]
    inv = await Invoice.get(subscriber_id=sub.id)
    assert inv.kind == "invoice" and inv.total_cents == expected
    line = await InvoiceLine.get(invoice_id=inv.id)
    assert line.description == "Plan change Basic → Fast, 12 of 30 days"
    rate = await RadReply.get(username="ann@x", attribute="Mikrotik-Rate-Limit")
    assert rate.value == "20000k/50000k"  # upload/download, RouterOS order
    j = await ChangeJournal.filter(username="ann@x", kind="plan").order_by("-id").first()
    assert json.loads(j.payload)["plan_id"] == fast.id
    assert await AuditLog.filter(username="ann@x", action="plan.change").count() == 1


async def test_downgrade_refunds_when_the_reseller_allows(acme: None,
                                                          portal_server: PortalServer):
    await resellers.configure("acme", allow_downgrade_refund=True)
    fast, basic = await _plan("Fast"), await _plan("Basic")
    await Subscriber.filter(username="ann@x").update(plan_id=fast.id)
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        q = _quote(c, h, basic.id)
        assert q["amount_cents"] < 0 and q["direction"] == "downgrade"
        assert q["description"].startswith("Refund: Plan change Fast → Basic")
        r = _confirm(c, h, q)
        assert r.status_code == 200, r.text
    refund = -q["amount_cents"]
    sub = await Subscriber.get(username="ann@x")
    assert sub.balance_cents == 5000 + refund and sub.plan_id == basic.id
    entry = await WalletEntry.get(subscriber_id=sub.id, reason="plan_refund")
    assert entry.amount_cents == refund
    inv = await Invoice.get(subscriber_id=sub.id)
    assert inv.kind == "credit_note" and inv.total_cents == refund
    assert entry.reference == inv.number


async def test_downgrade_without_refund_is_free(acme: None, portal_server: PortalServer):
    fast, basic = await _plan("Fast"), await _plan("Basic")
    await Subscriber.filter(username="ann@x").update(plan_id=fast.id)
    h = bearer(portal_server, "ann@x")
    before = await counts()
    with portal_server.client() as c:
        q = _quote(c, h, basic.id)
        assert q["amount_cents"] == 0 and q["prorated_cents"] < 0
        assert q["refund_allowed"] is False
        r = _confirm(c, h, q)
        assert r.status_code == 200 and r.json()["invoice"] is None
    after = await counts()
    assert after.wallet == before.wallet and after.invoices == before.invoices
    assert after.journal == before.journal + 1
    sub = await Subscriber.get(username="ann@x")
    assert sub.plan_id == basic.id and sub.balance_cents == 5000


async def test_refused_changes_leave_no_trace(acme: None, portal_server: PortalServer):
    fast, basic, hidden = await _plan("Fast"), await _plan("Basic"), await _plan("Hidden")
    foreign = await _plan("Fast", "other")
    h = bearer(portal_server, "ann@x")
    before = await counts()
    cases = [
        ({"plan_id": foreign.id}, 404, "unknown_plan"),
        ({"plan_id": 999999}, 404, "unknown_plan"),
        ({"plan_id": hidden.id}, 404, "unknown_plan"),
        ({"plan_id": basic.id}, 400, "same_plan"),
        ({"plan_id": "abc"}, 400, "invalid_plan_id"),
        ({"plan_id": -1}, 400, "invalid_plan_id"),
        ({"plan_id": 1.5}, 400, "invalid_plan_id"),
        ({}, 400, "invalid_plan_id"),
    ]
    with portal_server.client() as c:
        q = _quote(c, h, fast.id)
        for body, status, code in cases:
            quote = c.post("/customer/api/plans/quote", json=body, headers=h)
            assert (quote.status_code, quote.json()["error"]["code"]) == (status, code), body
            full = {"amount_cents": 0, "quoted_at": q["quoted_at"], **body}
            change = c.post("/customer/api/plans/change", json=full, headers=h)
            assert (change.status_code, change.json()["error"]["code"]) == (status, code), body
        moved = _confirm(c, h, {**q, "amount_cents": q["amount_cents"] - 1})
        assert moved.status_code == 409 and moved.json()["error"]["code"] == "price_changed"
        assert "price changed" in moved.json()["error"]["message"]
        stale = _confirm(c, h, {**q, "quoted_at": (datetime.now(UTC) - timedelta(hours=1))
                                .isoformat()})
        assert stale.status_code == 409 and stale.json()["error"]["code"] == "quote_expired"
        future = _confirm(c, h, {**q, "quoted_at": (datetime.now(UTC) + timedelta(hours=1))
                                 .isoformat()})
        assert future.status_code == 409
        garbage = _confirm(c, h, {**q, "quoted_at": "yesterday"})
        assert garbage.status_code == 400
        no_amount = c.post("/customer/api/plans/change", json={"plan_id": fast.id}, headers=h)
        assert no_amount.status_code == 400
    assert await counts() == before
    sub = await Subscriber.get(username="ann@x")
    assert sub.plan_id == basic.id and sub.balance_cents == 5000


async def test_price_edited_between_preview_and_confirm_is_409(acme: None,
                                                               portal_server: PortalServer):
    fast = await _plan("Fast")
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        q = _quote(c, h, fast.id)
        await Plan.filter(id=fast.id).update(price_cents=3500)
        before = await counts()
        r = _confirm(c, h, q)
        assert r.status_code == 409 and r.json()["error"]["code"] == "price_changed"
        assert await counts() == before
        r2 = _confirm(c, h, _quote(c, h, fast.id))
        assert r2.status_code == 200


async def test_insufficient_funds_for_an_upgrade(acme: None, portal_server: PortalServer):
    await Subscriber.filter(username="ann@x").update(balance_cents=0)
    await WalletEntry.all().delete()
    fast = await _plan("Fast")
    h = bearer(portal_server, "ann@x")
    before = await counts()
    with portal_server.client() as c:
        q = _quote(c, h, fast.id)
        r = _confirm(c, h, q)
    assert r.status_code == 402
    assert f"{q['amount_cents'] / 100:.2f}" in r.json()["error"]["message"]
    assert await counts() == before


async def test_disabled_and_expired(acme: None, portal_server: PortalServer):
    fast = await _plan("Fast")
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        q = _quote(c, h, fast.id)
        await resellers.configure("acme", allow_plan_change=False)
        before = await counts()
        tabs = [t["name"] for t in c.get("/customer/api/me", headers=h).json()["tabs"]]
        assert "plans" not in tabs
        assert c.get("/customer/api/plans", headers=h).status_code == 403
        r = _confirm(c, h, q)
        assert r.status_code == 403 and r.json()["error"]["code"] == "feature_disabled"
        await resellers.configure("acme", allow_plan_change=True)
        now = datetime.now(UTC)
        await Subscriber.filter(username="ann@x").update(
            cycle_start=now - timedelta(days=30), expires_at=now - timedelta(seconds=1))
        before = await counts()
        quote = c.post("/customer/api/plans/quote", json={"plan_id": fast.id}, headers=h)
        assert quote.status_code == 403
        assert quote.json()["error"]["code"] == "subscription_expired"
        r = _confirm(c, h, q)
        assert r.status_code in (403, 409)
    assert await counts() == before


async def test_plan_change_idempotency(acme: None, portal_server: PortalServer):
    fast = await _plan("Fast")
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        q = _quote(c, h, fast.id)
        first = c.post(
            "/customer/api/plans/change", headers={**h, "Idempotency-Key": "pc-1"},
            json={"plan_id": fast.id, "amount_cents": q["amount_cents"],
                  "quoted_at": q["quoted_at"]})
        assert first.status_code == 200
        after = await counts()
        again = c.post("/customer/api/plans/change", headers={**h, "Idempotency-Key": "pc-1"},
                       json={"plan_id": fast.id, "amount_cents": q["amount_cents"],
                             "quoted_at": q["quoted_at"]})
        assert again.status_code == 200 and again.json() == first.json()
        other = c.post("/customer/api/plans/change", headers={**h, "Idempotency-Key": "pc-1"},
                       json={"plan_id": fast.id, "amount_cents": 0,
                             "quoted_at": q["quoted_at"]})
        assert other.status_code == 422
    assert await counts() == after
