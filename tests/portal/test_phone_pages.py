"""Issue 18: the branded 404 page, the favicon and the login page's help."""

from __future__ import annotations

from tests.support import seed
from tests.support.portal import PortalServer


async def test_404_is_branded_and_has_the_favicon(db: str, portal_server: PortalServer) -> None:
    await seed.reseller_with_plans("acme")
    with portal_server.client() as c:
        page = c.get("/customer/no-such-page", headers={"Accept": "text/html"})
        api = c.get("/customer/api/no-such-call")
        icon = c.get("/customer/static/favicon.svg")
        login = c.get("/customer/login")
    assert page.status_code == 404
    assert "Acme Net" in page.text and "Page not found" in page.text
    assert '/customer/static/favicon.svg' in page.text
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"  # JSON as before
    assert icon.status_code == 200 and icon.text.startswith("<svg")
    assert "PPPoE username" in login.text and 'id="show-password"' in login.text
