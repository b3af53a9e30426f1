"""Invoices tab: list and PDF, only ever the subscriber's own, read back with pdftotext."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.core import resellers
from portal.store.models import Invoice, Plan, Subscriber
from tests.portal.billing_helpers import bearer, customer, setup_resellers
from tests.support.pdf import pdf_text
from tests.support.portal import PortalServer

ARABIC_NAME = "فاطمة حسن"
ARABIC_COMPANY = "شركة النور"


@pytest.fixture
async def acme(db: str) -> None:
    await setup_resellers(refund=True)
    await resellers.brand("acme", company_name=ARABIC_COMPANY,
                          registration="CR 1010-22 · VAT 300012345600003")
    await customer("ann@x", 5000, full_name=ARABIC_NAME, days_used=18)
    await customer("bob@x", 5000, full_name="Bob Builder")


async def test_invoice_pdf_has_numbers_amounts_and_arabic_names(
        acme: None, portal_server: PortalServer, tmp_path: Path):
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        assert c.post("/customer/api/data/buy", json={"gb": 10}, headers=h).status_code == 200
        listing = c.get("/customer/api/invoices", headers=h).json()["invoices"]
        # The opening balance (an operator credit) has its receipt; the sale its invoice,
        # numbered next.
        assert sorted(d["kind"] for d in listing) == ["invoice", "receipt"]
        inv = next(d for d in listing if d["kind"] == "invoice")
        receipt = next(d for d in listing if d["kind"] == "receipt")
        assert inv["number"].startswith("INV-") and receipt["tax_cents"] == 0
        assert int(inv["number"].rsplit("-", 1)[1]) > int(receipt["number"].rsplit("-", 1)[1])
        assert (inv["total_cents"], inv["subtotal_cents"], inv["tax_cents"]) == (1500, 1351, 149)
        # the English description as before, and (issue 20) its kind, values and text
        assert inv["lines"] == [{"description": "Data top-up — 10 GB @ 1.50",
                                 "amount_cents": 1500, "kind": "data_topup",
                                 "params": {"gb": 10, "price_per_gb_cents": 150,
                                            "currency": "USD"},
                                 "description_text": "Data top-up — 10 GB @ 1.50"}]
        r = c.get(f"/customer/api/invoices/{inv['id']}/pdf", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert inv["number"] in r.headers["content-disposition"]
    text = pdf_text(r.content, tmp_path)
    for expected in (inv["number"], "Tax invoice", ARABIC_NAME, ARABIC_COMPANY,
                     "VAT 300012345600003", "Username: ann@x", "Data top-up — 10 GB @ 1.50",
                     "15.00", "13.51", "1.49", "Tax 11%", "USD", "Prices include tax"):
        assert expected in text, (expected, text)


async def test_plan_change_invoice_and_refund_credit_note(
        acme: None, portal_server: PortalServer, tmp_path: Path):
    fast = await Plan.get(name="Fast", reseller__name="acme")
    basic = await Plan.get(name="Basic", reseller__name="acme")
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        for target in (fast, basic):
            q = c.post("/customer/api/plans/quote", json={"plan_id": target.id}, headers=h).json()
            r = c.post("/customer/api/plans/change", headers=h, json={
                "plan_id": target.id, "quote": q["quote"]})
            assert r.status_code == 200, r.text
        docs = [d for d in c.get("/customer/api/invoices", headers=h).json()["invoices"]
                if d["kind"] != "receipt"]  # the opening credit's receipt
        assert [d["kind"] for d in docs] == ["credit_note", "invoice"]
        seqs = sorted(int(d["number"].rsplit("-", 1)[1]) for d in docs)
        assert seqs[1] == seqs[0] + 1
        texts = {d["kind"]: pdf_text(c.get(f"/customer/api/invoices/{d['id']}/pdf",
                                           headers=h).content, tmp_path) for d in docs}
    upgrade = next(d for d in docs if d["kind"] == "invoice")
    assert "Plan change Basic → Fast, 12 of 30 days" in texts["invoice"]
    assert f"{upgrade['total_cents'] // 100}.{upgrade['total_cents'] % 100:02d}" \
        in texts["invoice"]
    assert "Credit note" in texts["credit_note"]
    assert "Refund: Plan change Fast → Basic" in texts["credit_note"]


async def test_a_subscriber_can_only_fetch_their_own_documents(acme: None,
                                                               portal_server: PortalServer):
    ann, bob = bearer(portal_server, "ann@x"), bearer(portal_server, "bob@x")
    with portal_server.client() as c:
        assert c.post("/customer/api/data/buy", json={"gb": 1}, headers=ann).status_code == 200
        assert c.post("/customer/api/data/buy", json={"gb": 2}, headers=bob).status_code == 200
        ann_sub = await Subscriber.get(username="ann@x")
        ann_inv = await Invoice.get(subscriber_id=ann_sub.id, kind="invoice")
        bob_list = c.get("/customer/api/invoices", headers=bob).json()["invoices"]
        # Bob's own documents only: his sale and his opening credit's receipt.
        assert sorted((d["kind"], d["total_cents"]) for d in bob_list) == [
            ("invoice", 300), ("receipt", 5000)]
        assert c.get(f"/customer/api/invoices/{ann_inv.id}/pdf", headers=bob).status_code == 404
        assert c.get("/customer/api/invoices/999999/pdf", headers=bob).status_code == 404
        assert c.get(f"/customer/api/invoices/{ann_inv.id}/pdf").status_code == 401
        assert c.get(f"/customer/api/invoices/{ann_inv.id}/pdf", headers=ann).status_code == 200
        # The invoice number is not a handle: it does not route anywhere.
        assert c.get(f"/customer/api/invoices/{ann_inv.number}/pdf",
                     headers=ann).status_code == 404


async def test_documents_in_lbp_and_jod_have_their_currencys_digits(
        db: str, portal_server: PortalServer, tmp_path: Path):
    """Issue 19: LBP has no minor unit, JOD three: the wallet's minor units and the PDFs
    say each amount with the currency's own digits (never as cents)."""
    from tests.support import seed

    await seed.reseller_with_plans("beirut", currency="LBP", price_per_gb="٩٠٠٠٠")
    await seed.reseller_with_plans("amman", currency="JOD", price_per_gb="1.250",
                                   allow_self_renewal=True)
    await seed.subscriber("rami@beirut", "pw-123456", reseller="beirut",
                          balance_cents=2_000_000)  # 2,000,000 pounds
    await seed.subscriber("lina@amman", "pw-123456", reseller="amman",
                          balance_cents=10_000)  # 10.000 dinars
    texts: dict[str, str] = {}
    with portal_server.client() as c:
        for username, call in (("rami@beirut", ("/customer/api/data/buy", {"gb": 2})),
                               ("lina@amman", ("/customer/api/renew", {}))):
            h = {"Authorization": f"Bearer {portal_server.login(username, 'pw-123456')}"}
            r = c.post(call[0], json=call[1], headers=h)
            assert r.status_code == 200, r.text
            w = c.get("/customer/api/wallet", headers=h).json()
            texts[username] = "\n".join(
                pdf_text(c.get(f"/customer/api/invoices/{e['document']['id']}/pdf",
                               headers=h).content, tmp_path) for e in w["entries"])
            texts[username + " wallet"] = str([(e["amount_cents"], e["balance_after_cents"])
                                               for e in w["entries"]]) + w["currency"]
    assert texts["rami@beirut wallet"] == "[(-180000, 1820000), (2000000, 2000000)]LBP"
    assert "2 GB @ 90000" in texts["rami@beirut"] and "180000" in texts["rami@beirut"]
    assert "2000000" in texts["rami@beirut"] and "LBP" in texts["rami@beirut"]
    assert "180000.00" not in texts["rami@beirut"] and "1800.00" not in texts["rami@beirut"]
    assert texts["lina@amman wallet"] == "[(-1500, 8500), (10000, 10000)]JOD"
    assert "1.500" in texts["lina@amman"] and "10.000" in texts["lina@amman"]
    assert "JOD" in texts["lina@amman"] and "15.00" not in texts["lina@amman"]
