"""Issue 19 in Chromium at 360 px: the wallet with every kind of money movement and its
document, how to pay shown where each shortfall is, and renewal left to the operator
(the reseller's default).

One subscriber of a reseller that sells data, allows plan changes with refunds and
has not turned self-renewal on: short of money in Buy Data (an amount typed with
Arabic-Indic digits), in Change Plan and for a renewal, each time shown with the
reseller's way to pay; then credited by the operator, they change plan up and down,
the operator renews against a cash payment, and the Invoices tab lists every movement
with its date, amount, balance after and document, the credit note and the cash
receipt read back from their PDFs with pdftotext.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portal.core import renewal, subscribers
from portal.store.models import Plan, Subscriber, WalletEntry
from tests.support import seed
from tests.support.axe import axe_path, serious_violations
from tests.support.browser import PHONE, browser, login, no_horizontal_scroll, screenshot
from tests.support.pdf import text_of_file
from tests.support.portal import PortalServer

USER, PASSWORD = "rana@acme.net", "rana-pass"
HOW = "Pay at the Acme shop, Main St."
MONEY = re.compile(r"\$([0-9]+\.[0-9]{2})")
AFTER = re.compile(r"balance after \$([0-9]+\.[0-9]{2})")


def _cents(text: str) -> int:
    return int(text.replace(".", ""))
CONTACT = "+961 1 234567"


@pytest.fixture
async def rana(db: str) -> None:
    await seed.reseller_with_plans("acme", allow_plan_change=True, allow_downgrade_refund=True,
                                   price_per_gb="1.50", payment_instructions=HOW,
                                   payment_contact=CONTACT)
    await seed.subscriber(USER, PASSWORD, balance_cents=400)
    # 20 of 30 days used: Basic (15.00) -> Fast (30.00) costs 5.00 for the rest.
    start = datetime.now(UTC) - timedelta(days=20)
    await Subscriber.filter(username=USER).update(cycle_start=start,
                                                  expires_at=start + timedelta(days=30))


def _pdf(page: Any, selector: str, tmp: Path) -> str:
    with page.expect_download() as got:
        page.locator(selector).click()
    path = tmp / got.value.suggested_filename
    got.value.save_as(str(path))
    return text_of_file(path)


def _payment_shown(page: Any, box: str) -> None:
    page.wait_for_selector(f"#{box}:not([hidden])")
    assert page.locator(f"#{box} .payment-instructions").inner_text() == HOW
    assert CONTACT in page.locator(f"#{box}").inner_text()


def _walk(server: PortalServer, fast_id: int, basic_id: int, tmp: Path,
          run: Any) -> dict[str, Any]:
    axe_path()
    seen: dict[str, Any] = {}
    problems: list[str] = []
    with browser() as b:
        # bypass_csp only so the test can inject axe-core; the portal's CSP is unchanged
        page = b.new_context(viewport=PHONE, timezone_id="UTC", bypass_csp=True).new_page()
        page.on("pageerror", lambda e: problems.append(f"pageerror {e}"))
        login(page, server.url, USER, PASSWORD)

        # Renewal is the operator's: no button, how to pay instead.
        page.goto(server.url + "/customer/invoices")
        page.wait_for_selector("#wallet-list li[data-kind='credit']")
        assert page.locator("#renew-by-operator").is_visible()
        assert page.locator("#renew-offer").is_hidden()
        _payment_shown(page, "payment")

        # Buy Data: 3 GB typed on an Arabic keyboard is 4.50, 0.50 more than held.
        page.goto(server.url + "/customer/data")
        page.wait_for_selector("#price-per-gb:has-text('1.50')")
        page.fill("#gb", "")
        page.locator("#gb").press_sequentially("٣")
        page.wait_for_selector("#buy-error:has-text('0.50')")
        assert "more is needed" in page.locator("#buy-error").inner_text()
        assert "4.50" in page.locator("#total").inner_text()
        assert page.is_disabled("#buy-button")
        _payment_shown(page, "payment")
        screenshot(page, "wallet-buy-data-short-360")
        found = serious_violations(page)
        assert not found, found
        page.fill("#gb", "۲")  # Persian 2: 3.00, affordable: no payment box
        page.wait_for_selector("#payment", state="hidden")
        page.click("#buy-button")
        page.wait_for_selector("#confirm:not([hidden])")
        page.click("#confirm-button")
        page.wait_for_selector("#done:not([hidden])")
        page.wait_for_selector("#balance:has-text('1.00')")

        # Change Plan: Fast costs 5.00 for the rest of the cycle, 4.00 more than held.
        page.goto(server.url + "/customer/plans")
        page.locator(f"article.plan[data-plan-id='{fast_id}'] button").click()
        page.wait_for_selector("#confirm:not([hidden])")
        page.wait_for_selector("#confirm-error:not([hidden])")
        seen["plan_short"] = page.locator("#confirm-error").inner_text()
        assert page.is_disabled("#confirm-button")
        _payment_shown(page, "confirm-payment")
        assert no_horizontal_scroll(page)
        screenshot(page, "wallet-change-plan-short-360")
        found = serious_violations(page)
        assert not found, found

        # The operator credits 20.00; up to Fast and back (refunded), then renews
        # against a cash payment.
        run(subscribers.credit(USER, 2000, "cash at the shop"))
        page.goto(server.url + "/customer/plans")
        for plan_id in (fast_id, basic_id):
            page.locator(f"article.plan[data-plan-id='{plan_id}'] button").click()
            page.wait_for_selector("#confirm:not([hidden])")
            assert page.locator("#confirm-payment").is_hidden()
            page.wait_for_function("!document.querySelector('#confirm-button').disabled")
            page.click("#confirm-button")
            page.wait_for_selector("#done:not([hidden])")
            page.wait_for_selector(f"article.plan.current[data-plan-id='{plan_id}']")
        run(renewal.renew_username(USER, datetime.now(UTC), paid_by="cash",
                                   reference="R-1042"))

        # The wallet: every movement, newest first, with date, amount, balance after
        # and its document.
        page.goto(server.url + "/customer/invoices")
        page.wait_for_selector("#wallet-list li[data-kind='renewal']")
        items = page.locator("#wallet-list li")
        seen["kinds"] = items.evaluate_all("els => els.map(e => e.dataset.kind)")
        seen["rows"] = items.all_inner_texts()
        seen["next_cycle"] = page.locator("#next-cycle").inner_text()
        seen["refund_pdf"] = _pdf(page, "#wallet-list li[data-kind='plan_refund'] button", tmp)
        seen["receipt_pdf"] = _pdf(page, "#wallet-list li[data-kind='payment'] button", tmp)
        assert no_horizontal_scroll(page)
        screenshot(page, "wallet-every-movement-360")
    assert not problems, problems
    return seen


async def test_wallet_every_movement_and_how_to_pay_where_money_is_short(
        rana: None, portal_server: PortalServer, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        # The operator's side, on this test's loop (idle while the browser thread runs).
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    fast = await Plan.get(name="Fast", reseller__name="acme")
    basic = await Plan.get(name="Basic", reseller__name="acme")
    seen = await asyncio.to_thread(_walk, portal_server, fast.id, basic.id, tmp_path, run)
    assert "4.00" in seen["plan_short"] and "more is needed" in seen["plan_short"]
    assert seen["kinds"] == ["renewal", "payment", "plan_refund", "plan_change", "credit",
                             "topup", "credit"]
    # Each row: its kind, its date, the signed amount and the balance after it, which
    # chain from the first credit to the balance now.
    entries = await WalletEntry.filter(subscriber__username=USER).order_by("-id")
    running = 0
    for row, entry in reversed(list(zip(seen["rows"], entries, strict=True))):
        lines = row.split("\n")
        at = entry.created_at.astimezone(UTC)
        assert lines[1] == f"{at.month}/{at.day}/{at.year}", row
        amount = MONEY.search(lines[2])
        after = AFTER.search(row)
        assert amount and after, row
        running += (-1 if lines[2].startswith("−") else 1) * _cents(amount.group(1))
        assert _cents(after.group(1)) == running, (row, running)
    rows = dict(zip(seen["kinds"][:5], seen["rows"][:5], strict=True))
    assert "Renewal" in rows["renewal"] and "−" in rows["renewal"] and "15.00" in rows["renewal"]
    assert "Payment" in rows["payment"] and "+" in rows["payment"]
    assert "Receipt" in rows["payment"] and "Receipt" in rows["credit"]
    assert "Credit note" in rows["plan_refund"] and "Invoice" in rows["plan_change"]
    topup = seen["rows"][5]
    assert "Data purchase" in topup and "3.00" in topup and "1.00" in topup  # balance after
    assert running == (await Subscriber.get(username=USER)).balance_cents
    assert "Next cycle paid" in seen["next_cycle"]
    assert "Credit note" in seen["refund_pdf"] and "Refund: Plan change Fast → Basic" \
        in seen["refund_pdf"], seen["refund_pdf"]
    receipt = seen["receipt_pdf"]
    assert "Receipt" in receipt and "R-1042" in receipt and "15.00" in receipt, receipt
    assert "Tax" not in receipt, receipt  # the tax is on the renewal's invoice only
