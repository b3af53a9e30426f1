"""The UDP front door: a reader registered with the reactor (public addReader API).

Twisted's DatagramProtocol costs ~1 µs per packet more than this (address
validation on every write, per-packet bookkeeping); at ~10 µs per query that
matters, so the loop is kept to recvfrom → chain.handle → sendto.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from twisted.internet import defer
from twisted.python import failure

log = logging.getLogger("ispedge.dns")
MAX_QUERY_BYTES = 4096  # larger UDP queries do not exist in practice; truncated ones fail parsing
READS_PER_WAKEUP = 64  # then let timers and TCP run


class UdpReader:
    def __init__(
        self,
        sock: socket.socket,
        handle: Callable[[bytes, str, bool], bytes | defer.Deferred[bytes] | None],
        on_error: Callable[[], None],
    ):
        self.sock = sock
        self.handle = handle
        self.on_error = on_error

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:  # noqa: N802 - Twisted interface
        return "dns-udp"

    def doRead(self) -> None:  # noqa: N802 - Twisted interface
        recv = self.sock.recvfrom
        handle = self.handle
        replies: list[tuple[bytes, tuple[str, int]]] = []
        for _ in range(READS_PER_WAKEUP):
            try:
                data, addr = recv(MAX_QUERY_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # e.g. ICMP port unreachable reported on the socket
            try:
                result = handle(data, addr[0], True)
            except Exception:  # noqa: BLE001 - one bad packet must never stop the server
                log.exception("query from %s failed", addr[0])
                self.on_error()
                continue
            if result is None:
                continue
            if type(result) is bytes:
                replies.append((result, addr))
            else:
                result.addCallbacks(self._send_later, self._failed, callbackArgs=(addr,))  # type: ignore[union-attr]
        # Answers go out together after the burst is read: a client that sleeps
        # between answers is woken once per burst, not once per answer (a wake-up
        # costs the sender ~3 µs here; measured in bench/dns_bench.py).
        send = self.sock.sendto
        for response, addr in replies:
            try:
                send(response, addr)
            except OSError:
                pass  # client gone or buffer full: UDP may drop, the client retries

    def _send_later(self, response: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(response, addr)
        except OSError:
            pass

    def _failed(self, reason: failure.Failure) -> None:
        log.error("deferred answer failed: %s", reason.getErrorMessage())
        self.on_error()

    def connectionLost(self, reason: failure.Failure) -> None:  # noqa: N802 - Twisted interface
        self.sock.close()
