"""WiFi and Support tabs in Chromium at a phone viewport (and the WiFi modal on desktop)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portal.core.wifi import service
from portal.demo.nbi_emulator import FakeDevice, GenieAcsEmulator, tr098_params
from tests.support import seed
from tests.support.browser import DESKTOP, PHONE, browser, login, no_horizontal_scroll, screenshot
from tests.support.portal import PortalServer

SSID_24 = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"
KEY_24 = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.PreSharedKey.1.KeyPassphrase"
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture
def acs() -> Iterator[GenieAcsEmulator]:
    with GenieAcsEmulator() as emulator:
        emulator.add_device(FakeDevice("MAYA-DEV", tr098_params("maya@acme.net"),
                                       tags=["maya@acme.net"]))
        yield emulator


@pytest.fixture
async def maya(db: str, acs: GenieAcsEmulator) -> None:
    await seed.reseller_with_plans()
    await seed.subscriber("maya@acme.net", "maya-pass")
    await service.configure("acme", acs.url, match="tag", timeout_ms=3000)


def _page(b, viewport):  # type: ignore[no-untyped-def]
    page = b.new_page(viewport=viewport)
    errors: list[str] = []
    # Refused API calls (422 on purpose) log "Failed to load resource": not script errors.
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status == 404 and "/customer/static/" in r.url else None)
    page.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
    return page, errors


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_wifi_tab_change_ssid_and_password(maya, acs: GenieAcsEmulator,
                                           portal_server: PortalServer, viewport):
    with browser() as b:
        page, errors = _page(b, viewport)
        login(page, portal_server.url, "maya@acme.net", "maya-pass")
        page.click("a.tab[data-tab=wifi]")
        page.wait_for_url("**/customer/wifi")
        page.wait_for_selector('.network[data-band="2.4"] .ssid')
        assert page.text_content('.network[data-band="2.4"] .ssid') == "Home-2G"
        assert page.text_content("#router-serial") == "SN0001"
        assert "HG8245H" in page.text_content("#router-model")
        assert no_horizontal_scroll(page)
        page.click('.network[data-band="2.4"] .change-btn')
        modal = page.locator("#wifi-modal .modal-box")
        modal.wait_for(state="visible")
        box = modal.bounding_box()
        if viewport is PHONE:  # a full-screen form on phones
            assert box["x"] == 0 and box["y"] == 0
            assert box["width"] == viewport["width"] and box["height"] == viewport["height"]
        else:
            assert box["width"] < viewport["width"] / 2
        screenshot(page, f"wifi-modal-{viewport['width']}")
        # A bad passphrase: a clear message, nothing sent.
        page.fill("#wifi-pass", "short")
        page.click("#wifi-save")
        page.wait_for_selector("#wifi-error:not([hidden])")
        assert "8 to 63" in page.text_content("#wifi-error")
        assert acs.posted_tasks() == []
        page.fill("#wifi-ssid", "Maya's Café")
        page.fill("#wifi-pass", "a-good-passphrase")
        page.click("#wifi-save")
        page.wait_for_selector("#wifi-modal", state="hidden")
        page.wait_for_selector(".task.status-done")
        page.locator('.network[data-band="2.4"] .ssid', has_text="Maya's Café").wait_for()
        assert acs.devices["MAYA-DEV"].params[SSID_24] == "Maya's Café"
        assert acs.devices["MAYA-DEV"].params[KEY_24] == "a-good-passphrase"
        assert no_horizontal_scroll(page)
        screenshot(page, f"wifi-{viewport['width']}")
        assert errors == [], errors


def test_wifi_offline_router_and_restart(maya, acs: GenieAcsEmulator,
                                         portal_server: PortalServer):
    acs.devices["MAYA-DEV"].online = False
    with browser() as b:
        page, errors = _page(b, PHONE)
        login(page, portal_server.url, "maya@acme.net", "maya-pass")
        page.goto(portal_server.url + "/customer/wifi")
        page.wait_for_selector("#reboot-btn:not([hidden])")
        page.click("#reboot-btn")
        assert "Tap again" in page.text_content("#reboot-btn")
        page.click("#reboot-btn")
        page.wait_for_selector(".task.status-pending")
        assert "will apply when your router next connects" in page.text_content(".task")
        acs.connect("MAYA-DEV")
        page.wait_for_selector(".task.status-done", timeout=10000)
        assert acs.devices["MAYA-DEV"].reboots == 1
        assert no_horizontal_scroll(page)
        assert errors == [], errors


def test_wifi_acs_down_shows_a_clear_message(maya, acs: GenieAcsEmulator,
                                             portal_server: PortalServer):
    acs.__exit__(None, None, None)  # the ACS goes away: connection refused
    with browser() as b:
        page, _ = _page(b, PHONE)
        login(page, portal_server.url, "maya@acme.net", "maya-pass")
        page.goto(portal_server.url + "/customer/wifi")
        page.locator("#wifi-status", has_text="cannot be reached").wait_for()
        assert page.is_hidden("#networks-card")


def test_support_ticket_with_script_is_shown_as_text(maya, portal_server: PortalServer):
    with browser() as b:
        page, errors = _page(b, PHONE)
        login(page, portal_server.url, "maya@acme.net", "maya-pass")
        page.click("a.tab[data-tab=support]")
        page.wait_for_url("**/customer/support")
        page.wait_for_selector("#no-tickets:not([hidden])")
        page.select_option("#ticket-category", "slow")
        assert page.is_visible("#slow-hint")
        page.fill("#ticket-subject", XSS)
        page.fill("#ticket-message", XSS + "\nsecond line")
        page.click("#ticket-send")
        page.wait_for_selector("#thread-card:not([hidden])")
        assert page.text_content("#thread-subject") == XSS
        assert page.text_content(".message-body") == XSS + "\nsecond line"
        assert "Basic" in page.text_content("#thread-diagnostics")
        page.wait_for_selector(".ticket-subject")
        assert page.text_content(".ticket-subject") == XSS
        assert page.evaluate("window.__xss") is None
        assert page.locator("#content img").count() == 0
        page.fill("#reply-message", "any news?")
        page.click("#reply-send")
        page.locator(".message-body", has_text="any news?").wait_for()
        assert page.locator(".message").count() == 2
        # Empty subject: a clear message.
        page.fill("#ticket-subject", "")
        page.click("#ticket-send")
        page.wait_for_selector("#ticket-error:not([hidden])")
        assert "subject" in page.text_content("#ticket-error")
        assert no_horizontal_scroll(page)
        screenshot(page, "support-360")
        assert page.evaluate("window.__xss") is None
        assert errors == [], errors
