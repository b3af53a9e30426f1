"""A subscriber logs in in Chromium, lands on the Dashboard, and logs out."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support import seed
from tests.support.browser import DESKTOP, PHONE, browser, login, no_horizontal_scroll, screenshot
from tests.support.portal import PortalServer


@pytest.fixture
async def subscriber(db: str) -> None:
    await seed.reseller_with_plans()
    await seed.subscriber("maya@acme.net", "maya-pass", balance_cents=4250)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_login_lands_on_dashboard_and_logout_revokes(subscriber, portal_server: PortalServer,
                                                     viewport):
    with browser() as b:
        page = b.new_page(viewport=viewport)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        login(page, portal_server.url, "maya@acme.net", "maya-pass")
        # Not wait_for_function: its polling evaluates strings, which our CSP forbids.
        expect(page.locator("#plan-name")).to_have_text("Basic")
        assert page.text_content("#balance").strip() == "$42.50"
        assert "days" in page.text_content("#expiry-countdown")
        assert page.title() == "Acme Net"
        assert no_horizontal_scroll(page)
        token = page.evaluate("localStorage.getItem('ispedge.token')")
        assert token and page.context.cookies() == []
        screenshot(page, f"dashboard-{viewport['width']}")
        page.click("#logout")
        page.wait_for_url("**/customer/login")
        assert page.evaluate("localStorage.getItem('ispedge.token')") is None
        assert not [e for e in errors if "Content Security Policy" in e], errors
    with portal_server.client() as c:
        r = c.get("/customer/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_wrong_password_shows_a_message(subscriber, portal_server: PortalServer):
    with browser() as b:
        page = b.new_page(viewport=PHONE)
        page.goto(portal_server.url + "/customer/login")
        page.fill("#username", "maya@acme.net")
        page.fill("#password", "nope")
        page.click("#login-button")
        page.wait_for_selector("#login-error:not([hidden])")
        assert "wrong username or password" in page.text_content("#login-error")
        assert no_horizontal_scroll(page)
