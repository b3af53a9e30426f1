"""Buy Data against the real portal process: charge, bonus, ledger, journal, invoice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from portal.core import resellers
from portal.core.topups import GB, cycle_bonus_bytes
from portal.store.models import (
    AuditLog,
    ChangeJournal,
    Invoice,
    InvoiceLine,
    Subscriber,
    WalletEntry,
)
from tests.portal.billing_helpers import bearer, counts, customer, setup_resellers
from tests.support.portal import PortalServer


@pytest.fixture
async def acme(db: str) -> None:
    await setup_resellers()
    await customer("ann@x", 5000, full_name="Ann Example")


async def test_buying_data_charges_credits_bonus_and_writes_everything(
        acme: None, portal_server: PortalServer):
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        offer = c.get("/customer/api/data", headers=h).json()
        assert offer["price_per_gb_cents"] == 150 and offer["max_gb"] == 100
        assert offer["balance_cents"] == 5000 and offer["bonus_bytes"] == 0
        r = c.post("/customer/api/data/buy", json={"gb": 10, "amount_cents": 1500}, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["balance_cents"] == 3500 and body["bonus_bytes"] == 10 * GB
        assert body["topup"] == {"id": body["topup"]["id"], "gb": 10, "bytes": 10 * GB,
                                 "amount_cents": 1500}
        # A second purchase adds to the bonus.
        r2 = c.post("/customer/api/data/buy", json={"gb": 3}, headers=h)
        assert r2.status_code == 200 and r2.json()["bonus_bytes"] == 13 * GB
        assert r2.json()["balance_cents"] == 3050
    sub = await Subscriber.get(username="ann@x")
    assert sub.balance_cents == 3050
    assert await cycle_bonus_bytes(sub.id, sub.cycle_start) == 13 * GB
    entries = await WalletEntry.filter(subscriber_id=sub.id, reason="topup").order_by("id")
    assert [e.amount_cents for e in entries] == [-1500, -450]
    # The opening balance was an operator credit: its receipt is not a sale.
    invoices = await Invoice.filter(subscriber_id=sub.id, kind="invoice").order_by("id")
    assert [e.reference for e in entries] == [i.number for i in invoices]
    first = invoices[0]
    assert (first.total_cents, first.subtotal_cents, first.tax_cents) == (1500, 1351, 149)
    assert first.customer_name == "Ann Example" and first.company_name == "Acme Net"
    line = await InvoiceLine.get(invoice_id=first.id)
    assert line.description == "Data top-up — 10 GB @ 1.50" and line.amount_cents == 1500
    journal = await ChangeJournal.filter(username="ann@x", kind="topup").order_by("id")
    assert [json.loads(j.payload)["bonus_bytes"] for j in journal] == [10 * GB, 13 * GB]
    audit = await AuditLog.filter(username="ann@x", action="data.buy").count()
    assert audit == 2


async def test_bonus_bought_last_cycle_expires_at_reset(acme: None,
                                                        portal_server: PortalServer):
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        assert c.post("/customer/api/data/buy", json={"gb": 5}, headers=h).status_code == 200
    sub = await Subscriber.get(username="ann@x")
    renewed = datetime.now(UTC) + timedelta(seconds=1)
    assert await cycle_bonus_bytes(sub.id, renewed) == 0


BAD_GB = [0, -1, -10, 1.5, 10.0, 0.1, 101, 10**12, 2**63, "10", "ten", "", None, True, [],
          {"gb": 1}, "NaN"]


async def test_bad_quantities_are_refused_without_side_effects(acme: None,
                                                                portal_server: PortalServer):
    h = bearer(portal_server, "ann@x")
    before = await counts()
    with portal_server.client() as c:
        for gb in BAD_GB:
            r = c.post("/customer/api/data/buy", json={"gb": gb}, headers=h)
            assert r.status_code == 400, (gb, r.text)
            assert r.json()["error"]["code"] == "invalid_gb"
            assert "1 to 100" in r.json()["error"]["message"]
        missing = c.post("/customer/api/data/buy", json={}, headers=h)
        assert missing.status_code == 400
        not_json = c.post("/customer/api/data/buy", content=b"gb=10",
                          headers={**h, "Content-Type": "application/json"})
        assert not_json.status_code == 400
        form = c.post("/customer/api/data/buy", content=b"gb=10",
                      headers={**h, "Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415
        array = c.post("/customer/api/data/buy", json=[10], headers=h)
        assert array.status_code == 400
        bad_amount = c.post("/customer/api/data/buy", json={"gb": 1, "amount_cents": "1.50"},
                            headers=h)
        assert bad_amount.status_code == 400
        changed = c.post("/customer/api/data/buy", json={"gb": 10, "amount_cents": 1000},
                         headers=h)
        assert changed.status_code == 409 and changed.json()["error"]["code"] == "price_changed"
        assert changed.json()["error"]["amount_cents"] == 1500
    assert await counts() == before
    assert (await Subscriber.get(username="ann@x")).balance_cents == 5000


async def test_insufficient_funds_is_402_with_the_missing_amount(acme: None,
                                                                  portal_server: PortalServer):
    h = bearer(portal_server, "ann@x")
    before = await counts()
    with portal_server.client() as c:
        r = c.post("/customer/api/data/buy", json={"gb": 40}, headers=h)  # 60.00 > 50.00
    assert r.status_code == 402
    err = r.json()["error"]
    assert err["code"] == "insufficient_funds" and "10.00" in err["message"]
    assert err["missing_cents"] == 1000
    assert await counts() == before


async def test_disabled_feature_hides_tab_and_refuses(acme: None, portal_server: PortalServer):
    await resellers.configure("acme", price_per_gb="0")
    h = bearer(portal_server, "ann@x")
    before = await counts()
    with portal_server.client() as c:
        tabs = [t["name"] for t in c.get("/customer/api/me", headers=h).json()["tabs"]]
        assert "data" not in tabs and "invoices" in tabs
        assert c.get("/customer/api/data", headers=h).status_code == 403
        r = c.post("/customer/api/data/buy", json={"gb": 1}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "feature_disabled"
    assert await counts() == before


async def test_expired_subscription_cannot_buy(acme: None, portal_server: PortalServer):
    now = datetime.now(UTC)
    await Subscriber.filter(username="ann@x").update(cycle_start=now - timedelta(days=31),
                                                     expires_at=now - timedelta(minutes=1))
    h = bearer(portal_server, "ann@x")
    before = await counts()
    with portal_server.client() as c:
        r = c.post("/customer/api/data/buy", json={"gb": 1}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "subscription_expired"
    assert await counts() == before


async def test_idempotency_key_replays_and_refuses_a_different_body(
        acme: None, portal_server: PortalServer):
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        first = c.post("/customer/api/data/buy", json={"gb": 2},
                       headers={**h, "Idempotency-Key": "k-1"})
        assert first.status_code == 200
        after_first = await counts()
        again = c.post("/customer/api/data/buy", json={"gb": 2},
                       headers={**h, "Idempotency-Key": "k-1"})
        assert again.status_code == 200 and again.json() == first.json()
        assert again.headers.get("idempotent-replayed") == "true"
        other = c.post("/customer/api/data/buy", json={"gb": 3},
                       headers={**h, "Idempotency-Key": "k-1"})
        assert other.status_code == 422
        assert other.json()["error"]["code"] == "idempotency_key_reused"
        too_long = c.post("/customer/api/data/buy", json={"gb": 3},
                          headers={**h, "Idempotency-Key": "x" * 129})
        assert too_long.status_code == 400
    assert await counts() == after_first
    assert (await Subscriber.get(username="ann@x")).balance_cents == 4700


async def test_a_failed_purchase_does_not_burn_its_idempotency_key(
        acme: None, portal_server: PortalServer):
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        poor = c.post("/customer/api/data/buy", json={"gb": 40},
                      headers={**h, "Idempotency-Key": "k-2"})
        assert poor.status_code == 402
        retry = c.post("/customer/api/data/buy", json={"gb": 4},
                       headers={**h, "Idempotency-Key": "k-2"})
    assert retry.status_code == 200 and retry.json()["balance_cents"] == 4400
