"""Renewal, one rule (docs/BILLING.md "Renewal"), the wallet view and its documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.core import renewal, subscribers, topups
from portal.core.billing import plan_change
from portal.core.billing.tax import split_inclusive
from portal.core.wallet import InsufficientFunds
from portal.errors import Forbidden
from portal.speed import rollover
from portal.store.models import AuditLog, Invoice, Plan, PrepaidCycle, RadReply, Subscriber
from tests.portal.billing_helpers import bearer, customer, ledger_matches_balances, setup_resellers
from tests.support.pdf import pdf_text
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


def test_place_exactly_at_expiry_starts_now():
    """The boundary: at the expiry instant the cycle has ended (the enforcer suspends at
    `expires_at`), so a renewal then starts now, not at the same instant as 'ahead'."""
    p = renewal.place(T0, None, 30 * DAY, T0)
    assert (p.starts_at, p.expires_at, p.ahead) == (T0, T0 + 30 * DAY, False)


async def test_late_renewal_after_the_prepaid_cycle_was_due_starts_it_first(acme: None):
    """Late: the cycle ended an hour ago with the next one prepaid, and the enforcer has
    not got there yet. The renewal starts the prepaid cycle at the old expiry (its days
    are not lost) and goes after it, paid ahead again."""
    sub = await customer("later@x", 10000, days_used=29)
    await renewal.renew(sub.id, datetime.now(UTC))
    old_expiry = sub.expires_at
    late = old_expiry + timedelta(hours=1)
    result, _ = await renewal.renew(sub.id, late)
    after = await Subscriber.get(id=sub.id)
    assert (after.cycle_start, after.expires_at) == (old_expiry, old_expiry + 30 * DAY)
    assert result["renewal"]["next_cycle_paid"] is True
    assert result["renewal"]["starts_at"] == (old_expiry + 30 * DAY).isoformat()
    assert await renewal.next_cycle(sub.id) == {
        "starts_at": (old_expiry + 30 * DAY).isoformat(),
        "paid_until": (old_expiry + 60 * DAY).isoformat()}
    assert after.balance_cents == 10000 - 2 * await _price(sub)
    # The enforcer, when it comes, finds nothing left to start.
    assert await rollover.roll_over_due(late) == []
    await ledger_matches_balances()


async def test_renewal_with_bought_data_left_keeps_it_until_the_paid_expiry(acme: None):
    """Two early renewals in a row with bought data left: the running cycle, its usage
    window and its bonus stay; the second prepaid cycle goes after the first."""
    sub = await customer("stack@x", 20000, days_used=10)
    now = datetime.now(UTC)
    await topups.buy_data(sub.id, 3, None, now)
    first, _ = await renewal.renew(sub.id, now)
    second, _ = await renewal.renew(sub.id, now)
    after = await Subscriber.get(id=sub.id)
    assert (after.cycle_start, after.expires_at) == (sub.cycle_start, sub.expires_at)
    assert await topups.cycle_bonus_bytes(sub.id, after.cycle_start) == 3 * 10**9
    assert first["renewal"]["starts_at"] == sub.expires_at.isoformat()
    assert second["renewal"]["starts_at"] == (sub.expires_at + 30 * DAY).isoformat()
    assert (await renewal.next_cycle(sub.id))["paid_until"] == (
        sub.expires_at + 60 * DAY).isoformat()


async def test_wallet_shows_plan_changes_and_a_cash_payment_with_their_documents(
        acme: None, portal_server: PortalServer, tmp_path: Path):
    """Every movement kind with its document: the credit's and the cash payment's
    receipts carry no tax; the sales' invoices and the refund's credit note carry it,
    so tax is counted once, on what was sold."""
    from portal.core import resellers

    await resellers.configure("acme", allow_downgrade_refund=True)
    sub = await customer("mix@x", 0, days_used=18)
    await subscribers.credit("mix@x", 5000, "cash 1")
    fast = await Plan.get(name="Fast", reseller__name="acme")
    basic = await Plan.get(name="Basic", reseller__name="acme")
    h = bearer(portal_server, "mix@x")
    with portal_server.client() as c:
        for target in (fast, basic):
            q = c.post("/customer/api/plans/quote", json={"plan_id": target.id},
                       headers=h).json()
            r = c.post("/customer/api/plans/change", headers=h,
                       json={"plan_id": target.id, "quote": q["quote"]})
            assert r.status_code == 200, r.text
        await renewal.renew(sub.id, datetime.now(UTC), paid_by="cash", reference="R-9")
        w = c.get("/customer/api/wallet", headers=h).json()
        texts = {e["kind"]: pdf_text(c.get(f"/customer/api/invoices/{e['document']['id']}"
                                           "/pdf", headers=h).content, tmp_path)
                 for e in w["entries"]}
    entries = w["entries"]
    assert [e["kind"] for e in entries] == [
        "renewal", "payment", "plan_refund", "plan_change", "credit"]
    assert [e["label"] for e in entries] == [
        "renewal", "payment", "plan-change refund", "plan-change charge", "operator credit"]
    assert [e["document"]["kind"] for e in entries] == [
        "invoice", "receipt", "credit_note", "invoice", "receipt"]
    price = await _price(sub)
    charge, refund = -entries[3]["amount_cents"], entries[2]["amount_cents"]
    assert 0 < refund <= charge and [entries[0]["amount_cents"], entries[1]["amount_cents"]] == [
        -price, price]
    running = 0
    for e in reversed(entries):  # each row's balance after, oldest first
        running += e["amount_cents"]
        assert e["balance_after_cents"] == running
        assert datetime.fromisoformat(e["created_at"]).tzinfo is not None
    assert running == w["balance_cents"] == 5000 - charge + refund
    docs = {e["kind"]: await Invoice.get(id=e["document"]["id"]) for e in entries}
    for kind in ("credit", "payment"):
        assert docs[kind].kind == "receipt" and docs[kind].tax_cents == 0
        assert "Receipt" in texts[kind] and "Tax" not in texts[kind], texts[kind]
    for kind in ("renewal", "plan_change", "plan_refund"):
        d = docs[kind]
        assert d.tax_cents == split_inclusive(d.total_cents, 1100)[1] > 0
        assert d.subtotal_cents + d.tax_cents == d.total_cents
    assert "Tax invoice" in texts["renewal"] and "Renewal — Basic" in texts["renewal"]
    assert "Credit note" in texts["plan_refund"] and "Tax invoice" in texts["plan_change"]
    # Tax once: all the subscriber's documents together (receipts included) state the tax
    # of what was sold, less the refund's, and nothing on the money paid in.
    stated = sum(-d.tax_cents if d.kind == "credit_note" else d.tax_cents
                 for d in docs.values())
    assert stated == sum(split_inclusive(t, 1100)[1] for t in (price, charge)) - \
        split_inclusive(refund, 1100)[1]
    await ledger_matches_balances()


async def test_self_renewal_is_off_by_default_and_says_how_to_pay(
        acme: None, portal_server: PortalServer):
    from portal.core import resellers

    await resellers.configure("acme", payment_instructions="Pay at the shop",
                              payment_contact="+961 1 234567")
    sub = await customer("nope@x", 10000)
    h = bearer(portal_server, "nope@x")
    with portal_server.client() as c:
        w = c.get("/customer/api/wallet", headers=h).json()
        r = c.post("/customer/api/renew", json={}, headers={**h, "Idempotency-Key": "n1"})
    assert w["renewal"]["self_service"] is False
    assert w["payment"] == {"instructions": "Pay at the shop", "contact": "+961 1 234567"}
    assert r.status_code == 403 and r.json()["error"]["code"] == "feature_disabled", r.text
    assert (await Subscriber.get(id=sub.id)).balance_cents == 10000
    assert await PrepaidCycle.filter(subscriber_id=sub.id).count() == 0


async def test_every_shortfall_carries_the_resellers_payment_instructions(
        acme: None, portal_server: PortalServer):
    """Buy Data, Change Plan and Renew now: the offer carries how to pay, and each 402
    says how much is missing and how to pay, in the reseller's words."""
    from portal.core import resellers

    await resellers.configure("acme", allow_self_renewal=True,
                              payment_instructions="Pay at the shop",
                              payment_contact="+961 1 234567")
    await customer("short@x", 100, days_used=1)
    fast = await Plan.get(name="Fast", reseller__name="acme")
    h = bearer(portal_server, "short@x")
    pay = {"instructions": "Pay at the shop", "contact": "+961 1 234567"}
    with portal_server.client() as c:
        assert c.get("/customer/api/data", headers=h).json()["payment"] == pay
        assert c.get("/customer/api/plans", headers=h).json()["payment"] == pay
        q = c.post("/customer/api/plans/quote", json={"plan_id": fast.id}, headers=h).json()
        answers = [c.post("/customer/api/data/buy", json={"gb": 5}, headers=h),
                   c.post("/customer/api/plans/change", headers=h,
                          json={"plan_id": fast.id, "quote": q["quote"]}),
                   c.post("/customer/api/renew", json={}, headers=h)]
    for r in answers:
        err = r.json()["error"]
        assert (r.status_code, err["code"]) == (402, "insufficient_funds"), r.text
        assert (err["payment_instructions"], err["payment_contact"]) == (
            pay["instructions"], pay["contact"])
        assert "more is needed" in err["message"] and err["missing_cents"] > 0


