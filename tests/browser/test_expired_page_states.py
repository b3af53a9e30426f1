"""Issue 19: the expired page's other states in Chromium -- renewal left to the operator
(the reseller's default) and an account the operator suspended -- each saying why and
how to pay, and nothing said to a paying home.

The lookup that brings a lapsed home here is covered end to end, with the real
resolver, in tests/dns/test_expired_page_e2e.py; here the browser maps the foreign
name to the portal as that resolver answers it, and the portal sits behind a proxy on
loopback (trusted) that names the home.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.core import subscribers
from portal.store.models import Subscriber
from portal.store.radacct import insert_sessions
from tests.support import seed
from tests.support.axe import axe_path, serious_violations
from tests.support.browser import PHONE, browser, screenshot
from tests.support.portal import PortalServer

HOMES = {"lapsed@acme.net": "127.0.8.2", "held@acme.net": "127.0.8.3",
         "paid@acme.net": "127.0.8.4"}


@pytest.fixture
async def homes(db: str) -> None:
    # self-renewal off: the reseller's default (renewal via the operator)
    await seed.reseller_with_plans("acme", payment_instructions="Pay at the Acme shop",
                                   payment_contact="+961 1 234567")
    for username, address in HOMES.items():
        await seed.subscriber(username, balance_cents=5000)
        await insert_sessions([seed.online(username, address)])
    await Subscriber.filter(username="lapsed@acme.net").update(
        expires_at=datetime.now(UTC) - timedelta(minutes=5))
    await subscribers.set_status("held@acme.net", "disabled")


def test_operator_renewal_and_suspended_account_pages(homes: None,
                                                      portal_server: PortalServer) -> None:
    axe_path()
    port = portal_server.url.rsplit(":", 1)[1]
    seen: dict[str, str] = {}
    with browser("--host-resolver-rules=MAP news.example 127.0.0.1") as b:
        for username, address in HOMES.items():
            context = b.new_context(viewport=PHONE, bypass_csp=True,
                                    extra_http_headers={"X-Forwarded-For": address})
            page = context.new_page()
            res = page.goto(f"http://news.example:{port}/today")
            assert res is not None
            if username == "paid@acme.net":
                assert res.status != 200 and page.locator("#expired").count() == 0
                context.close()
                continue
            assert res.status == 200 and res.headers["cache-control"] == "no-store"
            card = page.locator("#expired")
            seen[username] = card.get_attribute("data-state") + "|" + card.inner_text()
            assert page.locator("#renew-link").count() == 0  # not the subscriber's to do
            assert page.locator("#payment-instructions").inner_text() == "Pay at the Acme shop"
            assert page.locator("#payment-contact").inner_text() == "+961 1 234567"
            assert page.evaluate("document.body.scrollWidth <= window.innerWidth")
            screenshot(page, f"expired-page-{username.split('@')[0]}-360")
            found = serious_violations(page)
            assert not found, (username, found)
            context.close()
    state, text = seen["lapsed@acme.net"].split("|", 1)
    assert state == "expired" and "Your subscription has expired" in text
    assert "Renewal is done by your operator." in text and "15.00 USD" in text
    state, text = seen["held@acme.net"].split("|", 1)
    assert state == "disabled" and "Your account is suspended" in text
    assert "held@acme.net" in text and "news.example" in text and "Acme Net" in text
