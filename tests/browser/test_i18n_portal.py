"""Issue 20: the portal in Arabic and French, in Chromium at 360 px.

One server, one browser. For each language, a subscriber whose browser asks for it
signs in (the first login stores the language), and every tab is checked: <html lang
dir>, the navigation mirrored in Arabic, no horizontal scroll, no catalog miss
(ispedge.missing, recorded by app.js's t()), no English phrase of the catalogs in the
visible text (and in Arabic no Latin word that is not user data or a shared term),
axe-core clean in Arabic, a screenshot of every tab. Then an API error and a PDF
invoice in each language, and the language menu (stored choice, this device's override).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal import i18n
from portal.core.wifi import service
from portal.demo.nbi_emulator import FakeDevice, GenieAcsEmulator, tr098_params
from portal.web.language import CODES
from tests.support import seed
from tests.support.axe import axe_path, serious_violations
from tests.support.browser import browser, login, screenshot
from tests.support.portal import PortalServer
from tests.support.requirements import need_binary

PHONE = {"width": 360, "height": 780}
PASSWORD = "secret-pw"
USERS = {"fr": ("claire@acme.lb", "fr-FR"), "ar": ("rana@acme.lb", "ar-LB")}
TABS = ["dashboard", "usage", "plans", "data", "wifi", "invoices", "support", "parental"]
TICKETS = {"ar": ("الإنترنت بطيء في المساء", "السرعة منخفضة جدًا منذ يومين، أرجو المساعدة."),
           "fr": ("Connexion lente le soir", "Le débit est très faible depuis deux jours.")}

# Visible text of a page, as a reader sees it: text nodes that are rendered, the chosen
# option of each select, placeholders. User data (dir="auto" / dir="ltr": names, SSIDs,
# ticket text, domains, stored invoice lines) is left out: it is not ours to translate.
VISIBLE_TEXT = """() => {
  const out = [];
  const skip = el => el.closest(
    'script, style, body [dir="auto"], body [dir="ltr"], #language-select');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const el = node.parentElement;
    if (!el || skip(el) || !el.checkVisibility({ visibilityProperty: true })) continue;
    const text = node.textContent.trim();
    if (text) out.push(text);
  }
  document.querySelectorAll('select, [placeholder]').forEach(el => {
    if (skip(el) || !el.checkVisibility()) return;
    if (el.tagName === 'SELECT') Array.from(el.options).forEach(o => out.push(o.text));
    else out.push(el.placeholder);
  });
  return out;
}"""


NAV_XS = """Array.from(document.querySelectorAll('#tabs .tab-list > .tab'))
  .filter(e => e.offsetParent).map(e => e.getBoundingClientRect().x)"""


def english_phrases(language: str) -> list[tuple[str, re.Pattern[str]]]:
    """A pattern per English msgid whose translation differs from it, except single
    words the translations themselves use (French "Message", "Total"...)."""
    catalog = i18n.catalog(language)
    translated = " ".join(m.string for m in catalog if isinstance(m.string, str))
    out = []
    for m in catalog:
        if not m.id or isinstance(m.id, tuple) or m.string == m.id:
            continue
        parts = re.split(r"\{\w+\}|%\(\w+\)s", m.id)
        if sum(len(p.strip()) for p in parts) < 4:
            continue  # "{value} GB": nothing to tell apart from a figure
        if len(m.id.split()) == 1 and re.search(rf"\b{re.escape(m.id)}\b", translated):
            continue
        body = ".+?".join(re.escape(p) for p in parts)
        out.append((m.id, re.compile(rf"(?<![A-Za-z]){body}(?![A-Za-z])")))
    return out


def latin_words_allowed() -> set[str]:
    """Latin words an Arabic page may show: those of our own Arabic translations (PDF,
    DNS, SSID...) and the currency sign's letters (US$)."""
    words = set()
    for m in i18n.catalog("ar"):
        if not m.id:
            continue  # the header
        for text in (m.string if isinstance(m.string, tuple) else (m.string,)):
            words |= set(re.findall(r"[A-Za-z]{2,}", text or ""))
    return words | {"US"}


def pdf_text(data: bytes, tmp_path: Path) -> str:
    need_binary("pdftotext")
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def acs() -> Iterator[GenieAcsEmulator]:
    with GenieAcsEmulator(credentials=("nbi", "nbi-pass")) as emulator:
        for username, _ in USERS.values():
            emulator.add_device(FakeDevice(username.upper(), tr098_params(username),
                                           tags=[username]))
        yield emulator


