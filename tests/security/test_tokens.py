"""Attack tests: tokens die with a password change, disabling and "sign out everywhere"
(customers and operators), and keys rotate without logging anyone out."""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest

from tests.security._auth_helpers import OPERATOR, OPERATOR_PASSWORD, PASSWORD, USER, people
from tests.support.portal import PortalServer, ispedge_cli, start_portal


@pytest.fixture
async def accounts(db: str) -> None:
    await people()


def me(server: PortalServer, token: str) -> httpx.Response:
    with server.client() as c:
        return c.get("/customer/api/me", headers={"Authorization": f"Bearer {token}"})


def tickets(server: PortalServer, token: str) -> httpx.Response:
    with server.client() as c:
        return c.get("/operator/api/tickets", headers={"Authorization": f"Bearer {token}"})


def operator_token(server: PortalServer, password: str = OPERATOR_PASSWORD) -> str:
    with server.client() as c:
        r = c.post("/operator/api/login", json={"username": OPERATOR, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def refused(r: httpx.Response) -> bool:
    return r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"


async def test_a_password_change_revokes_every_older_token(
        accounts: None, portal_server: PortalServer):
    cli = ispedge_cli(portal_server.db_url, portal_server.state_dir)
    phone, laptop = portal_server.login(USER, PASSWORD), portal_server.login(USER, PASSWORD)
    assert me(portal_server, phone).status_code == 200
    cli("subscriber", "set-password", USER, "a-new-password")
    assert refused(me(portal_server, phone)) and refused(me(portal_server, laptop))
    fresh = portal_server.login(USER, "a-new-password")
    assert me(portal_server, fresh).status_code == 200


async def test_disabling_revokes_tokens_for_good(accounts: None, portal_server: PortalServer):
    cli = ispedge_cli(portal_server.db_url, portal_server.state_dir)
    token = portal_server.login(USER, PASSWORD)
    cli("subscriber", "set-status", USER, "disabled")
    assert me(portal_server, token).status_code == 401
    cli("subscriber", "set-status", USER, "active")
    # Enabling the account again does not bring the old sessions back.
    assert refused(me(portal_server, token))
    assert me(portal_server, portal_server.login(USER, PASSWORD)).status_code == 200


async def test_sign_out_everywhere(accounts: None, portal_server: PortalServer):
    cli = ispedge_cli(portal_server.db_url, portal_server.state_dir)
    token = portal_server.login(USER, PASSWORD)
    op = operator_token(portal_server)
    cli("subscriber", "sign-out", USER)
    assert refused(me(portal_server, token))
    assert tickets(portal_server, op).status_code == 200  # the operator is not touched
    cli("operator", "sign-out", OPERATOR)
    assert refused(tickets(portal_server, op))
    assert me(portal_server, portal_server.login(USER, PASSWORD)).status_code == 200
    assert tickets(portal_server, operator_token(portal_server)).status_code == 200


async def test_operator_password_change_and_disable_revoke(
        accounts: None, portal_server: PortalServer):
    cli = ispedge_cli(portal_server.db_url, portal_server.state_dir)
    op = operator_token(portal_server)
    cli("operator", "set-password", OPERATOR, "--password", "olga-password-2")
    assert refused(tickets(portal_server, op))
    op = operator_token(portal_server, "olga-password-2")
    cli("operator", "disable", OPERATOR)
    assert tickets(portal_server, op).status_code == 401
    cli("operator", "enable", OPERATOR)
    assert refused(tickets(portal_server, op))
    assert tickets(portal_server, operator_token(portal_server, "olga-password-2")
                   ).status_code == 200


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def test_a_rotated_key_keeps_its_tokens_and_an_unknown_kid_is_refused(
        accounts: None, db_url: str, tmp_path):
    state = tmp_path / "state"
    first = start_portal(db_url, state)
    second = start_portal(db_url, state)  # another instance reading the same key file
    try:
        old = first.login(USER, PASSWORD)
        assert me(second, old).status_code == 200
        ispedge_cli(db_url, state)("portal", "rotate-key")
        await asyncio.sleep(2.5)  # a running portal re-reads a changed key file within ~2 s
        new = first.login(USER, PASSWORD)
        assert kid(new) != kid(old)
        for server in (first, second):
            assert me(server, old).status_code == 200  # signed with a kept previous key
            assert me(server, new).status_code == 200
        # The same claims under a kid the ring does not hold, and a foreign key.
        claims = jwt.decode(new, options={"verify_signature": False})
        unknown = jwt.encode(claims, b"k" * 64, algorithm="HS256", headers={"kid": "nope"})
        stolen_kid = jwt.encode(claims, b"k" * 64, algorithm="HS256",
                                headers={"kid": kid(new)})
        for forged in (unknown, stolen_kid):
            r = me(first, forged)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        # Rotated out of the file: its tokens end.
        ispedge_cli(db_url, state)("portal", "rotate-key", "--keep", "0")
        await asyncio.sleep(2.5)
        assert me(first, old).status_code == 401
        assert me(second, new).status_code == 401
    finally:
        first.stop()
        second.stop()
