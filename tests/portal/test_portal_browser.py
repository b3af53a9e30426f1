"""The portal in headless Chromium (Debian's), at a phone and a desktop viewport.

Numbers on the page are compared with the database; the live number must move
within 3 s of a new interim update; no visible tab may scroll sideways; logout
revokes the token; an SVG logo can never run script in the portal's origin.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from portal.demo import simnas
from portal.store.models import Subscriber
from portal.usage import ingest
from tests.portal.usage_helpers import SETTINGS, daily_bytes, two_subscribers
from tests.support.portal import PortalServer
from tests.support.requirements import need_chromium

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORTS = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 800}}

# Cards must stay inside the viewport; only the chart scrolls, inside its own box.
NO_SIDEWAYS = """() => {
  const d = document.documentElement;
  const wide = [...document.querySelectorAll('main > *, header, footer, nav')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .map(e => e.id || e.className);
  return {scroll: d.scrollWidth, client: d.clientWidth, wide: wide};
}"""


@pytest.fixture
async def browser():
    need_chromium()
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def wait_js(page, expression: str, within: float = 5.0) -> None:
    """Poll a JS expression until truthy (wait_for_function would need 'unsafe-eval')."""
    deadline = time.monotonic() + within
    while not await page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s: {expression}")
        await page.wait_for_timeout(50)


async def login(page, server: PortalServer, username: str, password: str) -> None:
    await page.goto(server.url + "/customer/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(server.url + "/customer/")


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_subscriber_sees_own_numbers_live_rate_and_logs_out(
        viewport: str, db: str, portal_server: PortalServer, browser) -> None:
    alice, bob = await two_subscribers()
    context = await browser.new_context(viewport=VIEWPORTS[viewport])
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await login(page, portal_server, alice.username, alice.password)

    # Dashboard numbers = the database's.
    await wait_js(page, "document.getElementById('cycle-used').dataset.bytes !== ''")
    days = await daily_bytes(alice.username)
    today = datetime.now(UTC).date().isoformat()
    sub = await Subscriber.get(username=alice.username)
    first = sub.cycle_start.date().isoformat()
    cycle = sum(i + o for d, (i, o) in days.items() if d >= first)
    assert await page.get_attribute("#today-used", "data-bytes") == str(sum(days[today]))
    assert await page.get_attribute("#cycle-used", "data-bytes") == str(cycle)
    assert await page.text_content("#cycle-used") == await page.evaluate(
        f"ispedge.fmt.gb({cycle})")
    assert await page.get_attribute("#balance", "data-cents") == "1234"
    assert await page.text_content("#balance") == "$12.34"
    assert await page.text_content("#plan-name") == "Basic"
    assert await page.get_attribute("#fup-tier", "data-tier") == "0"
    assert await page.text_content("#live-status") == "Online"
    assert await page.text_content("#live-down") == "8.0"
    assert "100.64.0.3" not in await page.content()  # bob's address never shows

    # A new interim: the live number follows within 3 s (45 MB in 30 s = 12 Mbit/s).
    s = alice.session
    s.bytes_out += 45 * 10**6
    await simnas.interim([s], alice.last_update + timedelta(seconds=30))
    started = time.monotonic()
    await wait_js(page, "document.getElementById('live-down').textContent === '12.0'", 3.5)
    assert time.monotonic() - started <= 3.5
    await page.screenshot(path=str(ARTIFACTS / f"dashboard-{viewport}.png"), full_page=True)

    # Every visible tab: no sideways scroll at this width.
    tabs = await page.eval_on_selector_all("#tabs a", "as => as.map(a => a.href)")
    assert any(t.endswith("/customer/usage") for t in tabs)
    for href in tabs:
        await page.goto(href)
        await page.wait_for_load_state("networkidle")
        result = await page.evaluate(NO_SIDEWAYS)
        name = href.rstrip("/").rsplit("/", 1)[-1] or "dashboard"
        await page.screenshot(path=str(ARTIFACTS / f"tab-{name}-{viewport}.png"), full_page=True)
        assert result["scroll"] <= result["client"] and not result["wide"], (href, result)

    # Usage tab: rows equal the database; a day opens into its sessions.
    await page.goto(portal_server.url + "/customer/usage")
    row = page.locator(f'tr.day[data-day="{today}"]')
    await row.wait_for()
    assert await row.get_attribute("data-bytes-out") == str(days[today][1])
    assert await row.get_attribute("data-bytes-in") == str(days[today][0])
    assert await page.locator("tr.day").count() == 30
    if viewport == "phone":  # the chart scrolls on its own, the page does not
        widths = await page.evaluate("(() => { const c = document.getElementById('chart-scroll');"
                                     " return [c.scrollWidth, c.clientWidth]; })()")
        assert widths[0] > widths[1]
    await row.click()
    await page.locator(".sessions-row .session").first.wait_for()
    text = await page.text_content(".sessions-row")
    assert "100.64.0.2" in text and "still online" in text
    await page.screenshot(path=str(ARTIFACTS / f"usage-{viewport}.png"), full_page=True)

    # Today's row follows new usage while the page is open (ingest as the enforcer runs it).
    s.bytes_out += 5 * 10**9
    at = alice.last_update + timedelta(seconds=40)
    await simnas.interim([s], at)
    await ingest.ingest_once(SETTINGS, at)
    expected = (await daily_bytes(alice.username))[today][1]
    await wait_js(page, f"document.querySelector('tr.day[data-day=\"{today}\"]').dataset"
                        f".bytesOut === '{expected}'", 8)

    # Logout: the old token is refused from then on.
    token = await page.evaluate("localStorage.getItem('ispedge.token')")
    await page.click("#logout")
    await page.wait_for_url(portal_server.url + "/customer/login")
    async with httpx.AsyncClient() as client:
        r = await client.get(portal_server.url + "/customer/api/dashboard",
                             headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert errors == []
    await context.close()


SVG_WITH_SCRIPT = b"""<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"
 onload="window.top.pwnedOnload = 1">
<rect width="120" height="40" fill="#f80"/>
<script>window.pwned = 1; try { window.top.pwned = 1; } catch (e) {}
fetch('/customer/api/pwned-by-svg');</script>
</svg>"""


async def test_svg_logo_cannot_run_script(db: str, portal_server: PortalServer, browser) -> None:
    from portal.core import resellers
    from tests.support import seed

    await seed.reseller_with_plans()
    await resellers.brand("acme", logo=SVG_WITH_SCRIPT, logo_filename="logo.svg")
    page = await browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(portal_server.url + "/customer/login")
    logo = page.locator("img.logo")
    await logo.wait_for()
    await wait_js(page, "document.querySelector('img.logo').complete")
    assert await page.evaluate("document.querySelector('img.logo').naturalWidth") == 120
    src = await logo.get_attribute("src")
    # As an <img>, an SVG never runs script; opened directly, the sandbox CSP stops it.
    await page.goto(portal_server.url + src)
    await page.wait_for_timeout(500)
    assert await page.evaluate("window.pwned") is None
    assert await page.evaluate("window.pwnedOnload") is None
    assert not [u for u in requests if "pwned" in u]
    async with httpx.AsyncClient() as client:
        r = await client.get(portal_server.url + src)
    assert r.headers["content-type"] == "image/svg+xml"
    assert "sandbox" in r.headers["content-security-policy"]
    assert "script-src" not in r.headers["content-security-policy"]
    await page.close()


async def test_escaped_full_name_renders_as_text(db: str, portal_server: PortalServer,
                                                 browser) -> None:
    alice, _ = await two_subscribers()
    evil = "<script>window.pwned=1</script><img src=x onerror='window.pwned=2'>"
    await Subscriber.filter(username=alice.username).update(full_name=evil)
    page = await browser.new_page()
    await login(page, portal_server, alice.username, alice.password)
    await wait_js(page, "document.getElementById('greeting').textContent !== ''")
    assert await page.text_content("#greeting") == f"Hello, {evil}"
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("#greeting img").count() == 0
    # Installable: the service worker controls /customer/ and the manifest is linked.
    scope = await page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == portal_server.url + "/customer/"
    manifest = await page.get_attribute("link[rel=manifest]", "href")
    assert manifest == "/customer/manifest.webmanifest"
    await page.close()
