"""Notification preferences: reached from the account menu (not a tab) on a phone, saved
and kept, axe-core clean; the API refuses bad quiet hours and non-https push endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.store import db as portal_db
from tests.notifier.sinks import Browser
from tests.support import seed
from tests.support.axe import serious_violations
from tests.support.browser import PHONE, browser, login, no_horizontal_scroll, screenshot
from tests.support.portal import PortalServer, start_portal


async def _home(url: str) -> None:
    from portal.core import subscribers
    from portal.store import migrations

    await portal_db.open_db(url)
    try:
        await migrations.upgrade()
        await seed.reseller_with_plans("acme")
        await subscribers.add_subscriber("maya@acme.net", "maya-pass", "acme", "Basic",
                                         full_name="Maya", email="maya@home.example",
                                         phone="+96170111222")
        await portal_db.execute(
            "INSERT INTO notification_outbox (username, event, channel, target, dedup_key,"
            " subject, body, state, attempts, next_try_at, created_at, sent_at)"
            " VALUES (?, 'receipt', 'email', 'maya@home.example', 'k1', 'Receipt', 'b', 'sent',"
            " 1, 0, 1700000000, 1700000001)", ["maya@acme.net"])
    finally:
        await portal_db.close_db()


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[PortalServer]:
    """SQLite only (no `db_url`: not run again on PostgreSQL): the page and its API are
    the same on both; the preferences' storage runs on both in tests/notifier."""
    url = f"sqlite://{tmp_path / 'ispedge.db'}"
    asyncio.run(_home(url))
    server = start_portal(url, tmp_path / "state", ISPEDGE_NOTIFIER_SMTP_HOST="127.0.0.1",
                          ISPEDGE_NOTIFIER_SMTP_FROM="noc@acme.example")
    try:
        yield server
    finally:
        server.stop()


def test_preferences_from_the_account_menu_on_a_phone(portal: PortalServer) -> None:
    token = portal.login("maya@acme.net", "maya-pass")
    with portal.client(headers={"Authorization": f"Bearer {token}"}) as c:
        first = c.get("/customer/api/notifications").json()
        assert first["preferences"] == {"email": True, "sms": True, "push": True,
                                        "quiet_start": "", "quiet_end": ""}
        assert first["channels"] == {"email": True, "sms": False, "push": True}
        assert len(first["push_key"]) == 87 and first["browsers"] == 0
        assert [(n["event"], n["state"]) for n in first["log"]] == [("receipt", "sent")]
        for bad in ({"quiet_start": "22:00"}, {"quiet_start": "25:00", "quiet_end": "07:00"},
                    {"email": "yes"}, {"sms": None}, {"colour": "red"}, []):
            r = c.put("/customer/api/notifications/preferences", json=bad)
            assert r.status_code == 400, (bad, r.text)
        for endpoint in ("http://push.example/x", "https://u:p@push.example/x", "ftp://x/y",
                         "https:///nohost", "https://push.example/\r\nX: y"):
            r = c.post("/customer/api/notifications/push",
                       json={"endpoint": endpoint, "keys": Browser().keys()})
            assert r.status_code == 400, (endpoint, r.text)
        r = c.post("/customer/api/notifications/push",
                   json={"endpoint": "https://push.example/abc", "keys": {"p256dh": "AAAA",
                                                                          "auth": "BBBB"}})
        assert r.status_code == 400
        r = c.post("/customer/api/notifications/push",
                   json={"endpoint": "https://push.example/abc", "keys": Browser().keys()})
        assert r.status_code == 201 and r.json()["browsers"] == 1
        assert c.get("/customer/notifications").status_code == 200
        me = c.get("/customer/api/me").json()
        assert "notifications" not in [t["name"] for t in me["tabs"]]  # not a ninth tab

    with browser() as b:
        context = b.new_context(viewport=PHONE, bypass_csp=True)  # only to inject axe-core
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        login(page, portal.url, "maya@acme.net", "maya-pass")
        page.click("#account-menu summary")
        page.click("#account-notifications")
        page.wait_for_url("**/customer/notifications")
        page.wait_for_selector("#log li")
        assert "Receipt" in page.text_content("#log")
        assert page.is_checked("#pref-email") and not page.is_enabled("#pref-sms")
        assert "maya@home.example" in page.text_content("#email-address")
        page.click("#pref-email")  # off
        page.fill("#quiet-start", "22:00")
        page.fill("#quiet-end", "07:30")
        page.click("#prefs-save")
        page.wait_for_selector("#prefs-done:not([hidden])")
        page.reload()
        page.wait_for_selector("#log li")
        assert not page.is_checked("#pref-email")
        assert page.input_value("#quiet-start") == "22:00"
        assert page.input_value("#quiet-end") == "07:30"
        assert errors == [], errors
        page.fill("#quiet-end", "")  # refused (400): said on the page
        page.click("#prefs-save")
        page.wait_for_selector("#prefs-error:not([hidden])")
        assert "both a start and an end" in page.text_content("#prefs-error")
        assert no_horizontal_scroll(page)
        assert serious_violations(page) == []
        screenshot(page, "notifications-360")
        context.close()

    with portal.client(headers={"Authorization": f"Bearer {token}"}) as c:
        saved = c.get("/customer/api/notifications").json()["preferences"]
    assert saved == {"email": False, "sms": True, "push": True, "quiet_start": "22:00",
                     "quiet_end": "07:30"}
