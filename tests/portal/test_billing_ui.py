"""Change Plan, Buy Data and Invoices in headless Chromium at a phone viewport."""

from __future__ import annotations

import asyncio

import pytest

from portal.store.models import Invoice, Plan, Subscriber
from tests.portal.billing_helpers import PASSWORD, customer, setup_resellers
from tests.support.browser import PHONE, browser, login, no_horizontal_scroll, screenshot
from tests.support.portal import PortalServer


@pytest.fixture
async def acme(db: str) -> None:
    await setup_resellers()
    await customer("ann@x", 5000, full_name="Ann Example", days_used=18)


def _run_ui(server: PortalServer, fast_id: int) -> dict[str, str]:
    seen: dict[str, str] = {}
    with browser() as b:
        page = b.new_page(viewport=PHONE)
        login(page, server.url, "ann@x", PASSWORD)
        nav = page.locator("#tabs .tab")
        nav.first.wait_for()
        labels = nav.all_text_contents()
        assert any("Change Plan" in t for t in labels) and any("Buy Data" in t for t in labels)
        assert any("Invoices" in t for t in labels)

        # Buy Data: price, total, balance after; confirm; new state.
        page.goto(server.url + "/customer/data")
        page.wait_for_selector("#price-per-gb:has-text('1.50')")
        page.fill("#gb", "10")
        assert "15.00" in page.text_content("#total")
        assert "35.00" in page.text_content("#balance-after")
        page.fill("#gb", "2.5")
        assert page.is_disabled("#buy-button")
        page.fill("#gb", "10")
        page.click("#buy-button")
        page.wait_for_selector("#confirm:not([hidden])")
        seen["data_confirm"] = page.text_content("#confirm-text") or ""
        page.click("#confirm-button")
        page.wait_for_selector("#done:not([hidden])")
        seen["data_done"] = page.text_content("#done-text") or ""
        page.wait_for_selector("#balance:has-text('35.00')")
        assert no_horizontal_scroll(page)
        screenshot(page, "billing-data-phone")

        # Change Plan: list with speed, quota, price; exact prorated amount; confirm.
        page.goto(server.url + "/customer/plans")
        card = page.locator(f"article.plan[data-plan-id='{fast_id}']")
        card.wait_for()
        seen["fast_card"] = card.text_content() or ""
        card.locator("button").click()
        page.wait_for_selector("#confirm:not([hidden])")
        seen["plan_amount"] = page.text_content("#confirm-amount") or ""
        seen["plan_description"] = page.text_content("#confirm-description") or ""
        assert no_horizontal_scroll(page)
        screenshot(page, "billing-plans-confirm-phone")
        page.click("#confirm-button")
        page.wait_for_selector("#done:not([hidden])")
        seen["plan_done"] = page.text_content("#done-text") or ""
        page.wait_for_selector("#current-plan:text-is('Fast')")
        assert no_horizontal_scroll(page)

        # Invoices: both documents listed; the PDF downloads.
        page.goto(server.url + "/customer/invoices")
        page.locator("#invoice-list li").nth(1).wait_for()
        seen["invoices"] = page.text_content("#invoice-list") or ""
        with page.expect_download() as info:
            page.locator("#invoice-list li button").first.click()
        seen["download"] = info.value.suggested_filename
        assert no_horizontal_scroll(page)
        screenshot(page, "billing-invoices-phone")
    return seen


async def test_buy_data_change_plan_and_invoices_on_a_phone(acme: None,
                                                            portal_server: PortalServer):
    fast = await Plan.get(name="Fast", reseller__name="acme")
    seen = await asyncio.to_thread(_run_ui, portal_server, fast.id)
    assert "10 GB" in seen["data_confirm"] and "15.00" in seen["data_confirm"]
    assert "35.00" in seen["data_confirm"]
    assert "10 GB added" in seen["data_done"] and "INV-" in seen["data_done"]
    assert "50 Mbps" in seen["fast_card"] and "30.00" in seen["fast_card"]
    assert "Unlimited data" in seen["fast_card"]
    assert seen["plan_description"] == "Plan change Basic → Fast, 12 of 30 days"
    sub = await Subscriber.get(username="ann@x")
    charged = 3500 - sub.balance_cents
    assert 595 <= charged <= 600
    # Charged at the server's price when it committed, a moment after the preview:
    # the previewed amount or, if a cent boundary passed meanwhile, a cent less.
    previewed = [f"{c // 100}.{c % 100:02d}" for c in (charged, charged + 1)]
    assert any(p in seen["plan_amount"] for p in previewed), seen["plan_amount"]
    assert f"Charged {charged // 100}.{charged % 100:02d}" in seen["plan_done"].replace("$", "")
    assert "You are now on Fast" in seen["plan_done"]
    # The two sales' invoices (the opening credit's receipt is listed too).
    numbers = [i.number for i in await Invoice.filter(kind="invoice").order_by("id")]
    assert len(numbers) == 2 and all(n in seen["invoices"] for n in numbers)
    assert seen["download"] == f"{numbers[1]}.pdf"
