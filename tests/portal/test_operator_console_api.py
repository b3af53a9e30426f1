"""Issue 21: the operator console's API against one real portal process: reseller
scope (404 across resellers in search, pages, actions, problems), roles (support is
read-only), Idempotency-Keys (a double click or a retry never acts twice), TOTP (a
reused code is refused, code failures count toward the lockout, reset-totp)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from portal.cli.registry import COMMANDS
from portal.config import load_config
from portal.core import tickets
from portal.core.auth import totp
from portal.store import db
from portal.store.models import Subscriber
from portal.store.radacct import AcctSession, insert_sessions
from tests.support import seed
from tests.support.moduledb import module_db, run_with_db
from tests.support.portal import PortalServer, start_portal

pytestmark = pytest.mark.db
from portal.main import build_parser  # noqa: E402  (registers every command)

PW = "operator-pass-1"


async def _seed() -> dict[str, str]:
    now = datetime.now(UTC)
    await seed.reseller_with_plans("acme")
    await seed.reseller_with_plans("cedar", parent="acme")
    await seed.subscriber("ann@acme.net", "ann-pw", "acme", balance_cents=1000)
    cy = await seed.subscriber("cy@cedar.net", "cy-pw", "cedar")
    cy.phone = "+961 70 123 456"
    await cy.save(update_fields=["phone"])
    secret = await seed.console_operators(PW)
    ann = await Subscriber.get(username="ann@acme.net")
    old = await tickets.open_ticket(ann, "wifi", "Old one", "still broken",
                                    now=now - timedelta(hours=30))
    await tickets.open_ticket(cy, "other", "Cedar question", "hello")
    await insert_sessions([AcctSession("cy@cedar.net", "s1", "10.255.0.1", now, now, None,
                                       0, 0, framed_ip="100.64.1.7")])
    for user in ("ann@acme.net", "cy@cedar.net"):
        await db.execute(
            "INSERT INTO enforcement_state (username, target, desired_action,"
            " desired_down_kbps, desired_up_kbps, reason, state, attempts, last_error,"
            " updated_at) VALUES (?, 'nas:10.255.0.1', 'rate', 10000, 5000, 'plan', 'failed',"
            " 3, 'timeout', ?)", [user, time.time()])
    facts = {"secret": secret, "old_ticket": str(old.id)}
    for name, user, state, error in (("lost", "ann@acme.net", "unknown", "sent, no answer"),
                                     ("queued", "ann@acme.net", "pending", ""),
                                     ("cy_failed", "cy@cedar.net", "failed", "550 no mailbox")):
        made = await db.fetch(
            "INSERT INTO notification_outbox (username, event, channel, target, dedup_key,"
            " subject, body, state, attempts, last_error, next_try_at, created_at)"
            " VALUES (?, 'expiry_soon', 'email', ?, ?, 'Your plan expires', 'Hello', ?, 2, ?,"
            " ?, ?) RETURNING id", [user, user, f"seed:{name}", state, error,
                                   time.time() + 3600, time.time()])
        facts[name] = str(made[0]["id"])
    return facts


@pytest.fixture(scope="module")
def world(db_template: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[PortalServer, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("console-api")
    with module_db(db_template, folder) as url:
        facts = run_with_db(url, _seed)
        assert isinstance(facts, dict)
        server = start_portal(url, folder / "state")
        try:
            yield server, facts
        finally:
            server.stop()


@pytest.fixture(scope="module")
def server(world: tuple[PortalServer, dict[str, str]]) -> PortalServer:
    return world[0]


_tokens: dict[str, str] = {}


def login(server: PortalServer, name: str, code: str = "", ip: str = "10.1.0.1"
          ) -> httpx.Response:
    """An operator login as the console makes it: past the portal's password-check
    budget (4 a second, bursts of 10; operators.ScryptBudget) the answer is 429
    `login_busy` + Retry-After, not counted as an attempt, and the console tries again
    then. This module's tests log in often enough to meet it (CI, twice)."""
    with server.client() as c:
        for _ in range(10):
            r = c.post("/operator/api/login", json={"username": name, "password": PW,
                                                    "code": code},
                       headers={"X-Forwarded-For": ip})
            if r.status_code != 429 or r.json()["error"]["code"] != "login_busy":
                return r
            time.sleep(float(r.headers["Retry-After"]))
        return r


def token(server: PortalServer, name: str) -> str:
    if name not in _tokens:
        r = login(server, name)
        assert r.status_code == 200, r.text
        _tokens[name] = r.json()["token"]
    return _tokens[name]


