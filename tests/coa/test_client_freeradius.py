"""Our client against FreeRADIUS as an independent CoA/Disconnect receiver.

The receiver ACKs requests that name an open radacct session (opened here by
radclient accounting, as a NAS would) and NAKs others with Error-Cause 503;
its detail file shows exactly what arrived on the wire.
"""

from __future__ import annotations

import pytest

from coa import COA_ACK, COA_NAK, DISCONNECT_ACK, DISCONNECT_NAK, CoaClient, Nas, Rate, SessionRef
from coa.profiles import default_profiles
from tests.coa.conftest import SECRET
from tests.support.freeradius import FreeRadius, NasSession

RATE = Rate(10000, 2000)
CISCO_DOWN, CISCO_UP = {10000: "DOWN-10M"}, {2000: "UP-2M"}


def open_session(radius: FreeRadius, username: str, session_id: str) -> SessionRef:
    nas_session = NasSession(username, session_id, framed_ip="100.64.0.20")
    assert radius.accounting("Start", nas_session).code == "Accounting-Response"
    return SessionRef(username, session_id, nas_session.framed_ip, nas_session.nas_ip)


def client() -> CoaClient:
    return CoaClient(timeout_s=0.5, retries=1, profiles=default_profiles(CISCO_DOWN, CISCO_UP))


@pytest.mark.parametrize("profile", ["mikrotik", "accel-ppp", "generic", "cisco"])
async def test_coa_is_acked_and_carries_exactly_the_profile_attributes(
    radius: FreeRadius, profile: str
) -> None:
    session = open_session(radius, "carol", f"sess-{profile}")
    nas = Nas("127.0.0.1", SECRET, radius.coa_port, profile)
    async with client() as coa:
        result = await coa.change_rate(nas, session, RATE)
    assert result.ok and result.code == COA_ACK and result.error_cause is None, result
    assert 0 < result.rtt_ms < 500

    [logged] = radius.coa_requests()
    assert logged.packet_type == "CoA-Request"
    attributes = dict(logged.attributes)
    # FreeRADIUS verified it before logging; its value is ours to compute
    assert attributes.pop("Message-Authenticator", None) is not None
    expected = {
        "User-Name": ["carol"],
        "Acct-Session-Id": [f"sess-{profile}"],
        "Framed-IP-Address": ["100.64.0.20"],
        "NAS-IP-Address": ["127.0.0.1"],
    }
    for name, value in default_profiles(CISCO_DOWN, CISCO_UP)[profile].attributes(RATE):
        expected.setdefault(name, []).append(str(value))
    assert attributes == expected


async def test_disconnect_of_an_open_session_is_acked(radius: FreeRadius) -> None:
    session = open_session(radius, "dave", "sess-d1")
    async with client() as coa:
        result = await coa.disconnect(Nas("127.0.0.1", SECRET, radius.coa_port), session)
    assert result.ok and result.code == DISCONNECT_ACK, result
    [logged] = radius.coa_requests()
    assert logged.packet_type == "Disconnect-Request"
    assert logged.attributes["Acct-Session-Id"] == ["sess-d1"]
    assert "Mikrotik-Rate-Limit" not in logged.attributes


async def test_unknown_session_is_a_final_503(radius: FreeRadius) -> None:
    open_session(radius, "erin", "sess-e1")
    nas = Nas("127.0.0.1", SECRET, radius.coa_port)
    ghost = SessionRef("erin", "sess-gone", "100.64.0.21", "127.0.0.1")
    async with client() as coa:
        coa_result = await coa.change_rate(nas, ghost, RATE)
        disconnect_result = await coa.disconnect(nas, ghost)
    for result, code in ((coa_result, COA_NAK), (disconnect_result, DISCONNECT_NAK)):
        assert not result.ok and result.code == code
        assert result.error_cause == 503 and result.session_gone and not result.retryable
        assert "Session-Context-Not-Found" in result.message
    assert len(radius.coa_requests()) == 2


async def test_wrong_secret_is_no_answer(radius: FreeRadius) -> None:
    session = open_session(radius, "frank", "sess-f1")
    nas = Nas("127.0.0.1", "not-the-secret", radius.coa_port)
    async with CoaClient(timeout_s=0.2, retries=1) as coa:
        result = await coa.change_rate(nas, session, RATE)
        assert coa.stats.sent == 2 and coa.stats.retransmitted == 1
    assert not result.ok and result.code is None and result.retryable
    assert "no answer" in result.message and "2 attempt(s)" in result.message
    # FreeRADIUS dropped both copies before processing them
    assert radius.coa_requests() == []
