"""Branding: by custom domain before login, by the subscriber's reseller after; logo checks."""

from __future__ import annotations

import pytest

from portal.core import resellers, subscribers
from portal.core.resellers import MAX_LOGO_BYTES, logo_type
from portal.errors import PortalError
from tests.support import seed
from tests.support.portal import PortalServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'


@pytest.mark.parametrize(("data", "name", "expected"), [
    (PNG, "logo.png", "image/png"), (PNG, "logo.svg", "image/png"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 32, "x", "image/jpeg"),
    (SVG, "logo.png", "image/svg+xml"), (b'<?xml version="1.0"?>\n' + SVG, None, "image/svg+xml"),
])
def test_logo_type_by_content_not_name(data: bytes, name: str | None, expected: str):
    assert logo_type(data, name) == expected


@pytest.mark.parametrize("data", [b"GIF89a" + b"\x00" * 20, b"<html><script>", b"",
                                  b"<?xml version='1.0'?><html/>", PNG + b"\x00" * MAX_LOGO_BYTES])
def test_logo_refused(data: bytes):
    with pytest.raises(PortalError) as err:
        logo_type(data, "logo.png")
    assert err.value.code in ("logo_type", "logo_too_large")


@pytest.fixture
async def two_brands(db: str) -> None:
    await seed.reseller_with_plans("acme")
    await resellers.brand("acme", company_name="Acme Net", tagline="Acme tagline",
                          footer_text="Acme footer", primary_color="#112233", logo=PNG,
                          logo_filename="a.png")
    await seed.reseller_with_plans("cedar", parent="acme")
    await resellers.brand("cedar", company_name="Cedar Net", tagline="Cedar tagline",
                          footer_text="Cedar footer", primary_color="#1b7f3b",
                          custom_domain="portal.cedar.example")
    await subscribers.add_subscriber("omar@cedar", "omar-pw", "cedar", "Basic")


async def test_custom_domain_brands_the_login_page(two_brands, portal_server: PortalServer):
    with portal_server.client() as c:
        cedar = c.get("/customer/login", headers={"Host": "portal.cedar.example"}).text
        own = c.get("/customer/login").text
        other = c.get("/customer/login", headers={"Host": "evil.example"})
        host_api = c.get("/customer/api/branding", headers={"Host": "portal.cedar.example:8080"})
    assert "<title>Cedar Net</title>" in cedar and 'data-primary="#1b7f3b"' in cedar
    assert "Cedar tagline" in cedar and "Cedar footer" in cedar and 'class="logo"' not in cedar
    assert '<meta name="theme-color" content="#1b7f3b">' in cedar
    assert "<title>Acme Net</title>" in own and 'data-primary="#112233"' in own
    assert 'src="/customer/branding/logo/' in own  # the root reseller's logo
    assert other.status_code == 421
    assert host_api.json()["company_name"] == "Cedar Net"


@pytest.mark.parametrize("path", ["/", "/operator/login", "/operator/",
                                  "/operator/subscribers/omar@cedar", "/operator/account"])
async def test_console_pages_follow_the_portals_branding(two_brands,
                                                        portal_server: PortalServer, path: str):
    """The landing page and the operator console: brand by Host as the portal's pages
    (a custom domain its reseller's, our own address the root's, any other Host 421)."""
    with portal_server.client() as c:
        cedar = c.get(path, headers={"Host": "portal.cedar.example"})
        own = c.get(path).text
        other = c.get(path, headers={"Host": "evil.example"})
    assert cedar.status_code == 200
    assert " · Cedar Net</title>" in cedar.text or "<title>Cedar Net</title>" in cedar.text
    assert 'data-primary="#1b7f3b"' in cedar.text and "Cedar footer" in cedar.text
    assert '<meta name="theme-color" content="#1b7f3b">' in cedar.text
    assert 'class="logo"' not in cedar.text
    assert "Acme Net</title>" in own and 'data-primary="#112233"' in own
    assert 'src="/customer/branding/logo/' in own
    assert other.status_code == 421


async def test_signed_in_subscriber_sees_own_resellers_brand(two_brands,
                                                              portal_server: PortalServer):
    token = portal_server.login("omar@cedar", "omar-pw")
    with portal_server.client() as c:
        me = c.get("/customer/api/me", headers={"Authorization": f"Bearer {token}"}).json()
        logo = c.get("/customer/branding/logo/1")
    assert me["branding"] == {"company_name": "Cedar Net", "tagline": "Cedar tagline",
                              "footer_text": "Cedar footer", "primary_color": "#1b7f3b",
                              "logo_url": None}
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"
    assert "sandbox" in logo.headers["content-security-policy"]
    assert logo.headers["x-content-type-options"] == "nosniff"
