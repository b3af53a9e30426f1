"""Issue 19 end to end: an expired subscriber's web lookups land on a branded page.

Real processes and a real database (SQLite, or PostgreSQL in the suite's second
pass): the resolver (`python -m dns_filter`) following the policy views and the
change journal, with its walled garden configured ([dns] expired_page_ipv4 /
expired_allow), a real upstream, the portal (`ispedge portal`), `dig -b <framed IP>`
playing the home, and Chromium opening the blocked name at the address dig got.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from portal.speed import effective, rules
from portal.store import journal
from portal.store.models import Subscriber
from portal.store.radacct import insert_sessions
from portal.store.tx import transaction
from tests.dns.conftest import Launcher, Proc
from tests.dns.test_resolver_process import dig
from tests.support import seed
from tests.support.axe import axe_path, serious_violations
from tests.support.browser import browser, screenshot
from tests.support.portal import PortalServer, start_portal

MAYA, SAMI = "127.0.6.2", "127.0.6.3"
PORTAL_NAME = "portal.example.net"  # [portal] hostnames, and the walled garden
UPSTREAM_ANSWER = "192.0.2.1"
PAGE = "127.0.0.1"  # the portal's address: where the expired page is served


@pytest.fixture
async def homes(db: str) -> None:
    await seed.reseller_with_plans("acme", allow_self_renewal=True,
                                   payment_instructions="Pay at the Acme shop, Main St.",
                                   payment_contact="+961 1 234567")
    await seed.subscriber("maya@acme.net", "maya-pass", balance_cents=5000)
    await seed.subscriber("sami@acme.net", "sami-pass")
    await insert_sessions([seed.online("maya@acme.net", MAYA), seed.online("sami@acme.net", SAMI)])


@pytest.fixture
def resolver(homes, db_url: str, launcher: Launcher) -> Proc:
    auth = launcher.authserver()
    # full_reload_s long: the changes must arrive through the journal, not a reload
    return launcher.resolver([auth.port], database_url=db_url, poll_interval_s=0.2,
                             default_categories=[], full_reload_s=600,
                             expired_page_ipv4=PAGE, expired_allow=[PORTAL_NAME])


@pytest.fixture
def portal(homes, db_url: str, tmp_path) -> Iterator[PortalServer]:  # noqa: ANN001
    server = start_portal(db_url, tmp_path / "portal", ISPEDGE_PORTAL_HOSTNAMES=PORTAL_NAME)
    try:
        yield server
    finally:
        server.stop()


def short(r: Proc, name: str, source: str) -> str:
    return dig(r.port, "+short", name, source=source).strip()


def wait_answer(r: Proc, name: str, source: str, want: str) -> float:
    since = time.monotonic()
    while (got := short(r, name, source)) != want:
        assert time.monotonic() - since < 3.0, f"{name} from {source} still {got!r}"
        time.sleep(0.02)
    return time.monotonic() - since


@pytest.fixture
async def maya_expires(resolver: Proc) -> Proc:
    """Maya, online and browsing (checked first), then her expiry passes: what the
    enforcer does then, the suspended speed through the one speed writer with its
    'speed' journal row (origin enforcer)."""
    assert short(resolver, "news.example", MAYA) == UPSTREAM_ANSWER
    username = "maya@acme.net"
    now = datetime.now(UTC)
    await Subscriber.filter(username=username).update(expires_at=now - timedelta(minutes=1))

    async def write(tx) -> None:  # noqa: ANN001
        await effective.write_desired(
            tx, {username: rules.Desired("rate", 256, 256, "expired")},
            origin=journal.ENFORCER)

    await transaction(write)
    return resolver


def test_expired_lookup_lands_on_the_branded_page_until_renewed(
        maya_expires: Proc, portal: PortalServer) -> None:
    axe_path()
    r = maya_expires
    took = wait_answer(r, "news.example", MAYA, PAGE)
    print(f"\nexpiry to walled garden: {took * 1000:.0f} ms")
    assert short(r, "www.example.org", MAYA) == PAGE
    assert short(r, PORTAL_NAME, MAYA) == UPSTREAM_ANSWER  # the portal stays reachable
    assert short(r, "news.example", SAMI) == UPSTREAM_ANSWER  # another home: unaffected
    port = portal.url.rsplit(":", 1)[1]
    problems: list[str] = []
    with browser(f"--host-resolver-rules=MAP news.example {short(r, 'news.example', MAYA)}",
                 ) as b:
        # The portal sits behind a proxy on loopback here (trusted), which names the home.
        context = b.new_context(viewport={"width": 360, "height": 780}, bypass_csp=True,
                                extra_http_headers={"X-Forwarded-For": MAYA})
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"pageerror {e}"))
        res = page.goto(f"http://news.example:{port}/world/today?x=1")
        assert res is not None and res.status == 200
        card = page.locator("#expired")
        assert card.get_attribute("data-state") == "expired"
        text = card.inner_text()
        assert "Your subscription has expired" in text and "news.example" in text
        assert "maya@acme.net" in text and "Basic" in text
        assert page.locator("#expired-price").inner_text() == "15.00 USD"
        link = page.locator("#renew-link")
        assert link.get_attribute("href") == f"http://{PORTAL_NAME}/customer/invoices"
        assert "Acme shop" in page.locator("#payment-instructions").inner_text()
        assert page.locator("#company-name").inner_text() == "Acme Net"  # branded
        assert page.evaluate("document.body.scrollWidth <= window.innerWidth")
        screenshot(page, "expired-page-360")
        found = serious_violations(page)
        assert not found, found
        # The portal and its API stay reachable from the expired home.
        assert page.goto(f"{portal.url}/customer/login").status == 200
        context.close()
        # Another home asking for a foreign name gets no page (and learns nothing).
        other = b.new_context(extra_http_headers={"X-Forwarded-For": SAMI})
        res = other.new_page().goto(f"http://news.example:{port}/")
        assert res is not None and res.status != 200
        other.close()
    assert not problems, problems
    # Renewed in the portal: the 'status' journal row lifts the walled garden.
    token = portal.login("maya@acme.net", "maya-pass")
    with portal.client(headers={"Authorization": f"Bearer {token}",
                                       "X-Forwarded-For": MAYA}) as c:
        renewed = c.post("/customer/api/renew", json={})
        assert renewed.status_code == 200, renewed.text
        assert renewed.json()["renewal"]["next_cycle_paid"] is False  # after expiry: now
        took = wait_answer(r, "news.example", MAYA, UPSTREAM_ANSWER)
        print(f"renewal to the open internet: {took * 1000:.0f} ms")
        gone = c.get("/world/today", headers={"Host": "news.example"})
        assert gone.status_code != 200
