"""Bad requests get a clear 4xx JSON error, write nothing, and leak no stack trace."""

from __future__ import annotations

import pytest

from tests.support import seed
from tests.support.portal import PortalServer


@pytest.fixture
async def acme(db: str) -> None:
    await seed.reseller_with_plans()
    await seed.subscriber("ali@acme.net", "pw-123456")


async def _rows() -> tuple[int, int, int]:
    from portal.store.models import AuditLog, ChangeJournal, RevokedToken

    return (await AuditLog.all().count(), await ChangeJournal.all().count(),
            await RevokedToken.all().count())


def _no_trace(text: str) -> None:
    assert "Traceback" not in text and "File \"" not in text


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{not json", 400, "malformed_json"),
    (b"[1, 2]", 400, "malformed_json"),
    (b"", 400, "missing_body"),
    (b'{"username": "ali@acme.net"}', 422, "missing_fields"),
    (b'{"password": "x"}', 422, "missing_fields"),
    (b'{"username": 5, "password": ["x"]}', 422, "missing_fields"),
    (b'{"username": "\\u0000", "password": "x"}', 400, "invalid_text"),
    (b'{"username": "a", "password": "x\\u0000y"}', 400, "invalid_text"),
    (b'{"username": "x\' OR 1=1 --", "password": "\' OR \'1\'=\'1"}', 401, "invalid_credentials"),
    (b'{"username": "<script>alert(1)</script>", "password": "x"}', 401, "invalid_credentials"),
])
async def test_login_bad_bodies(acme, portal_server: PortalServer, body, status, code):
    with portal_server.client() as c:
        r = c.post("/customer/api/login", content=body,
                   headers={"Content-Type": "application/json",
                            "X-Forwarded-For": "192.0.2.200"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    _no_trace(r.text)
    assert "<script>" not in r.text


async def test_huge_body_is_refused(acme, portal_server: PortalServer):
    before = await _rows()
    with portal_server.client() as c:
        r = c.post("/customer/api/login", content=b'{"username": "' + b"a" * 10_000_000 + b'"}',
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"
    assert await _rows() == before


async def test_unknown_host_is_refused(acme, portal_server: PortalServer):
    with portal_server.client() as c:
        api = c.get("/customer/api/branding", headers={"Host": "evil.example.com"})
        page = c.get("/customer/login", headers={"Host": "evil.example.com"})
    assert api.status_code == 421 and api.json()["error"]["code"] == "unknown_domain"
    assert page.status_code == 421 and "does not serve" in page.text
    _no_trace(page.text)


async def test_custom_domain_shows_that_resellers_branding(acme, portal_server: PortalServer):
    from portal.core import resellers, subscribers

    await subscribers.add_reseller("cedar", parent="acme", company_name="Cedar <b>Net</b>")
    await resellers.brand("cedar", custom_domain="portal.cedar.example", primary_color="#123456",
                          tagline="Fast & fair")
    with portal_server.client() as c:
        api = c.get("/customer/api/branding", headers={"Host": "portal.cedar.example:8443"})
        page = c.get("/customer/login", headers={"Host": "portal.cedar.example"})
        default = c.get("/customer/api/branding")
    assert api.json()["company_name"] == "Cedar <b>Net</b>"
    assert api.json()["primary_color"] == "#123456"
    assert "Cedar &lt;b&gt;Net&lt;/b&gt;" in page.text and "<b>Net</b>" not in page.text
    assert "Fast &amp; fair" in page.text
    assert default.json()["company_name"] == "Acme Net"


async def test_unknown_route_and_method(acme, portal_server: PortalServer):
    with portal_server.client() as c:
        missing = c.get("/customer/api/nope")
        wrong = c.get("/customer/api/login")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong.status_code == 405
    _no_trace(missing.text + wrong.text)


async def test_security_headers_on_pages_and_api(acme, portal_server: PortalServer):
    with portal_server.client() as c:
        page = c.get("/customer/login")
        api = c.get("/customer/api/branding")
    for r in (page, api):
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text.replace('<script src="/customer/static/app.js"></script>',
                                               "")
