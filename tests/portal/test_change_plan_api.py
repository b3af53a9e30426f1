"""Change Plan against the real portal process: the charge is the server's price at
commit, capped by the signed quote; refunds, rules, the daily limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from portal.core import resellers
from portal.store.models import (
    AuditLog,
    ChangeJournal,
    Invoice,
    InvoiceLine,
    Plan,
    PlanChange,
    RadReply,
    Subscriber,
    WalletEntry,
)
from tests.portal.billing_helpers import bearer, counts, customer, setup_resellers
from tests.support.portal import PortalServer, start_portal


async def _plan(name: str, reseller: str = "acme") -> Plan:
    return await Plan.get(name=name, reseller__name=reseller)


def _quote(c, h, plan_id):
    r = c.post("/customer/api/plans/quote", json={"plan_id": plan_id}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def _confirm(c, h, q, **extra):
    body = {"plan_id": q["plan_id"], "quote": q["quote"], **extra}
    return c.post("/customer/api/plans/change", json=body, headers=h)


@pytest.fixture
async def acme(db: str) -> None:
    await setup_resellers()
    await customer("ann@x", 5000, days_used=18)


async def test_upgrade_charges_the_price_at_commit_capped_by_the_quote(
        acme: None, portal_server: PortalServer):
    fast = await _plan("Fast")
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        listing = c.get("/customer/api/plans", headers=h).json()
        names = [p["name"] for p in listing["plans"]]
        assert names == ["Basic", "Fast"]  # Hidden is not offered, other resellers' absent
        assert [p["current"] for p in listing["plans"]] == [True, False]
        q = _quote(c, h, fast.id)
        assert "quoted_at" not in q and q["quote"]
        expires = datetime.fromisoformat(q["quote_expires_at"]) - datetime.now(UTC)
        assert timedelta(minutes=14) < expires <= timedelta(minutes=15)
        assert 595 <= q["amount_cents"] <= 600
        assert q["description"] == "Plan change Basic → Fast, 12 of 30 days"
        assert q["balance_after_cents"] == 5000 - q["amount_cents"]
        r = _confirm(c, h, q)
        assert r.status_code == 200, r.text
        # Priced again when it commits (a moment later: never more than quoted).
        expected = r.json()["amount_cents"]
        assert q["amount_cents"] - 1 <= expected <= q["amount_cents"]
        assert r.json()["quoted_cents"] == q["amount_cents"]
        assert r.json()["balance_cents"] == 5000 - expected
        assert r.json()["plan"]["name"] == "Fast"
    sub = await Subscriber.get(username="ann@x")
    assert sub.plan_id == fast.id and sub.balance_cents == 5000 - expected
    entry = await WalletEntry.get(subscriber_id=sub.id, reason="plan_change")
    assert entry.amount_cents == -expected and entry.reference == r.json()["invoice"]["number"]
    inv = await Invoice.get(subscriber_id=sub.id, kind="invoice")  # beside the credit's receipt
    assert inv.kind == "invoice" and inv.total_cents == expected
    line = await InvoiceLine.get(invoice_id=inv.id)
    assert line.description == "Plan change Basic → Fast, 12 of 30 days"
    rate = await RadReply.get(username="ann@x", attribute="Mikrotik-Rate-Limit")
    assert rate.value == "20000k/50000k"  # upload/download, RouterOS order
    j = await ChangeJournal.filter(username="ann@x", kind="plan").order_by("-id").first()
    assert json.loads(j.payload)["plan_id"] == fast.id
    assert await AuditLog.filter(username="ann@x", action="plan.change").count() == 1
    change = await PlanChange.get(subscriber_id=sub.id)
    assert (change.from_plan_id, change.to_plan_id, change.amount_cents) == (
        (await _plan("Basic")).id, fast.id, expected)


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
    refund = -r.json()["amount_cents"]
    assert 0 < refund <= -q["amount_cents"]  # never more than the quoted refund
    sub = await Subscriber.get(username="ann@x")
    assert sub.balance_cents == 5000 + refund and sub.plan_id == basic.id
    entry = await WalletEntry.get(subscriber_id=sub.id, reason="plan_refund")
    assert entry.amount_cents == refund
    inv = await Invoice.get(subscriber_id=sub.id, kind="credit_note")
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
            full = {"quote": q["quote"], **body}
            change = c.post("/customer/api/plans/change", json=full, headers=h)
            assert (change.status_code, change.json()["error"]["code"]) == (status, code), body
        # An older client's time (any time) and amount are not a price: 409 + a fresh quote.
        for at in (datetime.now(UTC) - timedelta(minutes=10), datetime.now(UTC),
                   datetime.now(UTC) + timedelta(hours=1)):
            old = c.post("/customer/api/plans/change", headers=h, json={
                "plan_id": fast.id, "amount_cents": q["amount_cents"],
                "quoted_at": at.isoformat()})
            assert old.status_code == 409, old.text
            err = old.json()["error"]
            assert err["code"] == "quote_required"
            assert err["quote"]["plan_id"] == fast.id and err["quote"]["quote"]
            assert err["quote"]["amount_cents"] == err["amount_cents"]
        for bad in ("yesterday", "", None, 7, [q["quote"]]):
            r = c.post("/customer/api/plans/change", json={"plan_id": fast.id, "quote": bad},
                       headers=h)
            assert r.status_code == 409, (bad, r.text)
            assert r.json()["error"]["code"] in ("quote_required", "quote_invalid")
        assert await counts() == before
        sub = await Subscriber.get(username="ann@x")
        assert sub.plan_id == basic.id and sub.balance_cents == 5000
        # The client's amount is ignored even beside a valid quote: the server prices it.
        cheap = _confirm(c, h, q, amount_cents=1)
        assert cheap.status_code == 200 and cheap.json()["amount_cents"] > 500


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
        assert "price changed" in r.json()["error"]["message"]
        fresh = r.json()["error"]["quote"]
        assert fresh["amount_cents"] > q["amount_cents"]
        assert await counts() == before
        r2 = _confirm(c, h, fresh)
        assert r2.status_code == 200, r2.text
        assert fresh["amount_cents"] - 1 <= r2.json()["amount_cents"] <= fresh["amount_cents"]


async def test_price_lowered_after_the_quote_charges_the_lower_price(
        acme: None, portal_server: PortalServer):
    fast = await _plan("Fast")
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        q = _quote(c, h, fast.id)
        await Plan.filter(id=fast.id).update(price_cents=2000)
        r = _confirm(c, h, q)
    assert r.status_code == 200, r.text
    assert 195 <= r.json()["amount_cents"] <= 200 < q["amount_cents"]


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
            json={"plan_id": fast.id, "quote": q["quote"]})
        assert first.status_code == 200
        after = await counts()
        again = c.post("/customer/api/plans/change", headers={**h, "Idempotency-Key": "pc-1"},
                       json={"plan_id": fast.id, "quote": q["quote"]})
        assert again.status_code == 200 and again.json() == first.json()
        other = c.post("/customer/api/plans/change", headers={**h, "Idempotency-Key": "pc-1"},
                       json={"plan_id": fast.id, "quote": q["quote"] + "0"})
        assert other.status_code == 422
    assert await counts() == after


async def _round_trip_until_refused(server: PortalServer, limit: int) -> list[httpx.Response]:
    fast, basic = await _plan("Fast"), await _plan("Basic")
    h = bearer(server, "ann@x")
    answers: list[httpx.Response] = []
    with server.client() as c:
        for _ in range(limit + 2):
            current = c.get("/customer/api/plans", headers=h).json()["current_plan_id"]
            target = basic if current == fast.id else fast
            q = _quote(c, h, target.id)
            answers.append(_confirm(c, h, q))
    return answers


async def test_the_daily_limit_refuses_with_429_and_is_audited(acme: None,
                                                               portal_server: PortalServer):
    answers = await _round_trip_until_refused(portal_server, 3)  # the default
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    refused = answers[3].json()["error"]
    assert refused["code"] == "plan_change_limit" and refused["limit"] == 3
    assert "3 plan changes" in refused["message"]
    retry = int(answers[3].headers["retry-after"])
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
    assert abs(retry - (midnight - datetime.now(UTC)).total_seconds()) < 30
    sub = await Subscriber.get(username="ann@x")
    assert await PlanChange.filter(subscriber_id=sub.id).count() == 3
    assert await AuditLog.filter(username="ann@x", action="plan.change").count() == 3
    logged = await AuditLog.filter(username="ann@x", action="plan.change_refused").all()
    assert len(logged) == 2
    assert json.loads(logged[0].detail)["reason"] == "plan_change_limit"
    assert sub.plan_id == (await _plan("Fast")).id  # the 4th change did not happen


async def test_the_daily_limit_is_configurable(acme: None, db_url: str, tmp_path: Path):
    server = start_portal(db_url, tmp_path / "state",
                          ISPEDGE_BILLING_PLAN_CHANGES_PER_DAY="1")
    try:
        answers = await _round_trip_until_refused(server, 1)
    finally:
        server.stop()
    assert [r.status_code for r in answers] == [200, 429, 429]
    assert "1 plan change:" in answers[1].json()["error"]["message"]


async def test_openapi_describes_the_signed_quote(db: str, portal_server: PortalServer):
    with portal_server.client() as c:
        spec = c.get("/docs/openapi.json").json()
    change = spec["paths"]["/customer/api/plans/change"]["post"]
    schema = change["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["plan_id", "quote"]
    assert "quoted_at" not in schema["properties"]
    assert {"409", "429"} <= set(change["responses"])
    assert "signed" in change["description"] and change["security"]
    quote = spec["paths"]["/customer/api/plans/quote"]["post"]
    assert quote["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "plan_id"]