@pytest.fixture
async def home(db: str, acs: GenieAcsEmulator) -> None:
    await seed.reseller_with_plans("acme", allow_plan_change=True, price_per_gb="1.50",
                                   parental_enabled=True)
    for username, _ in USERS.values():
        await seed.subscriber(username, PASSWORD, balance_cents=4250)
    await service.configure("acme", acs.url, "nbi", "nbi-pass", "tag", 3000)


def _ready(page: Any) -> None:
    page.wait_for_selector("body[data-state='ready']", timeout=20000)


def _go(page: Any, tab: str) -> None:
    link = page.locator(f"#tabs .tab-list a[data-tab='{tab}']")
    if link.is_visible():
        link.click()
    else:
        page.click("#more-button")
        page.locator(f"#more-sheet a[data-tab='{tab}']").click()
    page.wait_for_url("**/customer/" + ("" if tab == "dashboard" else tab))
    _ready(page)


def _show_more_text(page: Any, tab: str) -> None:
    """Bring the text a tab builds on action into view too (confirmations, threads)."""
    if tab == "data":
        page.click("#buy-button")
        page.wait_for_selector("#confirm:not([hidden])")
    elif tab == "plans":
        page.locator("#plan-list button:not([disabled])").first.click()
        page.wait_for_selector("#confirm:not([hidden])")
        page.wait_for_function("document.getElementById('confirm-amount').textContent !== ''")
    elif tab == "support":
        page.locator("#tickets .ticket-link").first.click()
        page.wait_for_selector("#thread-card:not([hidden])")
    elif tab == "wifi":
        page.wait_for_selector("#router-facts:not([hidden])")
    elif tab == "parental":
        page.wait_for_selector("body[data-parental-loaded='1']")


def _check_page(page: Any, where: tuple[str, str], rtl: bool,
                phrases: list[tuple[str, re.Pattern[str]]], allowed_latin: set[str]) -> None:
    language = where[0]
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]"
                         ) == [language, "rtl" if rtl else "ltr"], where
    assert page.evaluate("document.documentElement.scrollWidth"
                         " <= document.documentElement.clientWidth"), where
    missing = page.evaluate("window.ispedge.missing")
    assert missing == [], (where, missing)
    texts = page.evaluate(VISIBLE_TEXT)
    assert texts, where
    english = [(msgid, text) for text in texts for msgid, pattern in phrases
               if pattern.search(text)]
    assert not english, (where, english)
    if rtl:
        latin = {w for text in texts for w in re.findall(r"[A-Za-z]{2,}", text)}
        assert latin <= allowed_latin, (where, latin - allowed_latin)


def _seed_documents(server: PortalServer) -> None:
    """An invoice and a ticket in their language for each subscriber (API, no language
    header: nothing is stored before the browser's first login)."""
    with server.client() as c:
        for language, (username, _) in USERS.items():
            h = {"Authorization": f"Bearer {server.login(username, PASSWORD)}"}
            assert c.post("/customer/api/data/buy", json={"gb": 2}, headers=h).status_code == 200
            subject, message = TICKETS[language]
            r = c.post("/customer/api/tickets", headers=h, json={
                "category": "slow", "subject": subject, "message": message})
            assert r.status_code == 201, r.text