def call(server: PortalServer, who: str, method: str, path: str, body: object = None,
         key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token(server, who)}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    with server.client() as c:
        return c.request(method, path, json=body, headers=headers)


ANN = "/operator/api/subscribers/ann@acme.net"
CY = "/operator/api/subscribers/cy@cedar.net"


def test_sub_reseller_operator_gets_404_for_the_parents_subscribers(server: PortalServer):
    assert call(server, "cedarop", "GET", ANN).status_code == 404
    assert call(server, "cedarop", "GET", ANN + "/audit").status_code == 404
    r = call(server, "cedarop", "POST", ANN + "/actions/credit", {"amount": "5"}, key="k1")
    assert r.status_code == 404
    assert call(server, "cedarop", "GET", "/operator/api/subscribers?q=ann").json() == \
        {"subscribers": []}
    # Its own reseller's subscriber: found by name, phone and current IP.
    for q in ("cy@", "70 123", "100.64.1.7", "CEDAR.NET"):
        found = call(server, "cedarop", "GET", f"/operator/api/subscribers?q={q}").json()
        assert [s["username"] for s in found["subscribers"]] == ["cy@cedar.net"], q
    view = call(server, "cedarop", "GET", CY).json()
    assert view["sessions"][0]["address"] == "100.64.1.7"
    assert view["enforcement"][0]["last_error"] == "timeout"
    listed = call(server, "cedarop", "GET", "/operator/api/tickets").json()["tickets"]
    assert {t["username"] for t in listed} == {"cy@cedar.net"}
    problems = call(server, "cedarop", "GET", "/operator/api/problems").json()["problems"]
    assert {p["username"] for p in problems} == {"cy@cedar.net"}
    # The ISP's staff see both, and LIKE wildcards are text.
    problems = call(server, "boss", "GET", "/operator/api/problems").json()["problems"]
    assert {p["username"] for p in problems} >= {"ann@acme.net", "cy@cedar.net"}
    assert call(server, "boss", "GET", "/operator/api/subscribers?q=%25").json() == \
        {"subscribers": []}


def test_ticket_inbox_filters(world: tuple[PortalServer, dict[str, str]]):
    server, facts = world
    by_reseller = call(server, "boss", "GET", "/operator/api/tickets?reseller=cedar").json()
    assert [t["reseller"] for t in by_reseller["tickets"]] == ["cedar"]
    aged = call(server, "boss", "GET", "/operator/api/tickets?min_age_hours=24").json()
    assert [str(t["id"]) for t in aged["tickets"]] == [facts["old_ticket"]]
    assert call(server, "boss", "GET", "/operator/api/tickets?min_age_hours=x").status_code \
        == 422


def test_support_reads_but_cannot_act(server: PortalServer):
    me = call(server, "helen", "GET", "/operator/api/me").json()
    assert me["role"] == "support" and me["may_act"] is False
    assert call(server, "helen", "GET", ANN).status_code == 200
    for action, body in (("credit", {"amount": "5"}), ("renew", {}), ("sign_out", {}),
                         ("set_status", {"status": "disabled"}), ("set_plan", {"plan_id": 1}),
                         ("set_password", {"password": "helen-sets-this-1"})):
        r = call(server, "helen", "POST", f"{ANN}/actions/{action}", body, key=f"h-{action}")
        assert r.status_code == 403, (action, r.text)
    assert call(server, "boss", "GET", ANN).json()["balance_cents"] == 1000
    assert call(server, "boss", "GET", "/operator/api/me").json()["may_act"] is True


def _audit(server: PortalServer, action: str) -> list[dict]:
    rows = call(server, "boss", "GET", ANN + "/audit").json()["audit"]
    return [r for r in rows if r["action"] == action]