async def test_no_plan_change_while_the_next_cycle_is_prepaid(
        acme: None, portal_server: PortalServer):
    """Regression: renewed early on Basic (15.00 for the next cycle), an upgrade was priced
    for the rest of this cycle only and the prepaid cycle then ran on Fast: a cycle of
    Fast for Basic's price. A prepaid cycle is for the plan it was paid on, so the plan
    stays until it has started; nothing is charged or switched."""
    sub = await customer("prepaid@x", 10000, days_used=20)
    await renewal.renew(sub.id, datetime.now(UTC))
    fast = await Plan.get(name="Fast", reseller__name="acme")
    h = bearer(portal_server, "prepaid@x")
    with portal_server.client() as c:
        quote = c.post("/customer/api/plans/quote", json={"plan_id": fast.id}, headers=h)
        change = c.post("/customer/api/plans/change", headers=h,
                        json={"plan_id": fast.id, "quote": "x"})
    for r in (quote, change):
        assert r.status_code == 409 and r.json()["error"]["code"] == "next_cycle_paid", r.text
    after = await Subscriber.get(id=sub.id)
    assert after.plan_id == sub.plan_id
    assert after.balance_cents == 10000 - await _price(sub)
    # Once the prepaid cycle has started, plans change again.
    started = sub.expires_at + timedelta(seconds=1)
    assert await rollover.roll_over_due(started) == ["prepaid@x"]
    q = await plan_change.quote_plan_change(await Subscriber.get(id=sub.id), fast.id, started)
    assert q.amount_cents == 1500  # the whole new cycle's difference: it has just begun