def test_portal_in_arabic_and_french(home, portal_server: PortalServer, tmp_path: Path) -> None:
    axe_path()  # missing axe-core is a skip here, a failure in CI (ISPEDGE_NO_SKIP)
    _seed_documents(portal_server)
    allowed_latin = latin_words_allowed()
    problems: list[str] = []
    with browser() as b:
        for language, (username, locale) in USERS.items():
            rtl = language in i18n.RTL
            phrases = english_phrases(language)
            # bypass_csp only so the test can inject axe-core; the portal's CSP is unchanged
            context = b.new_context(viewport=PHONE, locale=locale, bypass_csp=True)
            page = context.new_page()
            page.on("pageerror", lambda e: problems.append(f"pageerror {e}"))
            page.on("console", lambda m: problems.append(m.text)
                    if m.type == "error" and "Failed to load resource" not in m.text else None)
            login(page, portal_server.url, username, PASSWORD)
            _ready(page)
            for tab in TABS:
                _go(page, tab)
                _show_more_text(page, tab)
                where = (language, tab)
                _check_page(page, where, rtl, phrases, allowed_latin)
                # the bottom bar runs right to left in Arabic
                xs = page.evaluate(NAV_XS)
                assert len(xs) >= 4 and xs == sorted(xs, reverse=rtl), (where, xs)
                screenshot(page, f"i18n-{language}-{tab}-360")
                if rtl:
                    found = serious_violations(page)
                    assert not found, (where, found)
                if tab == "support" and rtl:
                    # a ticket in Arabic reads right to left (dir="auto" on user text)
                    assert page.evaluate("getComputedStyle(document.querySelector("
                                         "'#thread .message-body')).direction") == "rtl"
            # the account menu's page (notifications) too
            page.click("#account-button")
            page.click("#account-notifications")
            page.wait_for_url("**/customer/notifications")
            _ready(page)
            _check_page(page, (language, "notifications"), rtl, phrases, allowed_latin)
            screenshot(page, f"i18n-{language}-notifications-360")
            if rtl:
                assert not serious_violations(page)

            token = page.evaluate("localStorage.getItem('ispedge.token')")
            auth = {"Authorization": f"Bearer {token}"}
            with portal_server.client() as c:
                me = c.get("/customer/api/me", headers=auth).json()
                assert me["language"] == language  # stored at the first login
                # an API error: the stable code, the message in the stored language
                r = c.post("/customer/api/data/buy", json={"gb": 0}, headers=auth)
                err = r.json()["error"]
                assert r.status_code in (400, 422) and err["code"] == "invalid_gb", r.text
                assert err["message"] == i18n.gettext(language, CODES["invalid_gb"]) \
                    != CODES["invalid_gb"], err
                # before sign-in, the browser's language
                r = c.post("/customer/api/login", json={"username": username, "password": "no"},
                           headers={"Accept-Language": locale})
                err = r.json()["error"]
                assert (r.status_code, err["code"]) == (401, "invalid_credentials"), r.text
                assert err["message"] == i18n.gettext(language, "wrong username or password")
                # the PDF invoice in the stored language
                docs = c.get("/customer/api/invoices", headers=auth).json()["invoices"]
                invoice = next(d for d in docs if d["kind"] == "invoice")
                pdf = c.get(f"/customer/api/invoices/{invoice['id']}/pdf", headers=auth)
                assert pdf.status_code == 200
            text = pdf_text(pdf.content, tmp_path)
            # (pdftotext splits Arabic's lam-alef ligature: fragments avoid it)
            expected = {"ar": ["فاتورة ضريبية", "اسم المستخدم", "شاملة الضريبة", "3.00"],
                        "fr": ["Facture", "Date d'émission", "Identifiant",
                               "Sous-total HT", "3,00", "TVA"]}[language]
            for fragment in expected + [invoice["number"]]:
                assert fragment in text, (language, fragment, text)
            assert "Tax invoice" not in text and "Username" not in text, text

            if language == "fr":
                _language_menu(page, portal_server, auth)
            context.close()
    assert not problems, problems


def _language_menu(page: Any, server: PortalServer, auth: dict[str, str]) -> None:
    """This device only: English here, French stays stored; then stored Arabic."""
    def lang() -> list[str]:
        _ready(page)
        return page.evaluate("[document.documentElement.lang, document.documentElement.dir]")

    def stored() -> str:
        with server.client() as c:
            return str(c.get("/customer/api/me", headers=auth).json()["language"])

    page.click("#account-button")
    page.check("#language-device")
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert lang() == ["en", "ltr"] and stored() == "fr"
    assert page.evaluate("window.ispedge.missing") == []
    screenshot(page, "i18n-device-override-en-360")
    # the API's messages follow the device too (the portal's own X-Portal-Language)
    status = page.evaluate("""async () => (await window.ispedge.api('/customer/api/data/buy',
        { method: 'POST', body: { gb: 0 } })).data.error.message""")
    assert status.startswith("gb must be a whole number"), status
    page.click("#account-button")
    with page.expect_navigation():
        page.uncheck("#language-device")
    assert lang() == ["fr", "ltr"]
    page.click("#account-button")
    with page.expect_navigation():
        page.select_option("#language-select", "ar")
    assert lang() == ["ar", "rtl"] and stored() == "ar"
    with httpx.Client(base_url=server.url) as c:
        r = c.put("/customer/api/me/language", json={"language": "de"}, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_language"
