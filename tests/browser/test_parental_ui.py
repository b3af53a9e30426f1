"""The Parental tab in Chromium at a phone size: toggle, persisted after reload, no side scroll."""

from __future__ import annotations

import time

import pytest

from portal.store import db as portal_db
from tests.support import seed
from tests.support.browser import PHONE, browser, login, no_horizontal_scroll, screenshot
from tests.support.portal import PortalServer

LONG = "a-very-long-subdomain-name-that-would-overflow.casino-and-sportsbook.example.com"


@pytest.fixture
async def home(db: str) -> None:
    await seed.reseller_with_plans("acme", parental_enabled=True)
    await seed.subscriber("maya@acme.net", "maya-pass")
    now = time.time()
    for domain, category, ago in ((LONG, "gambling", 30), ("pornhub.com", "adult", 90)):
        await portal_db.execute("INSERT INTO dns_block_recent (username, domain, category,"
                                " blocked_at) VALUES (?, ?, ?, ?)",
                                ["maya@acme.net", domain, category, now - ago])


def test_parental_tab_on_a_phone(home, portal_server: PortalServer) -> None:
    errors: list[str] = []
    with browser() as b:
        page = b.new_page(viewport=PHONE)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # this tab's own files and API must all load (another tab's missing icon is not ours)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if "parental" in r.url and r.status >= 400 else None)
        login(page, portal_server.url, "maya@acme.net", "maya-pass")
        page.wait_for_selector("#tabs a[href='/customer/parental']")
        page.click("#tabs a[href='/customer/parental']")
        page.wait_for_url("**/customer/parental")
        page.wait_for_selector("body[data-parental-loaded='1']")
        assert not page.is_checked("#parental-enabled")
        assert page.text_content("#recent-list").count("blocked") == 0
        assert LONG in page.text_content("#recent-list")
        assert no_horizontal_scroll(page)

        page.click("label[for='cat-gambling']")
        page.wait_for_selector("body:not([data-parental-saving]) #parental-enabled:checked")
        assert "Gambling" in page.text_content("#parental-state")
        page.reload()
        page.wait_for_selector("body[data-parental-loaded='1']")
        assert page.is_checked("#cat-gambling") and page.is_checked("#parental-enabled")
        assert not page.is_checked("#cat-adult")
        assert no_horizontal_scroll(page)
        screenshot(page, "parental-360")

        page.click("label[for='parental-enabled']")
        page.wait_for_selector("body:not([data-parental-saving]) "
                               "#parental-enabled:not(:checked)", state="attached")
        page.reload()
        page.wait_for_selector("body[data-parental-loaded='1']")
        assert not page.is_checked("#parental-enabled") and page.is_checked("#cat-gambling")
        assert "Off" in page.text_content("#parental-state")
    # e.g. a Content Security Policy violation, a script error
    assert not [e for e in errors if not e.startswith("Failed to load resource")], errors
    token = portal_server.login("maya@acme.net", "maya-pass")
    with portal_server.client(headers={"Authorization": f"Bearer {token}"}) as c:
        data = c.get("/customer/api/parental").json()
    assert data["enabled"] is False
    assert [x["name"] for x in data["categories"] if x["on"]] == ["gambling"]
