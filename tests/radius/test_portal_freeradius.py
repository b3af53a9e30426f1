"""ispedge and a real FreeRADIUS on the same database: what the operator CLI and the
portal write is what FreeRADIUS authenticates with and replies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.coa.conftest import SECRET
from tests.support.freeradius import FreeRadius
from tests.support.portal import ispedge_cli, start_portal


@pytest.fixture
def ispedge(db_url: str, tmp_path: Path):
    run = ispedge_cli(db_url, tmp_path / "state")
    run("reseller", "add", "acme")
    run("plan", "add", "Fiber 10M", "--reseller", "acme", "--down", "10000", "--up", "4000",
        "--price", "15")
    run("plan", "add", "Fiber 50M", "--reseller", "acme", "--down", "50000", "--up", "20000",
        "--price", "30")
    run("subscriber", "add", "Ali@acme.net", "--password", "s3cret pppoe", "--reseller", "acme",
        "--plan", "Fiber 10M")
    return run


@pytest.fixture
def radius(database: str) -> Iterator[FreeRadius]:
    with FreeRadius(database, secret=SECRET) as server:
        yield server


def test_subscriber_add_authenticates_with_the_plan_rate(ispedge, radius: FreeRadius):
    accept = radius.authenticate("Ali@acme.net", "s3cret pppoe")
    assert accept.code == "Access-Accept", accept.output
    # MikroTik's view: upload first.
    assert accept.attributes["Mikrotik-Rate-Limit"] == ["4000k/10000k"]
    assert radius.authenticate("Ali@acme.net", "wrong").code == "Access-Reject"
    assert radius.authenticate("ali@acme.net", "s3cret pppoe").code == "Access-Reject"


def test_plan_change_is_what_a_reconnect_gets(ispedge, radius: FreeRadius):
    ispedge("subscriber", "set-plan", "Ali@acme.net", "Fiber 50M")
    accept = radius.authenticate("Ali@acme.net", "s3cret pppoe")
    assert accept.attributes["Mikrotik-Rate-Limit"] == ["20000k/50000k"]


def test_disabled_subscriber_is_rejected_and_enabled_again(ispedge, radius: FreeRadius):
    ispedge("subscriber", "set-status", "Ali@acme.net", "disabled")
    assert radius.authenticate("Ali@acme.net", "s3cret pppoe").code == "Access-Reject"
    ispedge("subscriber", "set-status", "Ali@acme.net", "active")
    assert radius.authenticate("Ali@acme.net", "s3cret pppoe").code == "Access-Accept"


def test_portal_password_is_the_pppoe_password(ispedge, radius: FreeRadius, db_url: str,
                                               tmp_path: Path):
    ispedge("subscriber", "set-password", "Ali@acme.net", "n3w-pass")
    assert radius.authenticate("Ali@acme.net", "n3w-pass").code == "Access-Accept"
    portal = start_portal(db_url, tmp_path / "state")
    try:
        assert portal.login("Ali@acme.net", "n3w-pass")
        with portal.client() as c:
            old = c.post("/customer/api/login", json={"username": "Ali@acme.net",
                                                      "password": "s3cret pppoe"})
        assert old.status_code == 401
    finally:
        portal.stop()
