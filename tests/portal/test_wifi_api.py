"""The WiFi tab's API against the real portal process and the GenieACS NBI emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from portal.core.wifi import service
from portal.demo.nbi_emulator import FakeDevice, GenieAcsEmulator, tr098_params, tr181_params
from portal.store.models import AuditLog, WifiTask
from tests.support import seed
from tests.support.portal import PortalServer, free_port

SSID_24 = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"
KEY_24 = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.PreSharedKey.1.KeyPassphrase"
PASSPHRASE = "Sup3r-Secret-Phrase-77"


@pytest.fixture
def acs() -> Iterator[GenieAcsEmulator]:
    with GenieAcsEmulator(credentials=("nbi", "nbi-pass")) as emulator:
        emulator.add_device(FakeDevice("ALICE-DEV", tr098_params("alice@x.net"),
                                       tags=["alice@x.net"]))
        emulator.add_device(FakeDevice("BOB-DEV", tr181_params("bob@x.net"), tags=["bob@x.net"],
                                       online=False, serial="SNBOB"))
        yield emulator


@pytest.fixture
async def subs(db: str, acs: GenieAcsEmulator) -> None:
    await seed.reseller_with_plans()
    await seed.reseller_with_plans("other")
    await seed.subscriber("alice@x.net", "alice-pw")
    await seed.subscriber("bob@x.net", "bob-pw")
    await seed.subscriber("carol@x.net", "carol-pw", reseller="other")
    await service.configure("acme", acs.url, "nbi", "nbi-pass", "tag", 3000)


def call(server: PortalServer, token: str, method: str, path: str, body: object = None):
    with server.client() as c:
        return c.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})


def login(server: PortalServer, who: str) -> str:
    return server.login(f"{who}@x.net", f"{who}-pw")


async def test_overview_shows_router_and_ssids(subs: None, portal_server: PortalServer):
    r = call(portal_server, login(portal_server, "alice"), "GET", "/customer/api/wifi")
    assert r.status_code == 200, r.text
    device = r.json()["device"]
    assert device["model"] == "HG8245H" and device["serial"] == "SN0001"
    assert device["last_contact"].startswith("2026-11-27T10:00")
    assert [(n["band"], n["ssid"]) for n in device["networks"]] == [("2.4", "Home-2G"),
                                                                    ("5", "Home-5G")]
    assert "id" not in device  # the ACS's device id is ours, not the customer's
    me = call(portal_server, login(portal_server, "alice"), "GET", "/customer/api/me").json()
    assert "wifi" in [t["name"] for t in me["tabs"]]


async def test_tab_hidden_and_api_403_without_an_acs(subs: None, portal_server: PortalServer):
    token = login(portal_server, "carol")
    me = call(portal_server, token, "GET", "/customer/api/me").json()
    assert "wifi" not in [t["name"] for t in me["tabs"]]
    for method, path in (("GET", "/customer/api/wifi"), ("POST", "/customer/api/wifi/reboot"),
                         ("POST", "/customer/api/wifi/changes"),
                         ("GET", "/customer/api/wifi/tasks/1")):
        r = call(portal_server, token, method, path, {"band": "2.4", "ssid": "x"})
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "feature_disabled"


async def test_change_on_an_online_router_is_done(subs: None, portal_server: PortalServer,
                                                  acs: GenieAcsEmulator):
    token = login(portal_server, "alice")
    r = call(portal_server, token, "POST", "/customer/api/wifi/changes",
             {"band": "2.4", "ssid": "Café Net", "passphrase": PASSPHRASE})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "done"
    assert acs.devices["ALICE-DEV"].params[SSID_24] == "Café Net"
    assert acs.devices["ALICE-DEV"].params[KEY_24] == PASSPHRASE
    # Only the two WiFi parameters of that band, nothing else on the router.
    [task] = acs.posted_tasks()
    assert [p[0] for p in task["parameterValues"]] == [SSID_24, KEY_24]
    again = call(portal_server, token, "GET", "/customer/api/wifi").json()
    assert again["device"]["networks"][0]["ssid"] == "Café Net"
    audit = await AuditLog.get(action="wifi.change")
    detail = json.loads(audit.detail)
    assert audit.actor == "customer:alice@x.net" and audit.username == "alice@x.net"
    assert audit.ip == "127.0.0.1"
    assert detail["ssid"] == "Café Net" and detail["passphrase_changed"] is True
    assert detail["band"] == "2.4" and detail["status"] == "done"


async def test_tr181_offline_router_pending_until_it_connects(subs: None,
                                                              portal_server: PortalServer,
                                                              acs: GenieAcsEmulator):
    token = login(portal_server, "bob")
    r = call(portal_server, token, "POST", "/customer/api/wifi/changes",
             {"band": "5", "passphrase": PASSPHRASE})
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["status"] == "pending" and task["offline"] is True
    assert task["message"] == "will apply when your router next connects"
    [posted] = acs.posted_tasks()
    assert posted["parameterValues"][0][0] == "Device.WiFi.AccessPoint.2.Security.KeyPassphrase"
    poll = call(portal_server, token, "GET", f"/customer/api/wifi/tasks/{task['id']}").json()
    assert poll["status"] == "pending"
    # The ACS refusing us while we poll: still pending, never guessed done.
    acs.credentials = ("someone", "else")
    poll = call(portal_server, token, "GET", f"/customer/api/wifi/tasks/{task['id']}")
    assert poll.status_code == 200 and poll.json()["status"] == "pending"
    acs.credentials = ("nbi", "nbi-pass")
    acs.connect("BOB-DEV")
    poll = call(portal_server, token, "GET", f"/customer/api/wifi/tasks/{task['id']}").json()
    assert poll["status"] == "done" and poll["offline"] is False


async def test_reboot_and_a_refused_change(subs: None, portal_server: PortalServer,
                                           acs: GenieAcsEmulator):
    token = login(portal_server, "alice")
    r = call(portal_server, token, "POST", "/customer/api/wifi/reboot")
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert acs.devices["ALICE-DEV"].reboots == 1
    assert acs.posted_tasks() == [{"name": "reboot"}]
    assert await AuditLog.filter(action="wifi.reboot", username="alice@x.net").count() == 1
    acs.fault_next = True
    r = call(portal_server, token, "POST", "/customer/api/wifi/changes",
             {"band": "5", "ssid": "Nope"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "faulted"
    assert "refused" in r.json()["message"]
    assert (await WifiTask.get(id=r.json()["id"])).status == "faulted"
    poll = call(portal_server, token, "GET", f"/customer/api/wifi/tasks/{r.json()['id']}")
    assert poll.json()["status"] == "faulted"
    assert acs.devices["ALICE-DEV"].params[SSID_24] == "Home-2G"


BAD_CHANGES = [
    ({"band": "2.4", "ssid": "x" * 33}, "invalid_ssid"),
    ({"band": "2.4", "ssid": "é" * 17}, "invalid_ssid"),
    ({"band": "2.4", "ssid": "tab\there"}, "invalid_ssid"),
    ({"band": "2.4", "ssid": "   "}, "invalid_ssid"),  # only spaces (issue 18)
    ({"band": "2.4", "ssid": "ok", "passphrase": "short"}, "invalid_passphrase"),
    ({"band": "2.4", "passphrase": "x" * 64}, "invalid_passphrase"),
    ({"band": "2.4", "passphrase": "naïve-password"}, "invalid_passphrase"),
    ({"band": "2.4", "passphrase": 12345678}, "invalid_passphrase"),
    ({"band": "6", "ssid": "ok"}, "invalid_band"),
    ({"ssid": "ok"}, "invalid_band"),
    ({"band": "2.4"}, "nothing_to_change"),
]


async def test_invalid_input_sends_nothing(subs: None, portal_server: PortalServer,
                                           acs: GenieAcsEmulator):
    token = login(portal_server, "alice")
    for body, code in BAD_CHANGES:
        r = call(portal_server, token, "POST", "/customer/api/wifi/changes", body)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == code, body
    with portal_server.client() as c:
        r = c.post("/customer/api/wifi/changes", content=b"not json",
                   headers={"Authorization": f"Bearer {token}",
                            "Content-Type": "application/json"})
        undeclared = c.post("/customer/api/wifi/changes", content=b'{"ssid": "x"}',
                            headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400
    assert undeclared.status_code == 415  # JSON routes take only application/json
    assert acs.requests == []
    assert await WifiTask.all().count() == 0


async def test_acs_down(subs: None, portal_server: PortalServer):
    await service.configure("acme", f"http://127.0.0.1:{free_port()}", match="tag")
    token = login(portal_server, "alice")
    r = call(portal_server, token, "GET", "/customer/api/wifi")
    assert r.status_code == 503
    assert "cannot be reached" in r.json()["error"]["message"]
    r = call(portal_server, token, "POST", "/customer/api/wifi/reboot")
    assert r.status_code == 503
    r = call(portal_server, token, "POST", "/customer/api/wifi/changes",
             {"band": "2.4", "passphrase": PASSPHRASE})
    assert r.status_code == 503 and PASSPHRASE not in r.text
    assert await WifiTask.all().count() == 0
    assert PASSPHRASE not in json.dumps(await AuditLog.all().values(), default=str)
    assert PASSPHRASE not in portal_server.log()


async def test_slow_acs_times_out_and_nothing_is_recorded_as_done(
        subs: None, portal_server: PortalServer, acs: GenieAcsEmulator):
    await service.configure("acme", acs.url, "nbi", "nbi-pass", "tag", timeout_ms=600)
    token = login(portal_server, "alice")
    acs.delay_s = 0  # the device lookup is quick, the task POST is slow
    original = acs._post_task

    def slow_post(h, device_id, req):  # type: ignore[no-untyped-def]
        import time

        time.sleep(1.2)
        return original(h, device_id, req)

    acs._post_task = slow_post  # type: ignore[method-assign]
    r = call(portal_server, token, "POST", "/customer/api/wifi/changes",
             {"band": "2.4", "ssid": "Slow"})
    assert r.status_code == 503
    assert "in time" in r.json()["error"]["message"]
    [task] = await WifiTask.all()
    assert task.status == "failed" and task.status != "done"
    assert "nothing was changed" in task.message
    audit = json.loads((await AuditLog.get(action="wifi.change")).detail)
    assert audit["status"] == "failed"


async def test_no_router_found_and_acs_refusing_us(subs: None, portal_server: PortalServer,
                                                    acs: GenieAcsEmulator):
    token = login(portal_server, "alice")
    acs.devices.pop("ALICE-DEV")
    r = call(portal_server, token, "GET", "/customer/api/wifi")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "no_router"
    assert call(portal_server, token, "POST", "/customer/api/wifi/reboot").status_code == 404
    await service.configure("acme", acs.url, "nbi", "wrong-password", "tag", 3000)
    r = call(portal_server, token, "GET", "/customer/api/wifi")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "acs_error"
    assert "credentials" in r.json()["error"]["message"]
    assert "wrong-password" not in r.text
    assert await WifiTask.all().count() == 0


async def test_match_by_reported_username(subs: None, portal_server: PortalServer,
                                          acs: GenieAcsEmulator):
    acs.devices["ALICE-DEV"].tags.clear()
    token = login(portal_server, "alice")
    assert call(portal_server, token, "GET", "/customer/api/wifi").status_code == 404
    await service.configure("acme", acs.url, "nbi", "nbi-pass", "username", 3000)
    r = call(portal_server, token, "GET", "/customer/api/wifi")
    assert r.status_code == 200 and r.json()["device"]["serial"] == "SN0001"


async def test_rate_limit_ten_changes_per_hour(subs: None, portal_server: PortalServer,
                                               acs: GenieAcsEmulator):
    token = login(portal_server, "alice")
    for i in range(10):
        r = call(portal_server, token, "POST", "/customer/api/wifi/changes",
                 {"band": "2.4", "ssid": f"Net{i}"})
        assert r.status_code == 200, (i, r.text)
    eleventh = call(portal_server, token, "POST", "/customer/api/wifi/reboot")
    assert eleventh.status_code == 429
    assert eleventh.json()["error"]["code"] == "rate_limited"
    assert 0 < int(eleventh.headers["Retry-After"]) <= 3601
    assert len(acs.posted_tasks()) == 10
    # Another subscriber has their own allowance.
    assert call(portal_server, login(portal_server, "bob"), "POST",
                "/customer/api/wifi/reboot").status_code == 202
    # The limit lives in the database: changes older than an hour no longer count.
    await WifiTask.filter(band="2.4").update(created_at=datetime.now(UTC) - timedelta(hours=2))
    assert call(portal_server, token, "POST", "/customer/api/wifi/reboot").status_code == 200


async def test_passphrase_is_stored_and_logged_nowhere(subs: None, portal_server: PortalServer,
                                                       acs: GenieAcsEmulator):
    from portal.store import db

    token = login(portal_server, "alice")
    call(portal_server, token, "POST", "/customer/api/wifi/changes",
         {"band": "2.4", "passphrase": PASSPHRASE})
    call(portal_server, token, "POST", "/customer/api/wifi/changes",
         {"band": "5", "ssid": "Bad\nName", "passphrase": PASSPHRASE})
    acs.fault_next = True
    call(portal_server, token, "POST", "/customer/api/wifi/changes",
         {"band": "5", "passphrase": PASSPHRASE})
    assert acs.devices["ALICE-DEV"].params[KEY_24] == PASSPHRASE
    tables = ["wifi_tasks", "audit_log", "change_journal", "acs_servers", "login_failures"]
    for table in tables:
        for row in await db.fetch(f"SELECT * FROM {table}"):
            assert PASSPHRASE not in json.dumps(row, default=str), table
    assert PASSPHRASE not in portal_server.log()


async def test_cross_tenant(subs: None, portal_server: PortalServer, acs: GenieAcsEmulator):
    alice, bob = login(portal_server, "alice"), login(portal_server, "bob")
    task = call(portal_server, bob, "POST", "/customer/api/wifi/reboot").json()
    # Alice cannot see Bob's task, whatever id she sends.
    r = call(portal_server, alice, "GET", f"/customer/api/wifi/tasks/{task['id']}")
    assert r.status_code == 404
    # A body naming another device or subscriber is ignored: only her own router is touched.
    r = call(portal_server, alice, "POST", "/customer/api/wifi/changes",
             {"band": "2.4", "ssid": "Mine", "device_id": "BOB-DEV", "username": "bob@x.net"})
    assert r.status_code == 200
    posted = [req.path for req in acs.requests if req.method == "POST"]
    assert posted == ["/devices/BOB-DEV/tasks", "/devices/ALICE-DEV/tasks"]
    assert "Mine" not in json.dumps(acs.devices["BOB-DEV"].params)
    # An operator token (same signing key, both name claims) is no customer session.
    from tests.portal.test_login_api import key_of

    key = key_of(portal_server)

    now = int(datetime.now(UTC).timestamp())
    forged = jwt.encode({"type": "operator", "operator_username": "alice@x.net",
                         "customer_username": "alice@x.net", "iat": now, "exp": now + 600,
                         "jti": "b" * 32}, key, algorithm="HS256", headers={"kid": key.kid})
    r = call(portal_server, forged, "GET", "/customer/api/wifi")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "wrong_token_type"


async def test_concurrent_changes_never_pass_the_limit(subs: None, acs: GenieAcsEmulator):
    import asyncio

    from portal.errors import TooManyRequests
    from portal.store.models import Subscriber

    sub = await Subscriber.get(username="alice@x.net")
    results = await asyncio.gather(
        *(service.change(sub, "2.4", f"N{i}", None, "10.0.0.1") for i in range(14)),
        return_exceptions=True)
    assert sum(isinstance(r, WifiTask) for r in results) == 10, results
    assert sum(isinstance(r, TooManyRequests) for r in results) == 4, results
    assert await WifiTask.filter(subscriber_id=sub.id).count() == 10
    assert len(acs.posted_tasks()) == 10
