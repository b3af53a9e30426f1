"""An asyncio RFC 5176 client: CoA-Request and Disconnect-Request.

pyrad builds and checks the packets (dictionary, Request Authenticator,
Message-Authenticator, Response Authenticator); the UDP exchange is ours, so
thousands of requests can be in flight without blocking the event loop.

Requests are multiplexed over a small pool of UDP sockets. A RADIUS
Identifier is one octet, so each socket can have 256 requests outstanding per
NAS; the pool grows to `max_sockets` before callers wait for a free id.
A retransmission resends the identical packet (same id and authenticator),
so a NAS that already acted on the first copy can recognise the duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from pyrad.dictionary import Dictionary
from pyrad.packet import CoAPacket, PacketError

from coa.dictionary import load_dictionary
from coa.profiles import Attribute, Profile, default_profiles, get_profile
from coa.results import ANSWERS, COA_REQUEST, DISCONNECT_REQUEST, answered, no_answer
from coa.types import CoaResult, Nas, Rate, SessionRef

_ERROR_CAUSE = 101
_REPLY_MESSAGE = 18
_MAX_PACKET = 4096
_RECEIVE_BUFFER = 1 << 20

Destination = tuple[str, int]


@dataclass
class ClientStats:
    sent: int = 0
    retransmitted: int = 0
    answered: int = 0
    timeouts: int = 0
    # answers whose Response Authenticator or Message-Authenticator did not
    # verify: a wrong secret, or a late answer to a reused id
    bad_authenticator: int = 0
    # datagrams matching no outstanding request, or not RADIUS at all
    stray: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


@dataclass
class _Pending:
    request: CoAPacket
    raw: bytes
    destination: Destination
    future: asyncio.Future[CoaResult]
    first_sent: float  # perf_counter: uvloop's loop.time() has 1 ms resolution
    attempts: int = 1
    bad_authenticator: int = 0
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class _Request(CoAPacket):
    """A CoA/Disconnect request encoded in one pass.

    pyrad's RequestPacket encodes every attribute twice when a
    Message-Authenticator is present (once for the HMAC, once to send); at
    thousands of requests a second that is a third of the client's CPU. Same
    result per RFC 5176 section 3.3: HMAC over the packet with a zero
    Authenticator and zero Message-Authenticator, then the Request
    Authenticator over the packet with the HMAC in place.
    """

    def RequestPacket(self) -> bytes:  # noqa: N802 - pyrad's name
        if self.message_authenticator:
            self._set_message_authenticator(bytes(16))  # first attribute
        attributes = self._PktEncodeAttributes()
        header = struct.pack("!BBH", self.code, self.id, 20 + len(attributes))
        if self.message_authenticator:
            mac = hmac.new(self.secret, header + bytes(16) + attributes, "md5").digest()
            attributes = attributes[:2] + mac + attributes[18:]
        self.authenticator = hashlib.md5(header + bytes(16) + attributes + self.secret).digest()
        return header + self.authenticator + attributes


def session_attributes(session: SessionRef) -> list[Attribute]:
    """The attributes that name a session to the NAS (RFC 5176 section 3)."""
    attributes: list[Attribute] = [
        ("User-Name", session.username),
        ("Acct-Session-Id", session.acct_session_id),
    ]
    if session.framed_ip:
        attributes.append(("Framed-IP-Address", session.framed_ip))
    if session.nas_ip:
        attributes.append(("NAS-IP-Address", session.nas_ip))
    return attributes


class _Endpoint(asyncio.DatagramProtocol):
    """One UDP socket and the requests outstanding on it."""

    def __init__(self, client: CoaClient) -> None:
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[tuple[str, int, int], _Pending] = {}
        # FIFO so a just-freed id is reused last: a late answer to the old
        # request then rarely meets a new one with the same id.
        self.free_ids: dict[Destination, deque[int]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def reserve(self, destination: Destination) -> int | None:
        ids = self.free_ids.get(destination)
        if ids is None:
            ids = self.free_ids[destination] = deque(range(256))
        return ids.popleft() if ids else None

    def release(self, destination: Destination, packet_id: int) -> None:
        self.pending.pop((*destination, packet_id), None)
        self.free_ids[destination].append(packet_id)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        stats = self.client.stats
        if len(data) < 20:
            stats.stray += 1
            return
        code, packet_id = data[0], data[1]
        pending = self.pending.get((str(addr[0]), int(addr[1]), packet_id))  # type: ignore[call-overload]
        if pending is None or pending.future.done() or code not in ANSWERS[pending.request.code]:
            stats.stray += 1
            return
        try:
            reply = pending.request.CreateReply(packet=data)
            valid = pending.request.VerifyReply(reply, data)
        except (PacketError, KeyError, ValueError, struct.error, IndexError):
            valid = False
        if not valid:
            # Treated as no answer: the request keeps waiting and retrying.
            stats.bad_authenticator += 1
            pending.bad_authenticator += 1
            return
        stats.answered += 1
        if pending.timer is not None:
            pending.timer.cancel()
        rtt_ms = (time.perf_counter() - pending.first_sent) * 1000
        pending.future.set_result(answered(code, _error_cause(data), _reply_message(data), rtt_ms))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected UDP socket name no request; the
        # affected request simply times out and says so.
        pass


def _reserve_on(
    endpoints: list[_Endpoint], destination: Destination
) -> tuple[_Endpoint, int] | None:
    for endpoint in endpoints:
        packet_id = endpoint.reserve(destination)
        if packet_id is not None:
            return endpoint, packet_id
    return None


def _raw_attributes(data: bytes) -> Iterable[tuple[int, bytes]]:
    length = min(len(data), struct.unpack("!H", data[2:4])[0])
    position = 20
    while position + 2 <= length:
        kind, size = data[position], data[position + 1]
        if size < 2:
            return
        yield kind, data[position + 2 : position + size]
        position += size


def _error_cause(data: bytes) -> int | None:
    for kind, value in _raw_attributes(data):
        if kind == _ERROR_CAUSE and len(value) == 4:
            return int(struct.unpack("!I", value)[0])
    return None


def _reply_message(data: bytes) -> str | None:
    parts = [
        value.decode("utf-8", "replace")
        for kind, value in _raw_attributes(data)
        if kind == _REPLY_MESSAGE
    ]
    return "".join(parts) or None


class CoaClient:
    """Send CoA and Disconnect requests; each call returns a CoaResult.

    timeout_s is the wait for an answer after each transmission; a request
    is sent 1 + retries times before it ends as a retryable "no answer".
    Use as `async with CoaClient() as client:` or call close().
    """

    def __init__(
        self,
        *,
        timeout_s: float = 1.0,
        retries: int = 2,
        max_sockets: int = 16,
        profiles: dict[str, Profile] | None = None,
        dictionary: Dictionary | None = None,
        message_authenticator: bool = True,
    ) -> None:
        if timeout_s <= 0 or retries < 0 or max_sockets < 1:
            raise ValueError("timeout_s > 0, retries >= 0 and max_sockets >= 1 required")
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_sockets = max_sockets
        self.profiles = profiles if profiles is not None else default_profiles()
        self.dictionary = dictionary if dictionary is not None else load_dictionary()
        self.message_authenticator = message_authenticator
        self.stats = ClientStats()
        self._endpoints: dict[int, list[_Endpoint]] = {}
        # callers waiting for an id towards one NAS (all sockets full)
        self._id_waiters: dict[Destination, deque[asyncio.Future[None]]] = {}
        self._opening: dict[int, asyncio.Future[None]] = {}
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def __aenter__(self) -> CoaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        for endpoints in self._endpoints.values():
            for endpoint in endpoints:
                for pending in list(endpoint.pending.values()):
                    if pending.timer is not None:
                        pending.timer.cancel()
                    if not pending.future.done():
                        pending.future.cancel()
                if endpoint.transport is not None:
                    endpoint.transport.close()
        self._endpoints.clear()
        for waiters in self._id_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()

    async def change_rate(self, nas: Nas, session: SessionRef, rate: Rate) -> CoaResult:
        profile = get_profile(nas.profile, self.profiles)
        return await self.send(
            nas, COA_REQUEST, session_attributes(session) + profile.attributes(rate)
        )

    async def disconnect(self, nas: Nas, session: SessionRef) -> CoaResult:
        return await self.send(nas, DISCONNECT_REQUEST, session_attributes(session))

    async def send(self, nas: Nas, code: int, attributes: Sequence[Attribute]) -> CoaResult:
        """Send one request with these attributes (in order) and await its fate.

        Raises ValueError/KeyError for a request that cannot be encoded
        (unknown attribute, bad value): that is a caller bug, not a NAS result.
        """
        if code not in ANSWERS:
            raise ValueError(f"not a CoA or Disconnect request code: {code}")
        if self._closed:
            raise RuntimeError("CoaClient is closed")
        request = _Request(code=code, id=0, secret=nas.secret.encode(), dict=self.dictionary)
        if self.message_authenticator:
            request.add_message_authenticator()
        for name, value in attributes:
            request.AddAttribute(name, value)

        destination = (ipaddress.ip_address(nas.address).compressed, nas.coa_port)
        endpoint, packet_id = await self._reserve(destination)
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        pending: _Pending | None = None
        try:
            request.id = packet_id
            raw = request.RequestPacket()
            if len(raw) > _MAX_PACKET:
                raise ValueError(f"request is {len(raw)} octets, RADIUS allows {_MAX_PACKET}")
            loop = self.loop
            pending = _Pending(request, raw, destination, loop.create_future(), time.perf_counter())
            endpoint.pending[(*destination, packet_id)] = pending
            self._transmit(endpoint, pending)
            return await pending.future
        finally:
            # also reached when the caller cancels: no timer may outlive it
            if pending is not None and pending.timer is not None:
                pending.timer.cancel()
            stats.in_flight -= 1
            endpoint.release(destination, packet_id)
            self._wake_one_waiter(destination)

    def _transmit(self, endpoint: _Endpoint, pending: _Pending) -> None:
        assert endpoint.transport is not None
        endpoint.transport.sendto(pending.raw, pending.destination)
        self.stats.sent += 1
        pending.timer = self.loop.call_later(self.timeout_s, self._on_timeout, endpoint, pending)

    def _on_timeout(self, endpoint: _Endpoint, pending: _Pending) -> None:
        if pending.future.done():
            return
        if pending.attempts <= self.retries:
            pending.attempts += 1
            self.stats.retransmitted += 1
            self._transmit(endpoint, pending)
            return
        self.stats.timeouts += 1
        host, port = pending.destination
        rtt_ms = (time.perf_counter() - pending.first_sent) * 1000
        pending.future.set_result(
            no_answer(f"{host}:{port}", pending.attempts, pending.bad_authenticator, rtt_ms)
        )

    async def _reserve(self, destination: Destination) -> tuple[_Endpoint, int]:
        family = socket.AF_INET6 if ":" in destination[0] else socket.AF_INET
        endpoints = self._endpoints.setdefault(family, [])
        while True:
            found = _reserve_on(endpoints, destination)
            if found is not None:
                return found
            if len(endpoints) < self.max_sockets:
                # Everyone short of an id waits for the same new socket and
                # then looks again, instead of queueing one by one on a lock.
                opening = self._opening.get(family)
                if opening is None:
                    opening = asyncio.ensure_future(self._open(family, endpoints))
                    self._opening[family] = opening
                await asyncio.shield(opening)
                continue
            waiter = self.loop.create_future()
            self._id_waiters.setdefault(destination, deque()).append(waiter)
            await waiter

    async def _open(self, family: int, endpoints: list[_Endpoint]) -> None:
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            # a burst of answers must not overflow the default ~200 KB buffer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            _, protocol = await self.loop.create_datagram_endpoint(
                lambda: _Endpoint(self), sock=sock
            )
            endpoints.append(protocol)
        finally:
            self._opening.pop(family, None)

    def _wake_one_waiter(self, destination: Destination) -> None:
        waiters = self._id_waiters.get(destination)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