def test_money_actions_act_once_per_key(server: PortalServer):
    before = call(server, "boss", "GET", ANN).json()
    # A double click: the same key twice at once, then a retry.
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: call(server, "boss", "POST", ANN + "/actions/credit",
                                               {"amount": "12.50", "reference": "cash"},
                                               key="credit-1"), range(4)))
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert sorted(r.json()["replayed"] for r in answers) == [False, True, True, True]
    assert {r.json()["balance_cents"] for r in answers} == {before["balance_cents"] + 1250}
    again = call(server, "boss", "POST", ANN + "/actions/credit",
                 {"amount": "12.50", "reference": "cash"}, key="credit-1")
    assert again.json()["replayed"] is True
    after = call(server, "boss", "GET", ANN).json()
    assert after["balance_cents"] == before["balance_cents"] + 1250
    credits = [e for e in after["wallet"]["entries"] if e["kind"] == "credit"]
    assert len(credits) == len([e for e in before["wallet"]["entries"]
                                if e["kind"] == "credit"]) + 1
    assert [a["actor"] for a in _audit(server, "wallet.credit")][:1] == ["operator:boss"]
    assert len([a for a in _audit(server, "wallet.credit") if a["actor"] == "operator:boss"]) \
        == 1
    # The key belongs to that request: another body with it is refused.
    r = call(server, "boss", "POST", ANN + "/actions/credit", {"amount": "99"}, key="credit-1")
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    # Renew from the wallet, clicked twice: one renewal, one invoice.
    renew = [call(server, "boss", "POST", ANN + "/actions/renew", {"paid_by": "wallet"},
                  key="renew-1") for _ in range(2)]
    assert [r.json()["replayed"] for r in renew] == [False, True], renew[0].text
    view = call(server, "boss", "GET", ANN).json()
    assert view["balance_cents"] == after["balance_cents"] - 1500
    assert view["next_cycle"] is not None
    assert len([a for a in _audit(server, "subscriber.renew")
                if a["actor"] == "operator:boss"]) == 1
    # Bad input is a 4xx, never a 500.
    for action, body in (("credit", {"amount": "-1"}), ("credit", {"amount": True}),
                         ("set_plan", {"plan_id": "x"}), ("set_status", {"status": "gone"}),
                         ("set_password", {"password": ""}), ("explode", {})):
        r = call(server, "boss", "POST", f"{ANN}/actions/{action}", body, key=f"bad-{action}")
        assert 400 <= r.status_code < 500, (action, r.text)


def test_credit_typed_with_arabic_indic_digits(server: PortalServer):
    """Issue 19: an amount typed on an Arabic or Persian keyboard is the same number; more
    decimals than the currency has are refused, nothing credited."""
    before = call(server, "boss", "GET", ANN).json()["balance_cents"]
    r = call(server, "boss", "POST", ANN + "/actions/credit",
             {"amount": "١٢٫٥٠", "reference": "cash"}, key="arabic-1")
    assert r.status_code == 200 and r.json()["balance_cents"] == before + 1250, r.text
    r = call(server, "boss", "POST", ANN + "/actions/credit", {"amount": "۳"}, key="persian-1")
    assert r.status_code == 200 and r.json()["balance_cents"] == before + 1550, r.text
    r = call(server, "boss", "POST", ANN + "/actions/credit", {"amount": "١٫٢٣٤"}, key="dp-1")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_amount", r.text
    assert call(server, "boss", "GET", ANN).json()["balance_cents"] == before + 1550

def test_other_actions_use_the_cli_use_cases(server: PortalServer):
    plans = call(server, "boss", "GET", CY).json()["plans"]
    fast = next(p for p in plans if p["name"] == "Fast")
    r = call(server, "boss", "POST", CY + "/actions/set_plan", {"plan_id": fast["id"]}, key="p1")
    assert r.status_code == 200 and r.json()["plan"] == "Fast"
    # A plan of another reseller is not this subscriber's to take.
    acme_plans = call(server, "boss", "GET", ANN).json()["plans"]
    r = call(server, "boss", "POST", CY + "/actions/set_plan",
             {"plan_id": acme_plans[0]["id"]}, key="p2")
    assert r.status_code == 404
    customer = server.login("cy@cedar.net", "cy-pw")
    r = call(server, "boss", "POST", CY + "/actions/sign_out", {}, key="so1")
    assert r.status_code == 200
    with server.client() as c:
        assert c.get("/customer/api/me", headers={"Authorization": f"Bearer {customer}"}
                     ).status_code == 401
    r = call(server, "boss", "POST", CY + "/actions/set_password", {"password": "new-cy-pw"},
             key="pw1")
    assert r.status_code == 200
    server.login("cy@cedar.net", "new-cy-pw")
    r = call(server, "boss", "POST", CY + "/actions/set_status", {"status": "disabled"},
             key="st1")
    assert r.status_code == 200
    assert call(server, "boss", "GET", CY).json()["status"] == "disabled"
    actions = {a["action"]: a["actor"] for a in
               call(server, "boss", "GET", CY + "/audit").json()["audit"]}
    for action in ("subscriber.set_plan", "subscriber.sign_out", "subscriber.set_password",
                   "subscriber.set_status"):
        assert actions[action] == "operator:boss", action