async def test_data_bought_after_a_paid_expiry_goes_to_the_prepaid_cycle(acme: None):
    """The enforcer has not yet started the prepaid cycle when the subscriber buys data
    a minute after the expiry: the purchase starts it (not "your subscription has
    expired") and the data counts in the new cycle."""
    sub = await customer("after@x", 10000, days_used=29)
    await renewal.renew(sub.id, datetime.now(UTC))
    late = sub.expires_at + timedelta(minutes=1)
    result, _ = await topups.buy_data(sub.id, 2, None, late)
    after = await Subscriber.get(id=sub.id)
    assert after.cycle_start == sub.expires_at
    assert result["bonus_bytes"] == 2 * 10**9
    assert await topups.cycle_bonus_bytes(sub.id, after.cycle_start) == 2 * 10**9


async def test_dashboard_after_an_early_operator_renewal_is_unchanged(
        acme: None, portal_server: PortalServer):
    """Regression, as reported: six days early, the dashboard said "Cycle started" on a
    future date with 0 GB used, and the 4 GB bought were gone. Its cycle (start, usage,
    bought data) and expiry read the same before and after the renewal."""
    from tests.enforcer.helpers import use_bytes

    sub = await customer("dash@x", 10000, days_used=24)
    await use_bytes("dash@x", 3 * 10**9)
    await topups.buy_data(sub.id, 4, None, datetime.now(UTC))
    h = bearer(portal_server, "dash@x")
    with portal_server.client() as c:
        before = c.get("/customer/api/dashboard", headers=h).json()
        await renewal.renew(sub.id, datetime.now(UTC))  # the operator's, from the wallet
        after = c.get("/customer/api/dashboard", headers=h).json()
    assert after["cycle"] == before["cycle"]
    assert after["cycle"]["bonus_bytes"] == 4 * 10**9
    assert after["cycle"]["bytes_out"] == 3 * 10**9
    assert datetime.fromisoformat(after["cycle"]["start"]) <= datetime.now(UTC)
    assert after["expires_at"] == before["expires_at"] and after["fup"] == before["fup"]
    assert after["balance_cents"] == before["balance_cents"] - await _price(sub)
