"""Fault cases against a NAS emulator speaking real RADIUS over loopback UDP:
silence, retransmission, NAKs, a wrong secret, slow answers, garbage, and a
thousand requests in flight at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from coa import (
    COA_ACK,
    COA_NAK,
    COA_REQUEST,
    DISCONNECT_ACK,
    CoaClient,
    Nas,
    Rate,
    SessionRef,
)
from coa.emulator import NasEmulator

SECRET = "emulated-nas-secret"
SESSION = SessionRef("gina", "sess-g1", "100.64.0.30", "127.0.0.1")
RATE = Rate(20000, 5000)

Start = Callable[..., "asyncio.Future[tuple[NasEmulator, Nas]]"]


@pytest.fixture
async def start_nas() -> AsyncIterator[Callable[..., object]]:
    emulators: list[NasEmulator] = []

    async def start(**options: object) -> tuple[NasEmulator, Nas]:
        emulator = NasEmulator(SECRET, **options)  # type: ignore[arg-type]
        port = await emulator.start()
        emulators.append(emulator)
        return emulator, Nas("127.0.0.1", SECRET, port)

    yield start
    for emulator in emulators:
        emulator.close()


async def test_ack_with_session_attributes(start_nas) -> None:  # type: ignore[no-untyped-def]
    nas_emulator, nas = await start_nas()
    async with CoaClient() as client:
        result = await client.change_rate(nas, SESSION, RATE)
    assert result.ok and result.code == COA_ACK
    [request] = nas_emulator.received
    assert request.code == COA_REQUEST
    attributes = dict(request.attributes)
    assert len(attributes.pop("Message-Authenticator")[0]) == 16
    assert attributes == {
        "User-Name": ["gina"],
        "Acct-Session-Id": ["sess-g1"],
        "Framed-IP-Address": ["100.64.0.30"],
        "NAS-IP-Address": ["127.0.0.1"],
        "Mikrotik-Rate-Limit": ["5000k/20000k"],
    }


async def test_optional_session_fields_are_left_out(start_nas) -> None:  # type: ignore[no-untyped-def]
    nas_emulator, nas = await start_nas()
    async with CoaClient(message_authenticator=False) as client:
        result = await client.disconnect(nas, SessionRef("gina", "sess-g1"))
    assert result.ok and result.code == DISCONNECT_ACK
    assert nas_emulator.received[0].attributes == {
        "User-Name": ["gina"],
        "Acct-Session-Id": ["sess-g1"],
    }


async def test_silence_is_retransmitted_identically_then_times_out(start_nas) -> None:  # type: ignore[no-untyped-def]
    nas_emulator, nas = await start_nas(silent=True)
    started = time.monotonic()
    async with CoaClient(timeout_s=0.1, retries=2) as client:
        result = await client.change_rate(nas, SESSION, RATE)
        assert client.stats.sent == 3 and client.stats.retransmitted == 2
        assert client.stats.timeouts == 1
    elapsed = time.monotonic() - started
    assert not result.ok and result.code is None and result.error_cause is None
    assert result.retryable and "3 attempt(s)" in result.message
    assert 0.3 <= elapsed < 1.0 and 300 <= result.rtt_ms < 1000
    copies = nas_emulator.received
    assert len(copies) == 3
    assert len({c.raw for c in copies}) == 1  # same id, same authenticator, same bytes


async def test_answer_to_a_retransmission_is_accepted(start_nas) -> None:  # type: ignore[no-untyped-def]
    nas_emulator, nas = await start_nas(drop_first=2)
    async with CoaClient(timeout_s=0.1, retries=2) as client:
        result = await client.change_rate(nas, SESSION, RATE)
        assert client.stats.retransmitted == 2
    assert result.ok and result.rtt_ms >= 200
    assert len(nas_emulator.received) == 3


async def test_late_answer_to_the_first_copy_still_counts(start_nas) -> None:  # type: ignore[no-untyped-def]
    # slower than one timeout, faster than all attempts together
    nas_emulator, nas = await start_nas(delay_s=0.25)
    async with CoaClient(timeout_s=0.2, retries=2) as client:
        result = await client.change_rate(nas, SESSION, RATE)
    assert result.ok and 250 <= result.rtt_ms < 400
    assert len(nas_emulator.received) == 2


async def test_slow_answer_within_the_timeout(start_nas) -> None:  # type: ignore[no-untyped-def]
    nas_emulator, nas = await start_nas(delay_s=0.15)
    async with CoaClient(timeout_s=1.0, retries=0) as client:
        result = await client.change_rate(nas, SESSION, RATE)
        assert client.stats.retransmitted == 0
    assert result.ok and 150 <= result.rtt_ms < 600


async def test_nak_503_is_decoded_as_session_gone(start_nas) -> None:  # type: ignore[no-untyped-def]
    _, nas = await start_nas(sessions={"some-other-session"})
    async with CoaClient() as client:
        result = await client.change_rate(nas, SESSION, RATE)
    assert not result.ok and result.code == COA_NAK
    assert result.error_cause == 503 and result.session_gone and not result.retryable


async def test_disconnect_then_session_is_gone(start_nas) -> None:  # type: ignore[no-untyped-def]
    _, nas = await start_nas(sessions={"sess-g1"})
    async with CoaClient() as client:
        first = await client.disconnect(nas, SESSION)
        second = await client.disconnect(nas, SESSION)
    assert first.ok
    assert second.session_gone and not second.retryable


async def test_answer_signed_with_another_secret_is_no_answer(start_nas) -> None:  # type: ignore[no-untyped-def]
    nas_emulator, nas = await start_nas(reply_secret="the-nas-thinks-this")
    async with CoaClient(timeout_s=0.1, retries=1) as client:
        result = await client.change_rate(nas, SESSION, RATE)
        assert client.stats.bad_authenticator == 2 and client.stats.answered == 0
    assert nas_emulator.answered == 2
    assert not result.ok and result.retryable and result.code is None
    assert "failed authenticator verification" in result.message


async def test_request_with_the_wrong_secret_is_dropped_by_the_nas(start_nas) -> None:  # type: ignore[no-untyped-def]
    nas_emulator, nas = await start_nas()
    wrong = Nas(nas.address, "not-the-secret", nas.coa_port)
    async with CoaClient(timeout_s=0.1, retries=0) as client:
        result = await client.change_rate(wrong, SESSION, RATE)
    assert not result.ok and result.retryable
    assert nas_emulator.bad_authenticator == 1 and nas_emulator.received == []


async def test_garbage_and_strangers_are_ignored() -> None:
    """A peer that answers with junk, then with a well-formed packet for an
    id nobody asked about, then silence: the request still times out cleanly."""

    class Junk(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(b"\x2c\x01", addr)  # type: ignore[attr-defined]
            stranger = bytes([44, (data[1] + 1) % 256, 0, 20]) + bytes(16)
            self.transport.sendto(stranger, addr)  # type: ignore[attr-defined]
            wrong_code = bytes([41, data[1], 0, 20]) + bytes(16)  # Disconnect-ACK to a CoA
            self.transport.sendto(wrong_code, addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Junk, local_addr=("127.0.0.1", 0))
    try:
        nas = Nas("127.0.0.1", SECRET, transport.get_extra_info("sockname")[1])
        async with CoaClient(timeout_s=0.1, retries=0) as client:
            result = await client.change_rate(nas, SESSION, RATE)
            assert client.stats.stray == 3
    finally:
        transport.close()
    assert not result.ok and result.retryable and result.code is None


async def test_thousand_concurrent_requests_each_get_their_own_answer(start_nas) -> None:  # type: ignore[no-untyped-def]
    known = {f"sess-{i}" for i in range(0, 1000, 2)}  # odd sessions are unknown
    # a NAS taking 200 ms per answer keeps all of them outstanding together
    nas_emulator, nas = await start_nas(sessions=set(known), record=False, delay_s=0.2)
    lateness: list[float] = []

    async def heartbeat() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lateness.append(time.monotonic() - before - 0.01)

    ticker = asyncio.create_task(heartbeat())
    async with CoaClient(timeout_s=3.0, retries=1) as client:
        sessions = [SessionRef(f"user{i}", f"sess-{i}") for i in range(1000)]
        started = time.monotonic()
        results = await asyncio.gather(*(client.change_rate(nas, s, RATE) for s in sessions))
        elapsed = time.monotonic() - started
        sockets = len(next(iter(client._endpoints.values())))
        assert client.stats.timeouts == 0 and client.stats.retransmitted == 0
        assert client.stats.max_in_flight > 900 and client.stats.in_flight == 0
    ticker.cancel()

    # answers were matched to the right requests: ACK exactly for known sessions
    for session, result in zip(sessions, results, strict=True):
        if session.acct_session_id in known:
            assert result.ok, (session, result)
        else:
            assert result.session_gone, (session, result)
    assert nas_emulator.answered >= 1000
    assert sockets >= 4  # 256 ids per socket and NAS
    assert elapsed < 2.0
    assert max(lateness) < 0.5  # the event loop kept running


async def test_id_exhaustion_waits_for_a_free_id(start_nas) -> None:  # type: ignore[no-untyped-def]
    _, nas = await start_nas(delay_s=0.05, record=False)
    async with CoaClient(timeout_s=2.0, retries=0, max_sockets=1) as client:
        results = await asyncio.gather(
            *(client.change_rate(nas, SessionRef("u", f"s{i}"), RATE) for i in range(600))
        )
        assert len(next(iter(client._endpoints.values()))) == 1
    assert all(r.ok for r in results)


async def test_bad_requests_raise_instead_of_becoming_results(start_nas) -> None:  # type: ignore[no-untyped-def]
    _, nas = await start_nas()
    client = CoaClient()
    with pytest.raises(ValueError, match="request code"):
        await client.send(nas, 1, [("User-Name", "x")])
    with pytest.raises(KeyError):
        await client.send(nas, COA_REQUEST, [("No-Such-Attribute", "x")])
    with pytest.raises(ValueError, match="unknown NAS profile"):
        await client.change_rate(Nas(nas.address, SECRET, nas.coa_port, "juniper"), SESSION, RATE)
    with pytest.raises(ValueError, match="octets"):
        await client.send(nas, COA_REQUEST, [("Reply-Message", "x" * 200)] * 30)
    # a failed encode must not leak its id: the next request still works
    assert (await client.change_rate(nas, SESSION, RATE)).ok
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.change_rate(nas, SESSION, RATE)
    with pytest.raises(ValueError):
        CoaClient(timeout_s=0)


async def test_cancelled_request_frees_its_id_and_stops_retransmitting(start_nas) -> None:  # type: ignore[no-untyped-def]
    nas_emulator, nas = await start_nas(silent=True)
    async with CoaClient(timeout_s=0.05, retries=5) as client:
        task = asyncio.create_task(client.change_rate(nas, SESSION, RATE))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)
        assert client.stats.sent == 1 and client.stats.in_flight == 0
        [endpoint] = next(iter(client._endpoints.values()))
        assert endpoint.pending == {}
    assert len(nas_emulator.received) == 1


async def test_full_sockets_towards_one_nas_do_not_hold_up_another(start_nas) -> None:  # type: ignore[no-untyped-def]
    _, slow = await start_nas(delay_s=0.3, record=False)
    _, fast = await start_nas(record=False)
    async with CoaClient(timeout_s=2.0, retries=0, max_sockets=1) as client:
        slow_batch = asyncio.gather(
            *(client.change_rate(slow, SessionRef("u", f"s{i}"), RATE) for i in range(300))
        )
        await asyncio.sleep(0.05)  # 256 outstanding to the slow NAS, 44 waiting
        started = time.monotonic()
        fast_result = await client.change_rate(fast, SESSION, RATE)
        assert fast_result.ok and time.monotonic() - started < 0.2
        assert all(r.ok for r in await slow_batch)
