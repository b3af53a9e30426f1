"""Customer login, tokens and logout against the real portal process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.support import seed
from tests.support.portal import PortalServer


@pytest.fixture
async def alice(db: str) -> str:
    await seed.reseller_with_plans()
    await seed.subscriber("Alice@x.net", "correct horse", balance_cents=2500)
    await seed.subscriber("bob@x.net", "bob-pass")
    return "Alice@x.net"


class SigningKey(bytes):
    """The portal's current signing key (bytes, for jwt.encode/decode) and its kid."""

    kid: str


def key_of(server: PortalServer) -> SigningKey:
    from portal.core.auth.keys import KeyRing

    ring = KeyRing.load(server.state_dir / "signing.keys")
    key = SigningKey(ring.current)
    key.kid = ring.current_kid
    return key


def kid_header(key: bytes) -> dict[str, str]:
    """The kid header a token signed with `key` needs (none for a foreign key)."""
    return {"kid": key.kid} if isinstance(key, SigningKey) else {}


async def test_login_returns_seven_day_customer_token(alice: str, portal_server: PortalServer):
    token = portal_server.login("Alice@x.net", "correct horse")
    claims = jwt.decode(token, key_of(portal_server), algorithms=["HS256"])
    assert claims["type"] == "customer"
    assert claims["customer_username"] == "Alice@x.net"
    assert claims["exp"] - claims["iat"] == 7 * 86400
    assert len(claims["jti"]) >= 16
    with portal_server.client() as c:
        me = c.get("/customer/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["username"] == "Alice@x.net"
    assert me.json()["balance_cents"] == 2500
    assert me.json()["plan"]["name"] == "Basic"
    assert "set-cookie" not in {k.lower() for k in me.headers}


async def test_jwt_key_file_is_private(alice: str, portal_server: PortalServer):
    mode = (portal_server.state_dir / "signing.keys").stat().st_mode & 0o777
    assert mode == 0o600


async def test_username_is_case_sensitive(alice: str, portal_server: PortalServer):
    with portal_server.client() as c:
        r = c.post("/customer/api/login", json={"username": "alice@x.net",
                                                "password": "correct horse"})
    assert r.status_code == 401


async def test_unknown_user_and_wrong_password_answer_the_same(alice: str,
                                                               portal_server: PortalServer):
    with portal_server.client() as c:
        wrong = c.post("/customer/api/login", json={"username": "Alice@x.net", "password": "no"},
                       headers={"X-Forwarded-For": "10.9.0.1"})
        unknown = c.post("/customer/api/login", json={"username": "nobody", "password": "no"},
                         headers={"X-Forwarded-For": "10.9.0.2"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_login_sets_no_cookie(alice: str, portal_server: PortalServer):
    with portal_server.client() as c:
        r = c.post("/customer/api/login", json={"username": "Alice@x.net",
                                                "password": "correct horse"})
    assert r.status_code == 200
    assert "set-cookie" not in {k.lower() for k in r.headers}


def _get_me(server: PortalServer, token: str | None, scheme: str = "Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    with server.client() as c:
        return c.get("/customer/api/me", headers=headers)


def _forge(key: bytes, **overrides: object) -> str:
    now = int(time.time())
    claims = {"type": "customer", "customer_username": "Alice@x.net", "iat": now,
              "exp": now + 3600, "jti": "a" * 32}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="HS256", headers=kid_header(key))


async def test_token_rules(alice: str, portal_server: PortalServer):
    key = key_of(portal_server)
    good = _forge(key)
    assert _get_me(portal_server, good).status_code == 200
    cases = {
        "no token": _get_me(portal_server, None),
        "basic scheme": _get_me(portal_server, good, scheme="Basic"),
        "bad signature": _get_me(portal_server, _forge(b"x" * 64)),
        "expired": _get_me(portal_server, _forge(key, iat=int(time.time()) - 8 * 86400,
                                                 exp=int(time.time()) - 60)),
        "admin type": _get_me(portal_server, _forge(key, type="admin")),
        "operator type": _get_me(portal_server, _forge(key, type="operator")),
        "no type": _get_me(portal_server, _forge(key, type=None)),
        "no jti": _get_me(portal_server, _forge(key, jti=None)),
        "no exp": _get_me(portal_server, _forge(key, exp=None)),
        "unknown user": _get_me(portal_server, _forge(key, customer_username="ghost")),
        "garbage": _get_me(portal_server, "not.a.jwt"),
    }
    # alg=none and another algorithm (HS512 with the same key)
    header_none = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    body = good.split(".")[1]
    cases["alg none"] = _get_me(portal_server, f"{header_none}.{body}.")
    cases["HS512"] = _get_me(portal_server, jwt.encode(
        jwt.decode(good, key, algorithms=["HS256"]), key, algorithm="HS512"))
    for name, response in cases.items():
        assert response.status_code == 401, name
        assert "error" in response.json(), name


async def test_logout_revokes_only_that_token(alice: str, portal_server: PortalServer):
    first = portal_server.login("Alice@x.net", "correct horse")
    second = portal_server.login("Alice@x.net", "correct horse")
    with portal_server.client() as c:
        out = c.post("/customer/api/logout", headers={"Authorization": f"Bearer {first}"})
    assert out.status_code == 200
    revoked = _get_me(portal_server, first)
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "token_revoked"
    assert _get_me(portal_server, second).status_code == 200


async def test_revocation_holds_across_portal_restart(alice: str, portal_server: PortalServer,
                                                      tmp_path):
    from tests.support.portal import start_portal

    token = portal_server.login("Alice@x.net", "correct horse")
    with portal_server.client() as c:
        c.post("/customer/api/logout", headers={"Authorization": f"Bearer {token}"})
    portal_server.stop()
    again = start_portal(portal_server.db_url, portal_server.state_dir)
    try:
        assert _get_me(again, token).status_code == 401
    finally:
        again.stop()


async def test_disabled_subscriber_loses_access(alice: str, portal_server: PortalServer):
    from portal.core import subscribers

    token = portal_server.login("Alice@x.net", "correct horse")
    await subscribers.set_status("Alice@x.net", "disabled")
    assert _get_me(portal_server, token).status_code == 401
    with portal_server.client() as c:
        r = c.post("/customer/api/login", json={"username": "Alice@x.net",
                                                "password": "correct horse"})
        # the right password is told the account is disabled (issue 18) ...
        assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"
        assert "token" not in r.json()
        # ... a wrong one gets exactly what a wrong password or an unknown user gets
        wrong = c.post("/customer/api/login", json={"username": "Alice@x.net",
                                                    "password": "not it"})
        unknown = c.post("/customer/api/login", json={"username": "nobody@x.net",
                                                      "password": "not it"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["message"] == "wrong username or password"


async def test_deleted_subscriber_token_is_refused(alice: str, portal_server: PortalServer):
    from portal.store.models import Subscriber, WalletEntry

    token = portal_server.login("bob@x.net", "bob-pass")
    sub = await Subscriber.get(username="bob@x.net")
    await WalletEntry.filter(subscriber=sub).delete()
    await sub.delete()
    assert _get_me(portal_server, token).status_code == 401


def _attempt(server: PortalServer, ip: str, password: str = "wrong"):
    with server.client() as c:
        return c.post("/customer/api/login", json={"username": "Alice@x.net",
                                                   "password": password},
                      headers={"X-Forwarded-For": ip})


async def test_five_failures_lock_the_ip_even_for_the_right_password(
        alice: str, portal_server: PortalServer):
    for _ in range(4):
        assert _attempt(portal_server, "203.0.113.7").status_code == 401
    fifth = _attempt(portal_server, "203.0.113.7")
    assert fifth.status_code == 429
    right = _attempt(portal_server, "203.0.113.7", "correct horse")
    assert right.status_code == 429
    assert 14 * 60 <= int(right.headers["Retry-After"]) <= 15 * 60 + 1
    # Another address is unaffected.
    assert _attempt(portal_server, "203.0.113.8", "correct horse").status_code == 200


async def _failures(ip: str, times: list[datetime]) -> None:
    from portal.store.models import LoginFailure

    for t in times:
        await LoginFailure.create(ip=ip, username="Alice@x.net", created_at=t)


async def test_ten_failures_block_for_an_hour(alice: str, portal_server: PortalServer):
    now = datetime.now(UTC)
    # 9 older failures (their 15-minute block is over), then the 10th now.
    await _failures("198.51.100.1", [now - timedelta(hours=3, minutes=i) for i in range(9)])
    assert _attempt(portal_server, "198.51.100.1", "correct horse").status_code == 200
    tenth = _attempt(portal_server, "198.51.100.1")
    assert tenth.status_code == 429
    assert 59 * 60 <= int(tenth.headers["Retry-After"]) <= 3601


async def test_twenty_failures_block_for_a_day(alice: str, portal_server: PortalServer):
    now = datetime.now(UTC)
    await _failures("198.51.100.2", [now - timedelta(hours=5, minutes=i) for i in range(19)])
    twentieth = _attempt(portal_server, "198.51.100.2")
    assert twentieth.status_code == 429
    assert 23 * 3600 <= int(twentieth.headers["Retry-After"]) <= 86401


async def test_lockout_state_survives_restart(alice: str, portal_server: PortalServer):
    from tests.support.portal import start_portal

    for _ in range(5):
        _attempt(portal_server, "192.0.2.44")
    portal_server.stop()
    again = start_portal(portal_server.db_url, portal_server.state_dir)
    try:
        assert _attempt(again, "192.0.2.44", "correct horse").status_code == 429
    finally:
        again.stop()
