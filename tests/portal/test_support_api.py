"""Support tickets and operators against the real portal process (and the CLI)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from portal.core import operators
from portal.store.models import AuditLog, Ticket
from tests.support import forkserver, seed
from tests.support.portal import PortalServer

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
async def people(db: str) -> None:
    await seed.reseller_with_plans()
    await seed.subscriber("alice@x.net", "alice-pw")
    await seed.subscriber("bob@x.net", "bob-pw")
    await operators.add("olga", "olga-password-1")


def customer(server: PortalServer, who: str) -> str:
    return server.login(f"{who}@x.net", f"{who}-pw")


def operator_login(server: PortalServer, name: str = "olga", password: str = "olga-password-1",
                   ip: str | None = None):
    with server.client() as c:
        return c.post("/operator/api/login", json={"username": name, "password": password},
                      headers={"X-Forwarded-For": ip} if ip else {})


def operator(server: PortalServer) -> str:
    r = operator_login(server)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def call(server: PortalServer, token: str, method: str, path: str, body: object = None):
    with server.client() as c:
        return c.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})


def open_ticket(server: PortalServer, token: str, category: str = "wifi",
                subject: str = "WiFi drops", message: str = "Every evening.") -> dict:
    r = call(server, token, "POST", "/customer/api/tickets",
             {"category": category, "subject": subject, "message": message})
    assert r.status_code == 201, r.text
    return r.json()


async def test_ticket_lifecycle(people: None, portal_server: PortalServer):
    alice, olga = customer(portal_server, "alice"), operator(portal_server)
    t = open_ticket(portal_server, alice)
    assert t["status"] == "open" and t["category_label"] == "WiFi"
    assert [m["body"] for m in t["messages"]] == ["Every evening."]
    assert t["diagnostics"] is None

    listed = call(portal_server, olga, "GET", "/operator/api/tickets?status=open").json()
    assert [(x["id"], x["username"]) for x in listed["tickets"]] == [(t["id"], "alice@x.net")]
    note = call(portal_server, olga, "POST", f"/operator/api/tickets/{t['id']}/reply",
                {"message": "Customer is on an old router", "internal": True}).json()
    assert note["status"] == "open"
    answer = call(portal_server, olga, "POST", f"/operator/api/tickets/{t['id']}/reply",
                  {"message": "Please move the router higher."}).json()
    assert answer["status"] == "answered"
    assert [m["internal"] for m in answer["messages"]] == [False, True, False]

    seen = call(portal_server, alice, "GET", f"/customer/api/tickets/{t['id']}").json()
    assert seen["status"] == "answered"
    bodies = [m["body"] for m in seen["messages"]]
    assert bodies == ["Every evening.", "Please move the router higher."]
    assert "old router" not in json.dumps(seen)  # internal notes never reach the customer
    assert seen["messages"][1]["author"] == "Support" and "olga" not in json.dumps(seen)

    closed = call(portal_server, olga, "POST", f"/operator/api/tickets/{t['id']}/close").json()
    assert closed["status"] == "closed"
    reopened = call(portal_server, alice, "POST", f"/customer/api/tickets/{t['id']}/reply",
                    {"message": "Still dropping"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    mine = call(portal_server, alice, "GET", "/customer/api/tickets").json()["tickets"]
    assert [(x["id"], x["status"]) for x in mine] == [(t["id"], "open")]
    actions = await AuditLog.filter(action__startswith="ticket.").values_list("action", flat=True)
    assert sorted(actions) == sorted(["ticket.open", "ticket.note", "ticket.answer",
                                      "ticket.close", "ticket.reply"])


async def test_ticket_contents_and_slow_internet_diagnostics(people: None,
                                                        portal_server: PortalServer):
    t = open_ticket(portal_server, customer(portal_server, "alice"), "slow", "Slow", "Very slow")
    diag = t["diagnostics"]
    assert diag["plan"] == {"name": "Basic", "down_kbps": 10000, "up_kbps": 5000}
    # No session and no usage yet: offline, full speed (tier 0), nothing missing.
    assert diag["live"]["online"] is False and diag["live"]["down_bps"] == 0
    assert diag["fup"]["tier"] == 0 and diag["fup"]["down_kbps"] == 10000
    assert diag["missing"] == []
    # Text is stored exactly as typed (escaping is the output's job).
    typed = open_ticket(portal_server, customer(portal_server, "alice"), "other", XSS,
                        XSS + "\n  two lines  ")
    assert typed["diagnostics"] is None  # only slow-internet tickets carry them
    stored = await Ticket.get(id=typed["id"])
    assert stored.subject == XSS
    assert typed["messages"][0]["body"] == XSS + "\n  two lines  "
    olga = operator(portal_server)
    assert call(portal_server, olga, "GET",
                f"/operator/api/tickets/{t['id']}").json()["diagnostics"]["plan"]["name"] \
        == "Basic"


BAD_TICKETS = [
    ({"category": "nope", "subject": "s", "message": "m"}, "invalid_category"),
    ({"subject": "s", "message": "m"}, "invalid_category"),
    ({"category": "other", "subject": "", "message": "m"}, "missing_subject"),
    ({"category": "other", "subject": "   ", "message": "m"}, "missing_subject"),
    ({"category": "other", "subject": "s" * 201, "message": "m"}, "subject_too_long"),
    ({"category": "other", "subject": "s", "message": "m" * 5001}, "message_too_long"),
    ({"category": "other", "subject": "s"}, "missing_message"),
    ({"category": "other", "subject": ["s"], "message": "m"}, "missing_subject"),
]


async def test_bad_tickets_and_replies_are_refused(people: None, portal_server: PortalServer):
    alice = customer(portal_server, "alice")
    for body, code in BAD_TICKETS:
        r = call(portal_server, alice, "POST", "/customer/api/tickets", body)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == code, body
    # NUL is refused for every JSON body before any handler (PostgreSQL cannot store it).
    r = call(portal_server, alice, "POST", "/customer/api/tickets",
             {"category": "other", "subject": "nul\x00", "message": "m"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_text"
    assert await Ticket.all().count() == 0
    t = open_ticket(portal_server, alice)
    for body, code in (({"message": ""}, "missing_message"),
                       ({"message": "m" * 5001}, "message_too_long")):
        r = call(portal_server, alice, "POST", f"/customer/api/tickets/{t['id']}/reply", body)
        assert r.status_code == 422 and r.json()["error"]["code"] == code
    olga = operator(portal_server)
    r = call(portal_server, olga, "POST", f"/operator/api/tickets/{t['id']}/reply",
             {"message": "x", "internal": "yes"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_internal"
    assert call(portal_server, olga, "POST", "/operator/api/tickets/99999/close").status_code \
        == 404
    assert call(portal_server, olga, "GET", "/operator/api/tickets?status=bogus").status_code \
        == 422
    assert len(call(portal_server, alice, "GET",
                    f"/customer/api/tickets/{t['id']}").json()["messages"]) == 1


async def test_five_new_tickets_per_hour(people: None, portal_server: PortalServer):
    alice = customer(portal_server, "alice")
    for i in range(5):
        open_ticket(portal_server, alice, subject=f"n{i}")
    sixth = call(portal_server, alice, "POST", "/customer/api/tickets",
                 {"category": "other", "subject": "six", "message": "m"})
    assert sixth.status_code == 429
    assert sixth.json()["error"]["code"] == "rate_limited"
    assert 0 < int(sixth.headers["Retry-After"]) <= 3601
    assert await Ticket.all().count() == 5
    open_ticket(portal_server, customer(portal_server, "bob"))  # bob has his own allowance
    await Ticket.all().update(created_at=datetime.now(UTC) - timedelta(hours=2))
    open_ticket(portal_server, alice, subject="later")


async def test_cross_tenant(people: None, portal_server: PortalServer):
    alice, bob = customer(portal_server, "alice"), customer(portal_server, "bob")
    t = open_ticket(portal_server, alice, subject="Alice private")
    for method, path, body in (("GET", f"/customer/api/tickets/{t['id']}", None),
                               ("POST", f"/customer/api/tickets/{t['id']}/reply",
                                {"message": "hi"})):
        r = call(portal_server, bob, method, path, body)
        assert r.status_code == 404, path
        assert "Alice private" not in r.text
    assert call(portal_server, bob, "GET", "/customer/api/tickets").json()["tickets"] == []
    assert call(portal_server, bob, "GET", "/customer/api/tickets/999999").status_code == 404
    # A body naming someone else is ignored.
    r = call(portal_server, bob, "POST", "/customer/api/tickets",
             {"category": "other", "subject": "x", "message": "y", "username": "alice@x.net"})
    assert (await Ticket.get(id=r.json()["id"]).prefetch_related("subscriber")) \
        .subscriber.username == "bob@x.net"


async def test_reseller_operators_see_only_their_resellers_tickets(
        people: None, portal_server: PortalServer):
    # acme <- cedar (sub-reseller of acme); birch stands alone.
    await seed.reseller_with_plans("cedar", parent="acme")
    await seed.reseller_with_plans("birch")
    await seed.subscriber("carl@x.net", "carl-pw", reseller="cedar")
    await seed.subscriber("bea@x.net", "bea-pw", reseller="birch")
    r = cli(portal_server, "operator", "add", "rita", "--password", "rita-password-1",
            "--reseller", "acme")
    assert r.returncode == 0 and "acme and its sub-resellers" in r.stdout, r.stderr
    assert cli(portal_server, "operator", "add", "cid", "--password", "cid-password-1",
               "--reseller", "cedar").returncode == 0
    unknown = cli(portal_server, "operator", "add", "nobody", "--password", "nobody-pass-1",
                  "--reseller", "no-such")
    assert unknown.returncode == 1 and "no reseller 'no-such'" in unknown.stderr

    alice_t = open_ticket(portal_server, customer(portal_server, "alice"), subject="acme one")
    carl_t = open_ticket(portal_server, customer(portal_server, "carl"), subject="cedar one")
    bea_t = open_ticket(portal_server, customer(portal_server, "bea"), subject="birch one")

    def token_of(name: str) -> str:
        r = operator_login(portal_server, name, f"{name}-password-1")
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    def listed(token: str) -> set[int]:
        r = call(portal_server, token, "GET", "/operator/api/tickets")
        assert r.status_code == 200, r.text
        return {t["id"] for t in r.json()["tickets"]}

    olga, rita, cid = token_of("olga"), token_of("rita"), token_of("cid")
    assert operator_login(portal_server, "rita", "rita-password-1").json()["reseller"] == "acme"
    assert listed(olga) == {alice_t["id"], carl_t["id"], bea_t["id"]}  # the ISP's staff
    assert listed(rita) == {alice_t["id"], carl_t["id"]}  # acme and its sub-reseller
    assert listed(cid) == {carl_t["id"]}
    # Every way to touch someone else's ticket is "not found", as if it did not exist.
    for token, foreign in ((rita, bea_t), (cid, alice_t), (cid, bea_t)):
        for method, path, body in (
                ("GET", f"/operator/api/tickets/{foreign['id']}", None),
                ("POST", f"/operator/api/tickets/{foreign['id']}/reply", {"message": "hi"}),
                ("POST", f"/operator/api/tickets/{foreign['id']}/close", None)):
            r = call(portal_server, token, method, path, body)
            assert r.status_code == 404, (method, path, r.text)
            assert foreign["subject"] not in r.text
    bea_ticket = await Ticket.get(id=bea_t["id"])
    assert bea_ticket.status == "open"  # nothing above changed it
    # Within scope everything works.
    r = call(portal_server, cid, "POST", f"/operator/api/tickets/{carl_t['id']}/reply",
             {"message": "On it"})
    assert r.status_code == 200 and r.json()["status"] == "answered", r.text
    r = call(portal_server, rita, "POST", f"/operator/api/tickets/{carl_t['id']}/close")
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text


def _forge(key: bytes, **claims: object) -> str:
    from tests.portal.test_login_api import kid_header

    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 600, "jti": "c" * 32, **claims}, key,
                      algorithm="HS256", headers=kid_header(key))


async def test_token_types_are_not_interchangeable(people: None, portal_server: PortalServer):
    from tests.portal.test_login_api import key_of

    key = key_of(portal_server)
    alice_token = customer(portal_server, "alice")
    olga_token = operator(portal_server)
    # Real tokens, same signing key, wrong door.
    r = call(portal_server, alice_token, "GET", "/operator/api/tickets")
    assert r.status_code == 401 and r.json()["error"]["code"] == "wrong_token_type"
    r = call(portal_server, olga_token, "GET", "/customer/api/tickets")
    assert r.status_code == 401 and r.json()["error"]["code"] == "wrong_token_type"
    # Forged with both name claims: the type still decides.
    both = {"customer_username": "alice@x.net", "operator_username": "olga"}
    assert call(portal_server, _forge(key, type="customer", **both), "GET",
                "/operator/api/tickets").status_code == 401
    assert call(portal_server, _forge(key, type="operator", **both), "GET",
                "/customer/api/tickets").status_code == 401
    assert call(portal_server, _forge(key, type="operator", **both), "GET",
                "/operator/api/tickets").status_code == 200
    # An operator token for someone who is not an operator.
    r = call(portal_server, _forge(key, type="operator", operator_username="alice@x.net"), "GET",
             "/operator/api/tickets")
    assert r.status_code == 401
    with portal_server.client() as c:
        assert c.get("/operator/api/tickets").status_code == 401


async def test_operator_login_logout_and_lockout(people: None, portal_server: PortalServer):
    from tests.portal.test_login_api import key_of

    r = operator_login(portal_server)
    claims = jwt.decode(r.json()["token"], key_of(portal_server), algorithms=["HS256"])
    assert claims["type"] == "operator" and claims["operator_username"] == "olga"
    assert "customer_username" not in claims
    wrong = operator_login(portal_server, password="nope", ip="10.1.0.1")
    unknown = operator_login(portal_server, name="nobody", password="nope", ip="10.1.0.2")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    token = r.json()["token"]
    assert call(portal_server, token, "POST", "/operator/api/logout").status_code == 200
    r = call(portal_server, token, "GET", "/operator/api/tickets")
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
    # Lockout per source address, as for customers (login_failures, in the database).
    for _ in range(4):
        assert operator_login(portal_server, password="bad", ip="203.0.113.9").status_code == 401
    assert operator_login(portal_server, password="bad", ip="203.0.113.9").status_code == 429
    right = operator_login(portal_server, ip="203.0.113.9")
    assert right.status_code == 429
    assert 14 * 60 <= int(right.headers["Retry-After"]) <= 15 * 60 + 1
    assert operator_login(portal_server, ip="203.0.113.10").status_code == 200


async def test_operator_password_hash():
    stored = operators.hash_password("olga-password-1")
    assert stored.startswith("scrypt$") and "olga-password-1" not in stored
    assert operators.verify_password("olga-password-1", stored)
    assert not operators.verify_password("olga-password-2", stored)
    assert stored != operators.hash_password("olga-password-1")  # salted
    assert not operators.verify_password("x", "garbage")


def cli(server: PortalServer, *args: str, stdin: str | None = None):
    return forkserver.run(list(args), server.env, timeout=60, input=stdin)


async def test_cli_operator_and_tickets(people: None, portal_server: PortalServer):
    r = cli(portal_server, "operator", "add", "pete", "--password", "pete-password-1")
    assert r.returncode == 0, r.stderr
    assert cli(portal_server, "operator", "add", "pete", "--password",
               "pete-password-1").returncode == 1
    short = cli(portal_server, "operator", "add", "shorty", "--password", "short")
    assert short.returncode == 1 and "10-128" in short.stderr
    assert operator_login(portal_server, "pete", "pete-password-1").status_code == 200
    t = open_ticket(portal_server, customer(portal_server, "alice"), subject="CLI please")
    listed = json.loads(cli(portal_server, "ticket", "list", "--json").stdout)
    assert [x["id"] for x in listed] == [t["id"]]
    r = cli(portal_server, "ticket", "reply", str(t["id"]), "-m", "private note", "--internal")
    assert r.returncode == 0, r.stderr
    r = cli(portal_server, "ticket", "reply", str(t["id"]), "-m", "Fixed now", "--operator",
            "pete")
    assert r.returncode == 0, r.stderr
    shown = cli(portal_server, "ticket", "show", str(t["id"]))
    assert "private note" in shown.stdout and "(internal note)" in shown.stdout
    assert "Fixed now" in shown.stdout and "[answered]" in shown.stdout
    assert cli(portal_server, "ticket", "close", str(t["id"])).returncode == 0
    assert json.loads(cli(portal_server, "ticket", "list", "--status", "closed",
                          "--json").stdout)[0]["id"] == t["id"]
    seen = call(portal_server, customer(portal_server, "alice"), "GET",
                f"/customer/api/tickets/{t['id']}").json()
    assert [m["body"] for m in seen["messages"]] == ["Every evening.", "Fixed now"]
    missing = cli(portal_server, "ticket", "show", "99999")
    assert missing.returncode == 1 and "no ticket #99999" in missing.stderr


async def test_cli_reseller_acs(people: None, portal_server: PortalServer):
    from portal.store.models import AcsServer, Reseller

    r = cli(portal_server, "reseller", "acs", "acme", "--url", "http://127.0.0.1:7557",
            "--username", "nbi", "--password", "pw", "--match", "username")
    assert r.returncode == 0, r.stderr
    assert "pw" not in r.stdout
    reseller = await Reseller.get(name="acme")
    server = await AcsServer.get(id=reseller.acs_id)
    assert (server.url, server.username, server.match) == ("http://127.0.0.1:7557", "nbi",
                                                           "username")
    bad = cli(portal_server, "reseller", "acs", "acme", "--url", "ftp://x")
    assert bad.returncode == 1 and "http" in bad.stderr
    assert cli(portal_server, "reseller", "acs", "acme", "--remove").returncode == 0
    assert (await Reseller.get(name="acme")).acs_id is None


async def test_concurrent_new_tickets_never_pass_the_limit(people: None):
    import asyncio

    from portal.core import tickets
    from portal.errors import TooManyRequests
    from portal.store.models import Subscriber

    sub = await Subscriber.get(username="alice@x.net")
    results = await asyncio.gather(
        *(tickets.open_ticket(sub, "other", f"s{i}", "m") for i in range(8)),
        return_exceptions=True)
    assert sum(isinstance(r, Ticket) for r in results) == 5, results
    assert sum(isinstance(r, TooManyRequests) for r in results) == 3, results
    assert await Ticket.filter(subscriber_id=sub.id).count() == 5
