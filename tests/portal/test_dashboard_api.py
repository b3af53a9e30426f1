"""Dashboard, live and usage APIs against the real portal: right numbers, own data only."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from portal.demo import simnas
from portal.store.models import Subscriber, Topup
from portal.usage import ingest, live
from tests.portal.usage_helpers import SETTINGS, daily_bytes, two_subscribers
from tests.support.portal import PortalServer

GB = 10**9
MY_ROUTES = ("/customer/api/dashboard", "/customer/api/live", "/customer/api/usage")


@pytest.fixture
async def lines(db: str):
    return await two_subscribers()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(server: PortalServer, path: str, token: str | None, **kw: object) -> httpx.Response:
    with server.client() as c:
        return c.get(path, headers=auth(token) if token else {}, **kw)  # type: ignore[arg-type]


async def test_dashboard_numbers_equal_the_database(lines, portal_server: PortalServer):
    alice, _ = lines
    token = portal_server.login(alice.username, alice.password)
    d = get(portal_server, "/customer/api/dashboard", token).json()
    days = await daily_bytes(alice.username)
    today = datetime.now(UTC).date().isoformat()
    assert (d["today"]["bytes_in"], d["today"]["bytes_out"]) == days[today]
    sub = await Subscriber.get(username=alice.username)
    first = sub.cycle_start.date().isoformat()
    assert d["cycle"]["bytes_out"] == sum(o for day, (_, o) in days.items() if day >= first)
    assert d["cycle"]["bytes_in"] == sum(i for day, (i, _) in days.items() if day >= first)
    assert d["plan"] == {"id": sub.plan_id, "name": "Basic", "down_kbps": 10000,
                         "up_kbps": 5000, "quota_bytes": 100 * GB, "price_cents": 1500,
                         "period_days": 30}
    assert d["balance_cents"] == 1234 and d["currency"] == "USD"
    assert d["fup"]["tier"] == 0 and d["fup"]["down_kbps"] == 10000
    assert d["cycle"]["limit_bytes"] == 100 * GB
    assert 0 < d["expires_in_seconds"] <= 30 * 86400 and not d["expired"]


async def test_fup_tier_and_topup_bonus_on_the_dashboard(lines, portal_server: PortalServer):
    alice, _ = lines
    s = alice.session
    s.bytes_out += 120 * GB  # past the 100 GB monthly tier of Basic
    now = datetime.now(UTC)
    await simnas.interim([s], now)
    await ingest.ingest_once(SETTINGS, now)
    token = portal_server.login(alice.username, alice.password)
    d = get(portal_server, "/customer/api/dashboard", token).json()
    assert (d["fup"]["tier"], d["fup"]["period"], d["fup"]["down_kbps"],
            d["fup"]["up_kbps"]) == (1, "monthly", 2000, 1000)
    sub = await Subscriber.get(username=alice.username)
    await Topup.create(subscriber_id=sub.id, gb=50, bytes=50 * GB, price_per_gb_cents=100,
                       amount_cents=5000, cycle_start=sub.cycle_start, created_at=now)
    d = get(portal_server, "/customer/api/dashboard", token).json()
    assert d["cycle"]["bonus_bytes"] == 50 * GB
    assert d["fup"]["tier"] == 0 and d["fup"]["down_kbps"] == 10000
    assert d["cycle"]["limit_bytes"] == 150 * GB


async def test_live_rate_from_the_two_latest_interims(lines, portal_server: PortalServer):
    alice, _ = lines
    token = portal_server.login(alice.username, alice.password)
    r = get(portal_server, "/customer/api/live", token).json()
    assert r["online"] is True and r["source"] == "accounting"
    assert (r["down_bps"], r["up_bps"]) == (8_000_000, 800_000)
    assert r["framed_ip"] == "100.64.0.2"
    s = alice.session
    s.bytes_out += 30 * 10**6  # 30 MB in 20 s = 12 Mbit/s
    await simnas.interim([s], alice.last_update + timedelta(seconds=20))
    r = get(portal_server, "/customer/api/live", token).json()
    assert r["down_bps"] == 12_000_000 and r["up_bps"] == 0
    await simnas.stop([s], alice.last_update + timedelta(seconds=30))
    r = get(portal_server, "/customer/api/live", token).json()
    assert (r["online"], r["down_bps"], r["up_bps"]) == (False, 0, 0)


async def test_shaper_source_reads_live_rates(lines, db_url: str, tmp_path):
    from tests.support.portal import start_portal

    alice, bob = lines
    server = start_portal(db_url, tmp_path / "s2", ISPEDGE_LIVE_SOURCE="shaper")
    try:
        token = server.login(alice.username, alice.password)
        assert get(server, "/customer/api/live", token).json()["online"] is False
        await live.publish({alice.username: (5_000_000, 1_000_000),
                            bob.username: (9, 9)}, datetime.now(UTC))
        r = get(server, "/customer/api/live", token).json()
        assert (r["online"], r["down_bps"], r["up_bps"], r["source"]) == (
            True, 5_000_000, 1_000_000, "shaper")
        await live.publish({alice.username: (7, 7)}, datetime.now(UTC) - timedelta(minutes=5))
        assert get(server, "/customer/api/live", token).json()["online"] is False
    finally:
        server.stop()


async def test_usage_history_and_sessions(lines, portal_server: PortalServer):
    alice, _ = lines
    token = portal_server.login(alice.username, alice.password)
    h = get(portal_server, "/customer/api/usage", token).json()
    days = await daily_bytes(alice.username)
    assert len(h["days"]) == 30 and h["days"][-1]["day"] == h["today"]
    for row in h["days"]:
        assert (row["bytes_in"], row["bytes_out"]) == days.get(row["day"], (0, 0))
    s = get(portal_server, f"/customer/api/usage/{h['today']}/sessions", token).json()
    assert [x["framed_ip"] for x in s["sessions"]] == ["100.64.0.2"]
    assert s["sessions"][0]["stop"] is None
    assert s["sessions"][0]["bytes_out"] == alice.session.bytes_out
    for bad in ("2020-01-01", "tomorrow", "2026-13-40", "x" * 10,
                (datetime.now(UTC) + timedelta(days=2)).date().isoformat()):
        r = get(portal_server, f"/customer/api/usage/{bad}/sessions", token)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_day", bad


def timeless(data: dict) -> dict:
    """The answer without the fields that move with the clock between two calls."""
    out = {k: v for k, v in data.items() if k not in ("expires_in_seconds", "sampled_at")}
    if "sessions" in out:
        out["sessions"] = [{k: v for k, v in s.items() if k != "duration_seconds"}
                           for s in out["sessions"]]
    return out


async def test_every_endpoint_returns_only_the_tokens_subscriber(lines,
                                                                 portal_server: PortalServer):
    alice, bob = lines
    token = portal_server.login(alice.username, alice.password)
    today = datetime.now(UTC).date().isoformat()
    paths = [*MY_ROUTES, f"/customer/api/usage/{today}/sessions"]
    own = {p: get(portal_server, p, token).json() for p in paths}
    sub_bob = await Subscriber.get(username=bob.username)
    tricks = [
        {"params": {"username": bob.username}},
        {"params": {"subscriber_id": str(sub_bob.id), "id": str(sub_bob.id)}},
        {"params": {"customer_username": bob.username, "user": bob.username}},
        {"headers": {"X-Username": bob.username, "X-Subscriber-Id": str(sub_bob.id)}},
    ]
    for path in paths:
        for trick in tricks:
            headers = {**auth(token), **trick.get("headers", {})}  # type: ignore[dict-item]
            with portal_server.client() as c:
                r = c.get(path, params=trick.get("params"), headers=headers)
                body = c.request("GET", path, headers={**headers,
                                                       "Content-Type": "application/json"},
                                 content=f'{{"username": "{bob.username}"}}')
            for resp in (r, body):
                assert resp.status_code == 200, (path, trick)
                assert timeless(resp.json()) == timeless(own[path]), (path, trick)
                text = resp.text
                assert "100.64.0.3" not in text and bob.username not in text
                assert str(bob.session.bytes_out) not in text
    # Naming bob in the path is not a route; his name as a "day" is refused.
    for path in (f"/customer/api/usage/{bob.username}/sessions",
                 f"/customer/api/dashboard/{bob.username}", f"/customer/api/live/{sub_bob.id}"):
        r = get(portal_server, path, token)
        assert r.status_code in (400, 404), path
        assert "100.64.0.3" not in r.text


async def test_no_or_revoked_token_is_refused(lines, portal_server: PortalServer):
    alice, _ = lines
    today = datetime.now(UTC).date().isoformat()
    paths = [*MY_ROUTES, f"/customer/api/usage/{today}/sessions"]
    for p in paths:
        r = get(portal_server, p, None)
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_token"
    token = portal_server.login(alice.username, alice.password)
    with portal_server.client() as c:
        assert c.post("/customer/api/logout", headers=auth(token)).status_code == 200
    for p in paths:
        r = get(portal_server, p, token)
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked", p


async def test_security_headers_on_pages_and_api(lines, portal_server: PortalServer):
    alice, _ = lines
    token = portal_server.login(alice.username, alice.password)
    for path, tok in (("/customer/", None), ("/customer/usage", None),
                      ("/customer/login", None), ("/customer/api/dashboard", token),
                      ("/customer/api/live", token), ("/customer/manifest.webmanifest", None)):
        r = get(portal_server, path, tok)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
        assert directives["script-src"] == ["'self'"], path
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert directives["frame-ancestors"] == ["'none'"]
        assert directives["object-src"] == ["'none'"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        if path.startswith("/customer/api/"):
            assert r.headers["cache-control"] == "no-store"
        if r.headers["content-type"].startswith("text/html"):
            assert "<script>" not in r.text and " on" not in r.text.replace("\n", " ") \
                .split("<body")[0][-3:]  # no inline script block in the page


async def test_user_text_is_escaped_in_pages_and_json(lines, portal_server: PortalServer):
    from portal.core import resellers

    alice, _ = lines
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await resellers.brand("acme", company_name=evil[:120], tagline=evil, footer_text=evil)
    page = get(portal_server, "/customer/", None).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    await Subscriber.filter(username=alice.username).update(full_name=evil)
    token = portal_server.login(alice.username, alice.password)
    me = get(portal_server, "/customer/api/me", token)
    assert me.json()["full_name"] == evil
    assert me.headers["content-type"].startswith("application/json")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


async def test_manifest_and_service_worker(lines, portal_server: PortalServer):
    from portal.core import resellers

    await resellers.brand("acme", primary_color="#123abc")
    m = get(portal_server, "/customer/manifest.webmanifest", None)
    assert m.headers["content-type"].startswith("application/manifest+json")
    data = m.json()
    assert (data["scope"], data["start_url"], data["display"]) == (
        "/customer/", "/customer/", "standalone")
    assert data["name"] == "Acme Net" and data["theme_color"] == "#123abc"
    sizes = set()
    for icon in data["icons"]:
        r = get(portal_server, icon["src"], None)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        w, h = png_size(r.content)
        assert icon["sizes"] == f"{w}x{h}"
        sizes.add(w)
    assert sizes == {192, 512}
    assert get(portal_server, "/customer/icons/64.png", None).status_code == 404
    sw = get(portal_server, "/customer/sw.js", None)
    assert sw.headers["content-type"].startswith("text/javascript")
    assert "/customer/api/" in sw.text  # the worker never caches API answers
    page = get(portal_server, "/customer/", None).text
    assert '<link rel="manifest" href="/customer/manifest.webmanifest">' in page


async def test_openapi_documents_every_customer_route(lines, portal_server: PortalServer):
    spec = get(portal_server, "/docs/openapi.json", None).json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "the token from POST /customer/api/login"}
    from portal.config import load_config
    from portal.web.app import create_app

    app = create_app(load_config(environ={"ISPEDGE_GENERAL_STATE_DIR":
                                          str(portal_server.state_dir)}), name="routes_probe")
    routes = {(re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}", "/" + r.path), m)
              for r in app.router.routes for m in r.methods if r.path.startswith("customer/api")}
    documented = spec["paths"]
    public = {"/customer/api/login", "/customer/api/branding"}
    assert {p for p, _ in routes} >= {*MY_ROUTES, "/customer/api/usage/{day}/sessions"}
    for clean, method in routes:
        assert clean in documented, clean
        op = documented[clean][method.lower()]
        if clean not in public:
            assert op.get("security") == [{"bearer": []}], (clean, method)


async def test_fast_bonus_read_agrees_with_billing_rule(db: str):
    from portal.core import dashboard, topups
    from tests.support import seed

    await seed.reseller_with_plans()
    sub = await seed.subscriber("carol@x.net")
    start = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    for n, at in enumerate([start - timedelta(microseconds=1), start,
                            start + timedelta(microseconds=1), start + timedelta(days=3),
                            start.replace(microsecond=500000) + timedelta(hours=5)]):
        await Topup.create(subscriber_id=sub.id, gb=n + 1, bytes=(n + 1) * GB,
                           price_per_gb_cents=100, amount_cents=100, cycle_start=start,
                           created_at=at)
    for since in (start - timedelta(days=1), start, start + timedelta(microseconds=1),
                  start + timedelta(seconds=1), start + timedelta(days=10)):
        assert await dashboard.bonus_bytes(sub.id, since) == \
            await topups.cycle_bonus_bytes(sub.id, since), since
    # A cycle start in the operator's zone (billing.cycle = calendar) is the same instant.
    local = start.astimezone(ZoneInfo("Asia/Beirut"))
    assert await dashboard.bonus_bytes(sub.id, local) == 14 * GB


async def test_dashboard_reads_of_a_missing_plan_or_reseller_fail_clearly(db: str) -> None:
    from tortoise.exceptions import DoesNotExist

    from portal.core import dashboard

    with pytest.raises(DoesNotExist, match="no plan 987654"):
        await dashboard.plan_info(987654)
    with pytest.raises(DoesNotExist, match="no reseller 987654"):
        await dashboard.currency_of(987654)