def test_totp_reuse_is_refused_and_failures_lock_out(world: tuple[PortalServer, dict[str, str]],
                                                     capsys: pytest.CaptureFixture[str]):
    server, facts = world
    secret, ip = facts["secret"], "10.7.7.7"
    assert login(server, "tina", ip=ip).status_code == 401  # password right, no code
    step = int(time.time() // totp.STEP_S)
    code = totp.code_at(secret, step)
    assert login(server, "tina", code, ip=ip).status_code == 200
    replay = login(server, "tina", code, ip=ip)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "invalid_credentials"
    wrong = totp.code_at(secret, step - 5)
    assert [login(server, "tina", wrong, ip=ip).status_code for _ in range(3)] == \
        [401, 401, 429]  # the 5th failure (no code, replay, 3 wrong) reaches the tier
    # Locked: even the next valid code is refused from this address.
    assert login(server, "tina", totp.code_at(secret, step + 1), ip=ip).status_code == 429
    # `ispedge operator reset-totp` (the command itself, in-process: a subprocess costs
    # seconds of imports): password only again, from another address.
    args = build_parser().parse_args(["operator", "reset-totp", "tina"])
    config = load_config(environ={"ISPEDGE_DATABASE_URL": server.db_url,
                                  "ISPEDGE_GENERAL_STATE_DIR": str(server.state_dir)})
    assert asyncio.run(COMMANDS["operator reset-totp"](args, config)) == 0
    assert "removed" in capsys.readouterr().out
    assert login(server, "tina", ip="10.7.7.8").status_code == 200


def _me_totp(server: PortalServer, bearer: str, path: str, code: str, ip: str
             ) -> httpx.Response:
    with server.client() as c:
        return c.post(f"/operator/api/me/totp{path}", json={"code": code},
                      headers={"Authorization": f"Bearer {bearer}", "X-Forwarded-For": ip})


def test_totp_enrolled_from_the_console(server: PortalServer):
    """The console's enrollment: the secret is shown (text, otpauth URI, an SVG QR code)
    and pending until a valid code from it; replacing it takes a current code first;
    wrong codes count toward the lockout; audited; other sessions signed out."""
    ip = "10.8.8.8"
    first = login(server, "ed", ip=ip).json()["token"]
    other = login(server, "ed", ip="10.8.8.9").json()["token"]  # another session of ed's
    assert _me_totp(server, first, "/confirm", "123456", ip).status_code == 409
    shown = _me_totp(server, first, "", "", ip)
    assert shown.status_code == 200, shown.text
    secret = shown.json()["secret"]
    assert shown.json()["uri"].startswith("otpauth://totp/") and secret in shown.json()["uri"]
    assert shown.json()["qr_svg"].startswith("<svg") and "<path" in shown.json()["qr_svg"]
    # Pending only: the password alone still signs in, no code is asked.
    assert login(server, "ed", ip=ip).status_code == 200
    now = time.time()
    step = int(now // totp.STEP_S)
    wrong = _me_totp(server, first, "/confirm", totp.code_at(secret, step - 5), ip)
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_code"
    on = _me_totp(server, first, "/confirm", totp.code_at(secret, step), ip)
    assert on.status_code == 200, on.text
    fresh = on.json()["token"]
    # Every older token is refused; the console goes on with the one it was given.
    for old in (first, other):
        with server.client() as c:
            assert c.get("/operator/api/me", headers={"Authorization": f"Bearer {old}"}
                         ).status_code == 401
    with server.client() as c:
        me = c.get("/operator/api/me", headers={"Authorization": f"Bearer {fresh}"})
    assert me.status_code == 200 and me.json()["totp"] is True
    # On: a login needs a code now; the code that turned it on cannot sign in again.
    assert login(server, "ed", ip=ip).status_code == 401
    assert login(server, "ed", totp.code_at(secret, step), ip=ip).status_code == 401
    # Replacing it: no code (not a guess: not counted), a wrong one, a valid current one.
    nocode = _me_totp(server, fresh, "", "", ip)
    assert nocode.status_code == 422 and nocode.json()["error"]["code"] == "code_required"
    assert _me_totp(server, fresh, "", totp.code_at(secret, step - 7), ip).status_code == 422
    replaced = _me_totp(server, fresh, "", totp.code_at(secret, step + 1), ip)
    assert replaced.status_code == 200, replaced.text
    new_secret = replaced.json()["secret"]
    assert new_secret != secret
    # That code is spent: reused, it is the 5th failure from this address (a wrong
    # confirm, two logins, a wrong code, this): the lockout tier, 429 even for a valid
    # code from here, at the console as at the login.
    reused = _me_totp(server, fresh, "", totp.code_at(secret, step + 1), ip)
    assert reused.status_code == 429, reused.text
    assert _me_totp(server, fresh, "/confirm", totp.code_at(new_secret, step), ip
                    ).status_code == 429
    on = _me_totp(server, fresh, "/confirm", totp.code_at(new_secret, step), "10.8.8.11")
    assert on.status_code == 200, on.text
    assert login(server, "ed", totp.code_at(secret, step + 1), ip="10.8.8.12"
                 ).status_code == 401  # the old app's codes are gone
    signed_in = login(server, "ed", totp.code_at(new_secret, step + 1), ip="10.8.8.12")
    assert signed_in.status_code == 200, signed_in.text
    rows = run_with_db(server.db_url, lambda: db.fetch(
        "SELECT actor, action, detail FROM audit_log WHERE action LIKE 'operator.%_totp'"
        " AND detail LIKE '%\"ed\"%' ORDER BY id"))
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("operator:ed", "operator.begin_totp"), ("operator:ed", "operator.enroll_totp"),
        ("operator:ed", "operator.begin_totp"), ("operator:ed", "operator.enroll_totp")]


def test_notification_log_and_resend(world: tuple[PortalServer, dict[str, str]]):
    """Issue 22 in the console: the log (every role, own scope), Resend through the CLI's
    use case (admins only, once per Idempotency-Key, audited with the operator's name)."""
    server, facts = world
    lost, queued, cy_failed = int(facts["lost"]), int(facts["queued"]), int(facts["cy_failed"])
    log = call(server, "helen", "GET", ANN + "/notifications").json()["notifications"]
    by_id = {n["id"]: n for n in log}
    assert by_id[lost]["state"] == "unknown" and by_id[lost]["attempts"] == 2
    assert by_id[lost]["last_error"] == "sent, no answer"
    assert by_id[lost]["event"] == "expiry_soon" and by_id[lost]["channel"] == "email"
    assert by_id[lost]["created_at"] and by_id[lost]["sent_at"] is None
    assert cy_failed not in by_id
    assert call(server, "boss", "GET", ANN + "/notifications?limit=0").status_code == 422
    # Scope: the parent's subscriber does not exist for a sub-reseller's operator, and a
    # notification of another subscriber is not this one's to resend.
    assert call(server, "cedarop", "GET", ANN + "/notifications").status_code == 404
    r = call(server, "cedarop", "POST", ANN + "/actions/resend", {"notification_id": lost},
             key="n-cedar")
    assert r.status_code == 404
    r = call(server, "boss", "POST", ANN + "/actions/resend", {"notification_id": cy_failed},
             key="n-other")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_such_notification"
    # Role: support reads, never resends.
    r = call(server, "helen", "POST", ANN + "/actions/resend", {"notification_id": lost},
             key="n-helen")
    assert r.status_code == 403
    # A message still on its way is not copied; bad ids are 422.
    r = call(server, "boss", "POST", ANN + "/actions/resend", {"notification_id": queued},
             key="n-queued")
    assert r.status_code == 409 and r.json()["error"]["code"] == "notification_in_flight"
    for bad in ("1", True, 0, None):
        r = call(server, "boss", "POST", ANN + "/actions/resend", {"notification_id": bad},
                 key=f"n-bad-{bad}")
        assert r.status_code == 422, (bad, r.text)
    # Confirmed twice at once with one key: one copy, one audit row by the operator.
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: call(server, "boss", "POST", ANN + "/actions/resend",
                                               {"notification_id": lost}, key="n-1"),
                                range(3)))
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    assert sorted(a.json()["replayed"] for a in answers) == [False, True, True]
    copy = answers[0].json()["copy_id"]
    assert {a.json()["copy_id"] for a in answers} == {copy}
    log = call(server, "boss", "GET", ANN + "/notifications").json()["notifications"]
    copies = [n for n in log if n["resend_of"] == lost]
    assert [(n["id"], n["state"], n["attempts"]) for n in copies] == [(copy, "pending", 0)]
    audit = [a for a in call(server, "boss", "GET", ANN + "/audit").json()["audit"]
             if a["action"] == "notification.resend"]
    assert [a["actor"] for a in audit] == ["operator:boss"]
    assert f"{lost}" in audit[0]["detail"] and f"{copy}" in audit[0]["detail"]
    # The copy is on its way now: resending it is refused like any message in flight.
    r = call(server, "boss", "POST", ANN + "/actions/resend", {"notification_id": copy},
             key="n-2")
    assert r.status_code == 409
