"""The enforcer process against FreeRADIUS as an independent CoA/Disconnect receiver.

FreeRADIUS runs on the suite's database (SQLite or PostgreSQL): its accounting
writes the open radacct session the enforcer targets, and its CoA listener ACKs
requests naming an open session and logs every attribute it received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.store.models import Plan, Subscriber
from tests.coa.conftest import need_freeradius
from tests.enforcer import helpers
from tests.enforcer.helpers import BASIC, FAST
from tests.support.enforcer import EnforcerProcess, start_enforcer
from tests.support.freeradius import DetailRecord, FreeRadius, NasSession
from tests.support.portal import PortalServer

SECRET = "enforcer-radius-secret"
PASSWORD = "secret-pw"


@pytest.fixture
def radius(db_url: str) -> Iterator[FreeRadius]:
    need_freeradius()
    if db_url.startswith("sqlite://"):
        database = db_url.split("://", 1)[1]
    else:
        if not Path("/usr/lib/freeradius/rlm_sql_postgresql.so").exists():
            pytest.skip("needs rlm_sql_postgresql: apt-get install freeradius-postgresql")
        database = db_url
    with FreeRadius(database, secret=SECRET) as server:
        yield server


@pytest.fixture
async def processes() -> AsyncIterator[list[EnforcerProcess]]:
    started: list[EnforcerProcess] = []
    yield started
    for p in started:
        p.stop()


async def online_via_radius(radius: FreeRadius, username: str, session_id: str) -> None:
    session = NasSession(username, session_id, framed_ip="100.64.0.10")
    reply = await asyncio.to_thread(radius.accounting, "Start", session)
    assert reply.code == "Accounting-Response", reply.output


def requests_for(radius: FreeRadius, username: str) -> list[DetailRecord]:
    return [r for r in radius.coa_requests() if r.attributes.get("User-Name") == [username]]


def rate_limit(down: int, up: int) -> str:
    return f"{up}k/{down}k"


async def test_plan_upgrade_through_the_portal_reaches_the_nas_within_one_second(
        db: str, db_url: str, radius: FreeRadius, portal_server: PortalServer,
        processes: list[EnforcerProcess], tmp_path: Path) -> None:
    await helpers.subscribers("alice")
    await helpers.add_nas("127.0.0.1", radius.coa_port, secret=SECRET)
    await online_via_radius(radius, "alice", "acct-alice-1")
    proc = start_enforcer(db_url, tmp_path / "enf", poll_ms="100")
    processes.append(proc)
    await helpers.until(lambda: helpers.state_is("alice", "applied", BASIC[0]),
                        what="plan rate applied on start", log=proc.log)
    [first] = requests_for(radius, "alice")
    assert first.packet_type == "CoA-Request"
    assert first.attributes["Mikrotik-Rate-Limit"] == [rate_limit(*BASIC)]

    fast = await Plan.get(name="Fast", reseller__name="acme")
    token = portal_server.login("alice", PASSWORD)
    h = {"Authorization": f"Bearer {token}"}
    with portal_server.client() as c:
        q = c.post("/customer/api/plans/quote", json={"plan_id": fast.id}, headers=h).json()
        r = c.post("/customer/api/plans/change", json={
            "plan_id": fast.id, "quote": q["quote"]},
            headers=h)
        changed_at = time.monotonic()
    assert r.status_code == 200, r.text
    while len(requests_for(radius, "alice")) < 2:
        assert time.monotonic() - changed_at < 1.0, proc.log()[-3000:]
        await asyncio.sleep(0.01)
    took = time.monotonic() - changed_at
    second = requests_for(radius, "alice")[1]
    assert second.packet_type == "CoA-Request"
    assert second.attributes["Mikrotik-Rate-Limit"] == [rate_limit(*FAST)]
    assert second.attributes["Acct-Session-Id"] == ["acct-alice-1"]
    assert second.attributes["Framed-IP-Address"] == ["100.64.0.10"]
    assert took < 1.0
    print(f"plan change answered -> CoA-Request at the NAS: {took * 1000:.0f} ms")
    await helpers.until(lambda: helpers.state_is("alice", "applied", FAST[0]),
                        what="ACK recorded", log=proc.log)


@pytest.mark.parametrize("action", ["disconnect", "suspend"])
async def test_expiry_sends_disconnect_or_suspended_rate(
        db: str, db_url: str, radius: FreeRadius, processes: list[EnforcerProcess],
        tmp_path: Path, action: str) -> None:
    await helpers.subscribers("alice")
    await helpers.add_nas("127.0.0.1", radius.coa_port, secret=SECRET)
    await online_via_radius(radius, "alice", "acct-alice-2")
    # expires shortly after the enforcer has applied the plan: no journal row, no write
    expires = datetime.now(UTC) + timedelta(seconds=4)
    await Subscriber.filter(username="alice").update(expires_at=expires)
    proc = start_enforcer(db_url, tmp_path / "enf", poll_ms="100", expired_action=action,
                          suspended_down_kbps="512", suspended_up_kbps="128")
    processes.append(proc)
    await helpers.until(lambda: helpers.state_is("alice", "applied", BASIC[0]),
                        what="plan rate applied", log=proc.log)

    while len(requests_for(radius, "alice")) < 2:
        assert datetime.now(UTC) < expires + timedelta(seconds=2), proc.log()[-3000:]
        await asyncio.sleep(0.02)
    lag = (datetime.now(UTC) - expires).total_seconds()
    request = requests_for(radius, "alice")[1]
    if action == "disconnect":
        assert request.packet_type == "Disconnect-Request"
        assert "Mikrotik-Rate-Limit" not in request.attributes
    else:
        assert request.packet_type == "CoA-Request"
        assert request.attributes["Mikrotik-Rate-Limit"] == [rate_limit(512, 128)]
    assert request.attributes["Acct-Session-Id"] == ["acct-alice-2"]
    assert lag < 1.5, lag
    await helpers.until(lambda: helpers.state_is("alice", "applied", 512), what="recorded",
                        log=proc.log)
    # a reconnect would get the suspended speed: radreply says so
    from portal.store.models import RadReply

    reply = await RadReply.get(username="alice", attribute="Mikrotik-Rate-Limit")
    assert reply.value == rate_limit(512, 128)
