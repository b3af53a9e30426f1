"""/docs renders the API reference in Chromium under the portal's CSP: Redoc's script is
served by the portal itself (no CDN), and the browser reports no CSP violation."""

from __future__ import annotations

import pytest

from tests.support import seed
from tests.support.browser import DESKTOP, browser, screenshot
from tests.support.portal import PortalServer


@pytest.fixture
async def reseller(db: str) -> None:
    await seed.reseller_with_plans()


def test_docs_renders_the_api_without_csp_violations(reseller, portal_server: PortalServer):
    with browser() as b:
        page = b.new_page(viewport=DESKTOP)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url)
                if not r.url.startswith((portal_server.url, "data:", "blob:")) else None)
        page.goto(portal_server.url + "/docs")
        # Redoc has rendered the document: its title and an operation of the API.
        page.locator("h1", has_text="ispedge customer API").wait_for(timeout=20000)
        page.get_by_text("/customer/api/login").first.wait_for(state="attached",
                                                                timeout=20000)
        assert page.locator("[data-section-id]").count() > 5
        screenshot(page, "api-docs")
        assert outside == [], outside
        assert not [p for p in problems if "Content Security Policy" in p], problems
