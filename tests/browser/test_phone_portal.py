"""Issue 18: the whole portal in Chromium at 360x780 and 1280x800.

Every one of the eight tabs reached from the navigation in one or two taps and
marked, no horizontal scroll, axe-core clean (serious/critical), tap targets of
at least 44 px, each tab's failure state shown with a retry that works, and a
screenshot of every tab in test-artifacts/. One browser, one page per size.
At 360 px also: every bar label whole ("Change Plan" was cut to "Change Pl…"), a
failed Buy / plan-change confirm's message visible above the bottom bar, and the
wallet (issue 19): a receipt downloaded as PDF and read back with pdftotext, and
"Renew now" with its price, confirmed, giving a paid next cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.core.wifi import service
from portal.demo.nbi_emulator import FakeDevice, GenieAcsEmulator, tr098_params
from tests.support import seed
from tests.support.axe import axe_path, serious_violations
from tests.support.browser import browser, login, screenshot
from tests.support.pdf import text_of_file
from tests.support.portal import PortalServer

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 800}
# tab -> the API call its page loads with
TABS = {"dashboard": "/customer/api/dashboard", "usage": "/customer/api/usage",
        "plans": "/customer/api/plans", "data": "/customer/api/data",
        "wifi": "/customer/api/wifi", "invoices": "/customer/api/invoices",
        "support": "/customer/api/tickets", "parental": "/customer/api/parental"}
USER = "maya@acme.net"


@pytest.fixture
def acs() -> Iterator[GenieAcsEmulator]:
    with GenieAcsEmulator(credentials=("nbi", "nbi-pass")) as emulator:
        emulator.add_device(FakeDevice("MAYA-DEV", tr098_params(USER), tags=[USER]))
        yield emulator


@pytest.fixture
async def home(db: str, acs: GenieAcsEmulator) -> None:
    await seed.reseller_with_plans("acme", allow_plan_change=True, price_per_gb="1.50",
                                   parental_enabled=True, allow_self_renewal=True,
                                   payment_instructions="Pay at the Acme shop, Main St.",
                                   payment_contact="+961 1 234567")
    await seed.subscriber(USER, "maya-pass", balance_cents=4250)
    await service.configure("acme", acs.url, "nbi", "nbi-pass", "tag", 3000)


def _ready(page: Any) -> None:
    page.wait_for_selector("body[data-state='ready']", timeout=20000)


def _go(page: Any, tab: str) -> int:
    """Reach a tab through the visible navigation; returns the number of taps."""
    link = page.locator(f"#tabs .tab-list a[data-tab='{tab}']")
    if link.is_visible():
        link.click()
        taps = 1
    else:
        page.click("#more-button")
        page.locator(f"#more-sheet a[data-tab='{tab}']").click()
        taps = 2
    page.wait_for_url("**/customer/" + ("" if tab == "dashboard" else tab))
    _ready(page)
    return taps


def _small_targets(page: Any) -> list[str]:
    """Visible controls smaller than 44x44 px (links inside text are exempt, as WCAG 2.5.8)."""
    return list(page.evaluate("""() => Array.from(document.querySelectorAll(
          'button, select, input, #tabs a'))
      .filter(e => e.offsetParent !== null || e.closest('#tabs'))
      .map(e => [e, e.getBoundingClientRect()])
      .filter(([e, r]) => r.width > 0 && (r.height < 44 || r.width < 44))
      .map(([e, r]) => e.tagName + '#' + (e.id || e.className) + ' '
           + Math.round(r.width) + 'x' + Math.round(r.height))"""))


def _clipped_labels(page: Any) -> list[str]:
    """Bar labels cut off (ellipsis, or text wider/taller than the label or its tab)."""
    return list(page.evaluate("""() => Array.from(document.querySelectorAll(
          '#tabs .tab-list > .tab')).filter(t => t.offsetParent !== null).flatMap(t => {
        const l = t.querySelector('.tab-label'), lr = l.getBoundingClientRect(),
              tr = t.getBoundingClientRect();
        const cut = l.scrollWidth > l.clientWidth + 1 || l.scrollHeight > l.clientHeight + 1
          || lr.left < tr.left - 1 || lr.right > tr.right + 1 || lr.bottom > tr.bottom + 1
          || getComputedStyle(l).textOverflow === 'ellipsis'
             && getComputedStyle(l).whiteSpace === 'nowrap';
        return cut ? [l.textContent + ' ' + Math.round(lr.width) + 'x' + Math.round(lr.height)]
                   : [];
      })"""))


def _above_bar(page: Any, selector: str) -> None:
    """The element is shown and wholly inside the viewport above the phone's bottom bar."""
    page.wait_for_selector(selector + ":not([hidden])")
    try:  # polled while the smooth scroll runs, not a fixed sleep
        page.wait_for_function("""s => {
            const r = document.querySelector(s).getBoundingClientRect();
            return r.top >= 0 && r.bottom <= document.querySelector('#tabs')
              .getBoundingClientRect().top; }""", arg=selector, timeout=3000, polling=50)
    except Exception:
        pass  # the assertion below says where it is
    bar = page.locator("#tabs").bounding_box()
    box = page.locator(selector).bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= bar["y"], (selector, box, bar)


