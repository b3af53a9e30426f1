"""Attack tests: the login lockout cannot be raced, across portal instances, and throttles
an account guessed from many addresses while its subscriber still gets in."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.security._auth_helpers import (
    OPERATOR,
    OPERATOR_PASSWORD,
    PASSWORD,
    USER,
    burst,
    failure_rows,
    guess,
    people,
    statuses,
)
from tests.support.portal import PortalServer, start_portal


@pytest.fixture
async def accounts(db: str) -> None:
    await people()


async def test_a_burst_of_wrong_guesses_is_counted_exactly(
        accounts: None, portal_server: PortalServer):
    ip = "198.51.100.50"
    answers = await burst([portal_server], [(ip, f"wrong-{i}") for i in range(60)])
    counts = statuses(answers)
    # Exactly five guesses reach the password check: four say 401, the fifth locks.
    assert counts == {401: 4, 429: 56}, counts
    assert await failure_rows(ip=ip) == 5
    assert all(int(r.headers["Retry-After"]) > 14 * 60 for r in answers if r.status_code == 429)


async def test_five_wrong_then_a_concurrent_burst_with_the_right_password_gets_no_token(
        accounts: None, portal_server: PortalServer):
    ip = "198.51.100.51"
    await burst([portal_server], [(ip, f"wrong-{i}") for i in range(5)])
    guesses = [(ip, PASSWORD if i % 10 == 7 else f"wrong-{i}") for i in range(60)]
    answers = await burst([portal_server], guesses)
    assert statuses(answers) == {429: 60}
    assert "token" not in str([r.json() for r in answers])


async def test_four_wrong_then_the_right_password_gets_a_token(
        accounts: None, portal_server: PortalServer):
    ip = "198.51.100.52"
    answers = await burst([portal_server], [(ip, f"wrong-{i}") for i in range(4)])
    assert statuses(answers) == {401: 4}
    right = (await burst([portal_server], [(ip, PASSWORD)]))[0]
    assert right.status_code == 200 and right.json()["token"]
    assert await failure_rows(ip=ip) == 4  # the right guess is not a failure


async def test_two_portal_instances_count_every_guess(accounts: None, db_url: str, tmp_path):
    second = start_portal(db_url, tmp_path / "state2")
    first = start_portal(db_url, tmp_path / "state1")
    try:
        servers = [first, second]
        # 40 guesses from 40 addresses (no rule refuses them): 40 rows, none lost.
        answers = await burst(servers, [(f"203.0.113.{i + 1}", "wrong") for i in range(40)])
        assert statuses(answers) == {401: 40}, statuses(answers)
        assert await failure_rows(username=USER) == 40
        # 40 guesses from one address (at an account not under attack): the tiers admit
        # exactly five, on both instances.
        answers = await burst(servers, [("192.0.2.99", f"wrong-{i}") for i in range(40)],
                              username="bob@x.net")
        assert statuses(answers) == {401: 4, 429: 36}, statuses(answers)
        assert await failure_rows(ip="192.0.2.99") == 5
    finally:
        first.stop()
        second.stop()


async def test_many_addresses_are_throttled_and_the_subscriber_gets_in_within_30_s(
        accounts: None, portal_server: PortalServer):
    addresses = [f"100.64.{i // 250}.{i % 250 + 1}" for i in range(50)]
    answers = []
    for round_ in range(4):  # 50 addresses x 4 guesses: under every per-address tier
        answers += await burst([portal_server], [(ip, f"wrong-{round_}") for ip in addresses])
    counts = statuses(answers)
    assert counts[200] == 0
    # The first round's fresh addresses are each admitted once; after that, every
    # address that failed for this account waits while the account is under attack.
    assert counts[429] >= 150, counts
    assert all("Retry-After" in r.headers for r in answers if r.status_code == 429)
    assert await failure_rows(username=USER) <= 60

    # The real subscriber, from a clean address, in the middle of the attack.
    attack = asyncio.ensure_future(burst([portal_server], [(ip, "again") for ip in addresses]))
    started = time.monotonic()
    async with __import__("httpx").AsyncClient(base_url=portal_server.url, timeout=30) as c:
        while True:
            r = await guess(c, "192.0.2.200", PASSWORD)
            if r.status_code == 200:
                break
            assert r.status_code == 429, r.text
            wait = int(r.headers["Retry-After"])
            assert time.monotonic() - started + wait <= 30, f"told to wait {wait} s"
            await asyncio.sleep(wait)
    assert time.monotonic() - started < 30
    assert statuses(await attack)[429] == 50


async def test_operator_and_customer_logins_keep_separate_counters(
        accounts: None, portal_server: PortalServer):
    ip = "198.51.100.60"
    customer = await burst([portal_server], [(ip, "wrong")] * 5)
    assert statuses(customer) == {401: 4, 429: 1}
    # A cross-site page locking a visitor's address out of the customer login leaves
    # the operator login on that address alone, and the other way round.
    op = (await burst([portal_server], [(ip, OPERATOR_PASSWORD)], username=OPERATOR,
                      path="/operator/api/login"))[0]
    assert op.status_code == 200, op.text
    ip2 = "198.51.100.61"
    ops = await burst([portal_server], [(ip2, "wrong-password")] * 5, username=OPERATOR,
                      path="/operator/api/login")
    assert statuses(ops)[429] >= 1
    assert (await burst([portal_server], [(ip2, PASSWORD)]))[0].status_code == 200


async def test_a_busy_database_fails_the_login_closed(accounts: None, db_url: str,
                                                       portal_server: PortalServer):
    """The lockout step cannot be skipped: with the write lock held past the budget,
    even the right password gets 503 + Retry-After, never a token."""
    from tests.security._auth_helpers import hold_write_lock

    async with hold_write_lock(db_url):
        r = (await burst([portal_server], [("198.51.100.70", PASSWORD)]))[0]
    assert r.status_code == 503, r.text
    assert "Retry-After" in r.headers and "token" not in r.json()
