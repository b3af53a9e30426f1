"""Parental tab API against the real portal process and a real database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.store import db as portal_db
from portal.store.models import AuditLog, ChangeJournal, ParentalSettings
from tests.support import seed
from tests.support.portal import PortalServer, start_portal


@pytest.fixture
async def homes(db: str) -> None:
    await seed.reseller_with_plans("acme", parental_enabled=True)
    await seed.reseller_with_plans("plain", parental_enabled=False)
    await seed.subscriber("maya@acme.net", "maya-pass")
    await seed.subscriber("sami@acme.net", "sami-pass")
    await seed.subscriber("nour@plain.net", "nour-pass", reseller="plain")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_change_writes_settings_journal_and_audit_together(homes, portal_server: PortalServer
                                                                 ) -> None:
    token = portal_server.login("maya@acme.net", "maya-pass")
    with portal_server.client(headers={**auth(token), "X-Forwarded-For": "203.0.113.9"}) as c:
        me = c.get("/customer/api/me").json()
        assert "parental" in [t["name"] for t in me["tabs"]]
        first = c.get("/customer/api/parental").json()
        assert first["enabled"] is False and first["recent"] == []
        assert [x["name"] for x in first["categories"]] == [
            "adult", "gambling", "social-media", "doh"]
        r = c.put("/customer/api/parental", json={"categories": {"gambling": True}})
        assert r.status_code == 200, r.text
        after = r.json()
        assert after["enabled"] is True  # a category switched on turns the master on
        assert [x["name"] for x in after["categories"] if x["on"]] == ["gambling"]
        r = c.put("/customer/api/parental", json={"enabled": False})
        assert r.json()["enabled"] is False
        assert [x["name"] for x in r.json()["categories"] if x["on"]] == ["gambling"]
        assert c.get("/customer/api/parental").json()["enabled"] is False
    row = await ParentalSettings.get(subscriber__username="maya@acme.net")
    assert (row.enabled, row.categories) == (False, "gambling")
    entries = await ChangeJournal.filter(kind="parental", username="maya@acme.net").order_by("id")
    assert [json.loads(e.payload) for e in entries] == [
        {"enabled": True, "categories": ["gambling"]},
        {"enabled": False, "categories": ["gambling"]}]
    audits = await AuditLog.filter(action="parental.change").order_by("id")
    assert len(audits) == 2
    assert audits[0].actor == "maya@acme.net" and audits[0].ip == "203.0.113.9"
    assert json.loads(audits[0].detail)["after"] == {"enabled": True, "categories": ["gambling"]}
    # the dns_policy view now says nothing is blocked for maya's sessions (master off)
    assert not await ParentalSettings.filter(subscriber__username="sami@acme.net").exists()


BAD_BODIES = [{}, {"enabled": "yes"}, {"categories": {"weapons": True}},
              {"categories": {"adult": 1}}, {"username": "sami@acme.net", "enabled": True},
              [1, 2]]


async def test_bad_changes_are_refused_and_write_nothing(homes, portal_server: PortalServer
                                                         ) -> None:
    token = portal_server.login("maya@acme.net", "maya-pass")
    journal_before = await ChangeJournal.all().count()
    with portal_server.client(headers=auth(token)) as c:
        for body in BAD_BODIES:
            r = c.put("/customer/api/parental", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"]["code"] in ("invalid_parental_change", "unknown_category",
                                                 "malformed_json")
        r = c.put("/customer/api/parental", content=b"not json",
                  headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
        r = c.put("/customer/api/parental", content=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert await ChangeJournal.all().count() == journal_before
    assert await AuditLog.filter(action="parental.change").count() == 0
    assert await ParentalSettings.all().count() == 0


async def test_reseller_without_parental_gets_403_and_no_tab(homes, portal_server: PortalServer
                                                              ) -> None:
    token = portal_server.login("nour@plain.net", "nour-pass")
    journal_before = await ChangeJournal.all().count()
    with portal_server.client(headers=auth(token)) as c:
        me = c.get("/customer/api/me").json()
        assert "parental" not in [t["name"] for t in me["tabs"]]
        for method, body in (("GET", None), ("PUT", {"enabled": True})):
            r = c.request(method, "/customer/api/parental", json=body)
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "feature_disabled"
        assert c.get("/customer/parental").status_code == 200  # the page shell; its API refuses
    assert await ChangeJournal.all().count() == journal_before
    assert await ParentalSettings.all().count() == 0
    with portal_server.client() as c:
        assert c.get("/customer/api/parental").status_code == 401


async def test_blocked_counts_and_recent_domains_are_the_subscribers_last_seven_days(
        homes, portal_server: PortalServer) -> None:
    now = datetime.now(UTC)
    today = now.date()
    for username, day, category, count in [
        ("maya@acme.net", today, "adult", 4),
        ("maya@acme.net", today - timedelta(days=6), "adult", 1),
        ("maya@acme.net", today - timedelta(days=2), "gambling", 2),
        ("maya@acme.net", today - timedelta(days=7), "gambling", 50),  # outside the window
        ("sami@acme.net", today, "adult", 9),  # someone else
    ]:
        await portal_db.execute("INSERT INTO dns_block_daily (username, day, category, count)"
                                " VALUES (?, ?, ?, ?)", [username, day.isoformat(), category,
                                                         count])
    t = time.time()
    for username, domain, category, at in [
        ("maya@acme.net", "pornhub.com", "adult", t - 60),
        ("maya@acme.net", "www.bet365.com", "gambling", t - 30),
        ("maya@acme.net", "pornhub.com", "adult", t - 3600),
        ("maya@acme.net", "ancient.example", "adult", t - 8 * 86400),
        ("sami@acme.net", "sami-only.example", "adult", t),
    ]:
        await portal_db.execute("INSERT INTO dns_block_recent (username, domain, category,"
                                " blocked_at) VALUES (?, ?, ?, ?)", [username, domain,
                                                                     category, at])
    token = portal_server.login("maya@acme.net", "maya-pass")
    with portal_server.client(headers=auth(token)) as c:
        data = c.get("/customer/api/parental").json()
    assert {x["name"]: x["blocked_7d"] for x in data["categories"]} == {
        "adult": 5, "gambling": 2, "social-media": 0, "doh": 0}
    assert data["blocked_total_7d"] == 7
    assert [r["domain"] for r in data["recent"]] == ["www.bet365.com", "pornhub.com"]
    assert data["since_day"] == (today - timedelta(days=6)).isoformat()


async def test_operator_categories_from_config_can_be_chosen(homes, db_url: str,
                                                             tmp_path: Path) -> None:
    server = start_portal(db_url, tmp_path / "state",
                          ISPEDGE_BLOCKLISTS_EXTRA_CATEGORIES="vpn,malware")
    try:
        token = server.login("maya@acme.net", "maya-pass")
        with server.client(headers=auth(token)) as c:
            names = [x["name"] for x in c.get("/customer/api/parental").json()["categories"]]
            assert names == ["adult", "gambling", "social-media", "doh", "malware", "vpn"]
            r = c.put("/customer/api/parental", json={"categories": {"vpn": True}})
            assert r.status_code == 200, r.text
    finally:
        server.stop()
    row = await ParentalSettings.get(subscriber__username="maya@acme.net")
    assert (row.enabled, row.categories) == (True, "vpn")