def _failed_confirms(page: Any) -> None:
    """Issue 18: a failed Buy or plan-change confirm says so above the bottom bar."""
    boom = ('{"error": {"code": "internal_error",'
            ' "message": "could not charge you, nothing was taken"}}')
    for api in ("/customer/api/data/buy", "/customer/api/plans/change"):
        page.route("**" + api, lambda route: route.fulfill(
            status=500, content_type="application/json", body=boom))
    _go(page, "data")
    page.click("#buy-button")
    page.wait_for_selector("#confirm:not([hidden])")
    page.click("#confirm-button")
    _above_bar(page, "#confirm-error")
    assert "nothing was taken" in page.locator("#confirm-error").inner_text()
    screenshot(page, "phone-portal-data-confirm-failed-360")
    _go(page, "plans")
    page.locator("#plan-list button.primary").first.click()
    page.wait_for_selector("#confirm:not([hidden])")
    page.wait_for_function("!document.querySelector('#confirm-button').disabled")
    page.click("#confirm-button")
    _above_bar(page, "#confirm-error")
    assert "nothing was taken" in page.locator("#confirm-error").inner_text()
    screenshot(page, "phone-portal-plans-confirm-failed-360")
    page.unroute("**/customer/api/data/buy")
    page.unroute("**/customer/api/plans/change")


def _pdf_text(download: Any, tmp: Path) -> str:
    path = tmp / download.suggested_filename
    download.save_as(str(path))
    return text_of_file(path)


def _wallet_and_renewal(page: Any, tmp: Path) -> None:
    """Issue 19: wallet -> the opening credit's receipt as PDF; Renew now with its price."""
    _go(page, "invoices")
    credit = page.locator("#wallet-list li[data-kind='credit']")
    assert credit.count() == 1
    assert "42.50" in credit.inner_text()
    with page.expect_download() as got:
        credit.locator("button").click()
    text = _pdf_text(got.value, tmp)
    assert "Receipt" in text and "42.50" in text and "Tax" not in text, text
    assert got.value.suggested_filename.removesuffix(".pdf") in text
    renew = page.locator("#renew-button")
    assert renew.is_visible() and "15.00" in renew.inner_text()  # Basic's price, shown
    assert page.locator("#payment").is_hidden()  # enough money: no payment instructions
    renew.click()
    page.wait_for_selector("#renew-confirm:not([hidden])")
    assert "27.50" in page.locator("#renew-balance-after").inner_text()
    _above_bar(page, "#renew-confirm-button")
    page.click("#renew-confirm-button")
    _above_bar(page, "#renew-done")
    assert "next cycle paid" in page.locator("#renew-done-text").inner_text()
    page.wait_for_selector("#wallet-list li[data-kind='renewal']")
    _ready(page)
    assert page.locator("#next-cycle").is_visible()
    assert "27.50" in page.locator("#wallet-balance").inner_text()
    with page.expect_download() as got:
        page.locator("#wallet-list li[data-kind='renewal'] button").click()
    text = _pdf_text(got.value, tmp)
    assert "Tax invoice" in text and "Renewal — Basic" in text and "15.00" in text, text
    # A second renewal (through the API) leaves 12.50, less than the price: the button
    # is off, and the shortfall and the reseller's way to pay show where it is.
    page.evaluate("window.ispedge.api('/customer/api/renew', {method: 'POST', body: {}})")
    page.reload()
    _ready(page)
    assert page.locator("#renew-button").is_disabled()
    assert "Acme shop" in page.locator("#payment").inner_text()
    assert "more is needed" in page.locator("#shortfall").inner_text()
    screenshot(page, "phone-portal-invoices-renewed-360")
    found = serious_violations(page)
    assert not found, found


