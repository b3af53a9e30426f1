"""Renewal, one rule (docs/BILLING.md "Renewal"), the wallet view and its documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.core import renewal, subscribers, topups
from portal.core.wallet import InsufficientFunds
from portal.errors import Forbidden
from portal.speed import rollover
from portal.store.models import AuditLog, Invoice, Plan, PrepaidCycle, RadReply, Subscriber
from tests.portal.billing_helpers import bearer, customer, ledger_matches_balances, setup_resellers
from tests.support.portal import PortalServer

T0 = datetime(2026, 8, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def test_place_early_goes_after_everything_paid():
    p = renewal.place(T0 + 6 * DAY, None, 30 * DAY, T0)
    assert (p.starts_at, p.expires_at, p.ahead) == (T0 + 6 * DAY, T0 + 36 * DAY, True)
    p = renewal.place(T0 + 6 * DAY, T0 + 36 * DAY, 30 * DAY, T0)
    assert (p.starts_at, p.expires_at) == (T0 + 36 * DAY, T0 + 66 * DAY)


def test_place_after_expiry_starts_now():
    p = renewal.place(T0 - DAY, None, 30 * DAY, T0)
    assert (p.starts_at, p.expires_at, p.ahead) == (T0, T0 + 30 * DAY, False)


def test_roll_starts_each_due_cycle_at_its_own_start():
    spans = [(T0, T0 + 30 * DAY), (T0 + 30 * DAY, T0 + 60 * DAY)]
    assert rollover.roll(T0 - 30 * DAY, T0, spans, T0 - DAY) == (T0 - 30 * DAY, T0, 0)
    # The enforcer an hour late: the cycle still starts at the old expiry.
    assert rollover.roll(T0 - 30 * DAY, T0, spans, T0 + timedelta(hours=1)) == (
        T0, T0 + 30 * DAY, 1)
    assert rollover.roll(T0 - 30 * DAY, T0, spans, T0 + 31 * DAY) == (
        T0 + 30 * DAY, T0 + 60 * DAY, 2)


@pytest.fixture
async def acme(db: str) -> None:
    await setup_resellers()


async def _price(sub: Subscriber) -> int:
    return (await Plan.get(id=sub.plan_id)).price_cents


async def test_early_renewal_keeps_the_cycle_and_its_bought_data(acme: None):
    """Regression: six days early gave a future 'Cycle started' and lost the bought GB."""
    sub = await customer("early@x", 10000, days_used=24)
    now = datetime.now(UTC)
    await topups.buy_data(sub.id, 4, None, now)
    bonus = await topups.cycle_bonus_bytes(sub.id, sub.cycle_start)
    assert bonus == 4 * 10**9
    result, _ = await renewal.renew(sub.id, now)
    after = await Subscriber.get(id=sub.id)
    assert after.cycle_start == sub.cycle_start and after.expires_at == sub.expires_at
    assert after.cycle_start <= now  # never a cycle starting in the future
    assert await topups.cycle_bonus_bytes(sub.id, after.cycle_start) == bonus
    assert result["renewal"]["next_cycle_paid"] is True
    assert result["renewal"]["starts_at"] == sub.expires_at.isoformat()
    assert await renewal.next_cycle(sub.id) == {
        "starts_at": sub.expires_at.isoformat(),
        "paid_until": (sub.expires_at + timedelta(days=30)).isoformat()}
    assert after.balance_cents == 10000 - 4 * 150 - await _price(sub)
    invoice = await Invoice.get(number=result["invoice"]["number"])
    assert invoice.kind == "invoice" and invoice.tax_cents > 0
    await ledger_matches_balances()


async def test_at_expiry_the_enforcer_step_rolls_over_without_suspending(acme: None):
    sub = await customer("roll@x", 10000, days_used=29)
    await renewal.renew(sub.id, datetime.now(UTC))
    old_expiry = sub.expires_at
    late = old_expiry + timedelta(minutes=5)
    assert await rollover.roll_over_due(late) == ["roll@x"]
    after = await Subscriber.get(id=sub.id)
    assert after.cycle_start == old_expiry  # paid days never dropped
    assert after.expires_at == old_expiry + timedelta(days=30)
    reply = await RadReply.get(username="roll@x", attribute="Mikrotik-Rate-Limit")
    assert reply.value != "256k/256k"
    assert await PrepaidCycle.filter(subscriber_id=sub.id, started_at=None).count() == 0
    assert await rollover.roll_over_due(late) == []


async def test_renewal_after_expiry_starts_now(acme: None):
    sub = await customer("late@x", 10000)
    now = datetime.now(UTC)
    await Subscriber.filter(id=sub.id).update(cycle_start=now - timedelta(days=40),
                                              expires_at=now - timedelta(days=10))
    await RadReply.filter(username="late@x").update(value="256k/256k")
    result, _ = await renewal.renew(sub.id, now)
    after = await Subscriber.get(id=sub.id)
    assert (after.cycle_start, after.expires_at) == (now, now + timedelta(days=30))
    assert result["renewal"]["next_cycle_paid"] is False
    assert (await RadReply.get(username="late@x")).value == "5000k/10000k"


async def test_short_wallet_refuses_with_the_resellers_payment_instructions(acme: None):
    from portal.core import resellers

    await resellers.configure("acme", payment_instructions="Pay at the shop",
                              payment_contact="+961 1 234567")
    sub = await customer("poor@x", 100)
    with pytest.raises(InsufficientFunds) as short:
        await renewal.renew(sub.id, datetime.now(UTC))
    assert short.value.extra["payment_instructions"] == "Pay at the shop"
    assert short.value.extra["payment_contact"] == "+961 1 234567"
    assert await PrepaidCycle.filter(subscriber_id=sub.id).count() == 0


async def test_cash_payment_gets_a_receipt_and_the_sale_an_invoice(acme: None):
    sub = await customer("cash@x", 0)
    result, _ = await renewal.renew(sub.id, datetime.now(UTC), paid_by="cash",
                                    reference="R-77")
    receipt = await Invoice.get(number=result["receipt"]["number"])
    invoice = await Invoice.get(number=result["invoice"]["number"])
    assert receipt.kind == "receipt" and receipt.tax_cents == 0
    assert invoice.tax_cents > 0  # tax once: on the sale only
    assert receipt.total_cents == invoice.total_cents == await _price(sub)
    assert (await Subscriber.get(id=sub.id)).balance_cents == 0
    await ledger_matches_balances()


async def test_free_renewal_is_audited_with_its_reason(acme: None):
    sub = await customer("gift@x", 0)
    await renewal.renew(sub.id, datetime.now(UTC), paid_by="free", reference="outage",
                        days=3)
    row = await AuditLog.get(username="gift@x", action="subscriber.renew")
    assert "outage" in row.detail and "free" in row.detail
    with pytest.raises(Exception, match="reason"):
        await renewal.renew(sub.id, datetime.now(UTC), paid_by="free")


async def test_self_service_only_when_the_reseller_allows_it(acme: None):
    sub = await customer("self@x", 10000)
    with pytest.raises(Forbidden):
        await renewal.renew(sub.id, datetime.now(UTC), self_service=True)


async def test_wallet_api_lists_every_movement_with_its_document(
        acme: None, portal_server: PortalServer):
    from portal.core import resellers

    await resellers.configure("acme", allow_self_renewal=True)
    sub = await customer("w@x", 0)
    await subscribers.credit("w@x", 9000, "cash 12")
    h = bearer(portal_server, "w@x")
    with portal_server.client() as c:
        assert c.post("/customer/api/data/buy", json={"gb": 2}, headers=h).status_code == 200
        r1 = c.post("/customer/api/renew", json={}, headers={**h, "Idempotency-Key": "k1"})
        assert r1.status_code == 200, r1.text
        r2 = c.post("/customer/api/renew", json={}, headers={**h, "Idempotency-Key": "k1"})
        assert r2.headers.get("Idempotent-Replayed") == "true"
        w = c.get("/customer/api/wallet", headers=h).json()
        page = c.get("/customer/api/wallet?limit=2", headers=h).json()
        rest = c.get(f"/customer/api/wallet?before={page['next_before']}", headers=h).json()
        docs = {e["kind"]: c.get(f"/customer/api/invoices/{e['document']['id']}/pdf",
                                 headers=h) for e in w["entries"]}
        other = await customer("o@x", 0, reseller="other")
        await subscribers.credit("o@x", 500, "x")
        theirs = (await Invoice.get(subscriber_id=other.id)).id
        foreign = c.get(f"/customer/api/invoices/{theirs}/pdf", headers=h)
    price = await _price(sub)
    assert [e["kind"] for e in w["entries"]] == ["renewal", "topup", "credit"]
    assert [e["amount_cents"] for e in w["entries"]] == [-price, -300, 9000]
    assert w["entries"][0]["balance_after_cents"] == 9000 - 300 - price == w["balance_cents"]
    assert [e["document"]["kind"] for e in w["entries"]] == ["invoice", "invoice", "receipt"]
    assert w["next_cycle"]["starts_at"] == sub.expires_at.isoformat()
    assert len(page["entries"]) == 2 and [e["kind"] for e in rest["entries"]] == ["credit"]
    assert all(r.status_code == 200 and r.body.startswith(b"%PDF") if hasattr(r, "body")
               else r.content.startswith(b"%PDF") for r in docs.values())
    assert foreign.status_code == 404


async def test_renewal_is_never_seen_or_replayed_across_resellers(
        acme: None, portal_server: PortalServer):
    """Cross-tenant: a subscriber of another reseller cannot see, download or replay a
    renewal (404 for the document, their own result for the same Idempotency-Key), and
    an operator's token (of that other reseller) is no customer token."""
    from portal.core import operators, resellers

    await resellers.configure("acme", allow_self_renewal=True)
    await resellers.configure("other", allow_self_renewal=True)
    a = await customer("a@acme", 10000)
    b = await customer("b@other", 10000, reseller="other")
    await operators.add("op-other", "operator-pw-123", reseller="other")
    ha, hb = bearer(portal_server, "a@acme"), bearer(portal_server, "b@other")
    with portal_server.client() as c:
        ra = c.post("/customer/api/renew", json={}, headers={**ha, "Idempotency-Key": "same"})
        assert ra.status_code == 200, ra.text
        invoice_a = ra.json()["invoice"]
        entry_a = c.get("/customer/api/wallet", headers=ha).json()["entries"][0]["id"]
        rb = c.post("/customer/api/renew", json={}, headers={**hb, "Idempotency-Key": "same"})
        pdf = c.get(f"/customer/api/invoices/{invoice_a['id']}/pdf", headers=hb)
        wallet_b = c.get(f"/customer/api/wallet?before={entry_a + 1}", headers=hb).json()
        invoices_b = c.get("/customer/api/invoices", headers=hb).json()["invoices"]
        # Paging arguments typed with Arabic-Indic digits; a superscript is a 400, not a 500.
        arabic = c.get("/customer/api/wallet", params={"limit": "١"}, headers=ha)
        superscript = c.get("/customer/api/wallet", params={"limit": "²"}, headers=ha)
        op = c.post("/operator/api/login", json={"username": "op-other",
                                                 "password": "operator-pw-123"})
        assert op.status_code == 200, op.text
        as_operator = c.post("/customer/api/renew", json={}, headers={
            "Authorization": f"Bearer {op.json()['token']}", "Idempotency-Key": "other"})
    assert rb.status_code == 200 and rb.headers.get("Idempotent-Replayed") is None
    assert rb.json()["invoice"]["id"] != invoice_a["id"]  # numbers are per reseller
    assert rb.json()["balance_cents"] == 10000 - await _price(b)
    assert pdf.status_code == 404
    assert all(e["id"] != entry_a for e in wallet_b["entries"])
    assert invoice_a["id"] not in [i["id"] for i in invoices_b]
    assert as_operator.status_code == 401
    assert arabic.status_code == 200 and len(arabic.json()["entries"]) == 1
    assert superscript.status_code == 400
    assert superscript.json()["error"]["code"] == "invalid_limit"
    assert (await Subscriber.get(id=a.id)).balance_cents == 10000 - await _price(a)
    assert await PrepaidCycle.filter(subscriber_id=a.id).count() == 1
    await ledger_matches_balances()
