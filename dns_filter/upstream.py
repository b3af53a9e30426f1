"""Forwarding to upstream resolvers: failover, health, TCP on truncation.

Every attempt uses a fresh UDP socket (kernel-randomised source port) and a
random transaction ID, and accepts only a reply from the upstream's address
with that ID and our question: the classic spoofing defences. The client's
query is forwarded as it came (only the ID changes), so EDNS0 options, DO
and CD pass through untouched.
"""

from __future__ import annotations

import secrets
import socket
import struct
import time
from collections.abc import Sequence

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IReactorUDP
from twisted.internet.protocol import DatagramProtocol, Protocol

from dns_filter import wire
from dns_filter.metrics import Metrics
from dns_filter.settings import parse_hostport

DOWN_AFTER_FAILURES = 3
DOWN_FOR_S = 5.0


class UpstreamFailed(Exception):
    pass


class Upstream:
    def __init__(self, spec: str):
        self.host, self.port = parse_hostport(spec)
        self.family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.name = spec
        self.consecutive_failures = 0
        self.down_until = 0.0
        self.latency_ms = 0.0  # moving average, for metrics and operators

    def healthy(self, now: float) -> bool:
        return now >= self.down_until

    def record_success(self, latency_ms: float) -> None:
        self.consecutive_failures = 0
        self.down_until = 0.0
        self.latency_ms = (
            latency_ms if not self.latency_ms else 0.8 * self.latency_ms + 0.2 * latency_ms
        )

    def record_failure(self, now: float) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= DOWN_AFTER_FAILURES:
            self.down_until = now + DOWN_FOR_S


def _accept(data: bytes, txid: bytes, question: bytes) -> bool:
    if len(data) >= 12 and data[:2] == txid and data[2] & 0x82 == 0x82 and data[4:6] == b"\x00\x00":
        return True  # truncated with the question dropped: only ever leads to a TCP retry
    return (
        len(data) >= 12
        and data[:2] == txid
        and bool(data[2] & 0x80)
        and data[4:6] == b"\x00\x01"
        and data[12 : 12 + len(question)].lower() == question
    )


class _UdpExchange(DatagramProtocol):
    def __init__(self, peer: tuple[str, int], txid: bytes, question: bytes):
        self.peer = peer
        self.txid = txid
        self.question = question
        self.deferred: defer.Deferred[bytes] = defer.Deferred()

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # noqa: N802
        if (
            addr[0] == self.peer[0]
            and addr[1] == self.peer[1]
            and not self.deferred.called
            and _accept(data, self.txid, self.question)
        ):
            self.deferred.callback(data)


class _TcpExchange(Protocol):
    def __init__(self, message: bytes, txid: bytes, question: bytes):
        self.message = message
        self.txid = txid
        self.question = question
        self.buffer = b""
        self.deferred: defer.Deferred[bytes] = defer.Deferred()

    def connectionMade(self) -> None:  # noqa: N802
        self.transport.write(struct.pack("!H", len(self.message)) + self.message)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.buffer += data
        while len(self.buffer) >= 2:
            (length,) = struct.unpack_from("!H", self.buffer)
            if len(self.buffer) < 2 + length:
                return
            message, self.buffer = self.buffer[2 : 2 + length], self.buffer[2 + length :]
            if not self.deferred.called and _accept(message, self.txid, self.question):
                self.deferred.callback(message)
                self.transport.loseConnection()  # type: ignore[union-attr]
                return

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        if not self.deferred.called:
            self.deferred.errback(UpstreamFailed("connection closed"))


class UpstreamPool:
    def __init__(
        self, specs: Sequence[str], timeout_s: float, reactor: IReactorUDP, metrics: Metrics
    ):
        self.upstreams = [Upstream(s) for s in specs]
        self.timeout_s = timeout_s
        self.reactor = reactor
        self.metrics = metrics

    def ordered(self) -> list[Upstream]:
        """Healthy upstreams in configured order, then the ones marked down (still tried last)."""
        now = time.monotonic()
        return sorted(self.upstreams, key=lambda u: not u.healthy(now))

    async def resolve(self, query: bytes, question: bytes) -> bytes:
        """Answer for `query` from the first upstream that gives a usable one.

        `question` is the lower-cased question section (name, type, class);
        the reply's ID is the caller's to patch.
        """
        last_error: Exception = UpstreamFailed("no upstreams")
        for upstream in self.ordered():
            started = time.monotonic()
            try:
                response = await self._ask_udp(upstream, query, question)
                if wire.is_truncated(response):
                    response = await self._ask_tcp(upstream, query, question)
                if wire.rcode_of(response) in (wire.RCODE_SERVFAIL, wire.RCODE_REFUSED):
                    raise UpstreamFailed(f"rcode {wire.rcode_of(response)}")
            except Exception as e:  # noqa: BLE001 - any failure moves on to the next upstream
                upstream.record_failure(time.monotonic())
                self.metrics.upstream_failures[upstream.name] += 1
                last_error = e
                continue
            latency_ms = (time.monotonic() - started) * 1000
            upstream.record_success(latency_ms)
            self.metrics.observe_upstream(upstream.name, latency_ms)
            return response
        raise UpstreamFailed(str(last_error))

    async def _ask_udp(self, upstream: Upstream, query: bytes, question: bytes) -> bytes:
        txid = secrets.token_bytes(2)
        exchange = _UdpExchange((upstream.host, upstream.port), txid, question)
        interface = "::" if upstream.family == socket.AF_INET6 else ""
        port = self.reactor.listenUDP(0, exchange, interface=interface)
        try:
            exchange.transport.write(txid + query[2:], (upstream.host, upstream.port))
            exchange.deferred.addTimeout(self.timeout_s, self.reactor)  # type: ignore[arg-type]
            return await exchange.deferred
        finally:
            port.stopListening()

    async def _ask_tcp(self, upstream: Upstream, query: bytes, question: bytes) -> bytes:
        txid = secrets.token_bytes(2)
        endpoint_class = (
            TCP6ClientEndpoint if upstream.family == socket.AF_INET6 else TCP4ClientEndpoint
        )
        endpoint = endpoint_class(
            self.reactor, upstream.host, upstream.port, timeout=self.timeout_s
        )  # type: ignore[arg-type]
        exchange = _TcpExchange(txid + query[2:], txid, question)
        d = connectProtocol(endpoint, exchange)
        d.addTimeout(self.timeout_s, self.reactor)  # type: ignore[arg-type]
        await d
        exchange.deferred.addTimeout(self.timeout_s, self.reactor)  # type: ignore[arg-type]
        try:
            return await exchange.deferred
        finally:
            if exchange.transport is not None:
                exchange.transport.loseConnection()