def test_every_tab_at_phone_and_desktop_size(home, portal_server: PortalServer,
                                             tmp_path: Path) -> None:
    axe_path()  # missing axe-core is a skip here, a failure in CI (ISPEDGE_NO_SKIP)
    problems: list[str] = []
    with browser() as b:
        for name, viewport in (("360", PHONE), ("1280", DESKTOP)):
            # bypass_csp only so the test can inject axe-core; the portal's CSP is unchanged
            context = b.new_context(viewport=viewport, bypass_csp=True)
            page = context.new_page()
            page.on("pageerror", lambda e: problems.append(f"pageerror {e}"))
            page.on("console", lambda m: problems.append(m.text)
                    if m.type == "error" and "Failed to load resource" not in m.text else None)
            login(page, portal_server.url, USER, "maya-pass")
            _ready(page)
            for tab in TABS:
                assert _go(page, tab) <= 2, tab
                marked = page.locator("#tabs .tab-list [aria-current='page']")
                assert marked.count() == 1 and marked.is_visible(), (name, tab)
                assert marked.get_attribute("data-tab") == tab
                assert page.locator("#tabs svg.tab-icon").count() >= 8
                assert page.evaluate("document.body.scrollWidth <= window.innerWidth"), (name, tab)
                screenshot(page, f"phone-portal-{tab}-{name}")
                found = serious_violations(page)
                assert not found, (name, tab, found)
                if name == "360":
                    small = _small_targets(page)
                    assert not small, (tab, small)
                    clipped = _clipped_labels(page)
                    assert not clipped, (tab, clipped)
            if name == "360":
                # nothing under the bottom bar: the last element clears it
                _go(page, "data")
                page.click("#buy-button")
                page.wait_for_selector("#confirm:not([hidden])")
                page.wait_for_timeout(600)  # smooth scroll
                bar = page.locator("#tabs").bounding_box()
                button = page.locator("#confirm-button").bounding_box()
                assert button["y"] + button["height"] <= bar["y"], (button, bar)
                # keyboard: every nav control is reached with Tab
                _go(page, "dashboard")
                reached = set()
                for _ in range(40):
                    page.keyboard.press("Tab")
                    reached.add(page.evaluate("document.activeElement.dataset.tab "
                                              "|| document.activeElement.id"))
                assert {"dashboard", "usage", "plans", "more-button", "logout"} <= reached, reached
                _failed_confirms(page)
                _wallet_and_renewal(page, tmp_path)
            context.close()
    assert not problems, problems


def test_each_tab_shows_its_failure_with_a_working_retry(home, portal_server: PortalServer
                                                         ) -> None:
    problems: list[str] = []
    with browser() as b:
        context = b.new_context(viewport=PHONE)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"pageerror {e}"))
        page.on("console", lambda m: problems.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text else None)
        login(page, portal_server.url, USER, "maya-pass")
        _ready(page)
        for i, (tab, api) in enumerate(TABS.items()):
            # alternately: the server answers 500, the network drops the call
            if i % 2:
                page.route("**" + api, lambda route: route.abort("connectionreset"))
            else:
                page.route("**" + api, lambda route: route.fulfill(
                    status=500, content_type="application/json",
                    body='{"error": {"code": "internal_error", "message": "boom on our side"}}'))
            page.goto(portal_server.url + "/customer/" + ("" if tab == "dashboard" else tab))
            page.wait_for_selector("body[data-state='error']", timeout=20000)
            state = page.locator("#page-state")
            assert state.is_visible()
            text = state.inner_text()
            assert ("boom on our side" if i % 2 == 0 else "Could not reach the server") in text
            retry = page.locator("#page-state .state-retry")
            assert retry.is_visible()
            page.unroute("**" + api)
            retry.click()
            _ready(page)
            assert not state.is_visible(), tab
            screenshot(page, f"phone-portal-retried-{tab}-360")
        # offline: the browser drops the connection; coming back online retries by itself
        page.goto(portal_server.url + "/customer/invoices")
        _ready(page)
        context.set_offline(True)
        page.evaluate("window.ispedge.load(() => window.ispedge.api('/customer/api/invoices')"
                      ".then(r => window.ispedge.need(r)))")
        page.wait_for_selector("body[data-state='offline']")
        assert "offline" in page.locator("#page-state").inner_text()
        screenshot(page, "phone-portal-offline-360")
        context.set_offline(False)
        _ready(page)
        context.close()
    assert not problems, problems
