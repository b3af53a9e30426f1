"""The UDP front door: a reader registered with the reactor (public addReader API).

Twisted's DatagramProtocol costs ~1 µs per packet more than this (address
validation on every write, per-packet bookkeeping); at ~10 µs per query that
matters, so the loop is kept to recvfrom → chain.handle → sendto. Where the C
module dns_filter._mmsg is built, a burst is one recvmmsg and one sendmmsg and
the client's address stays a raw sockaddr: 22% less CPU per cached answer and
14% per blocked one (bench/dns_bench.py, one worker, 7.4 vs 9.2 and 10.8 vs
12.6 µs).
"""

from __future__ import annotations

import logging
import select
import socket
from collections.abc import Callable, Sequence
from types import ModuleType

from twisted.internet import defer
from twisted.python import failure

try:  # built by setup.py where a C compiler is present; else Python's recvfrom/sendto
    from dns_filter import _mmsg
except ImportError:
    _mmsg = None  # type: ignore[assignment]

log = logging.getLogger("ispedge.dns")
MAX_QUERY_BYTES = 4096  # larger UDP queries do not exist in practice; truncated ones fail parsing
READS_PER_WAKEUP = 64  # then let timers and TCP run
# An idle worker is woken only by its own socket; this often it also looks at
# its siblings' queues, so a stalled, stopped or restarting worker's clients
# wait at most this long instead of until it is back.
SIBLING_SWEEP_S = 0.1


class UdpReader:
    def __init__(
        self,
        sock: socket.socket,
        handle: Callable[[bytes, str, bool], bytes | defer.Deferred[bytes] | None],
        on_error: Callable[[], None],
        siblings: Sequence[socket.socket] = (),
        call_soon: Callable[[Callable[[], None]], object] | None = None,
        tick: Callable[[], None] | None = None,
        burst: bool = True,
    ):
        self.sock = sock
        self.handle = handle
        self.on_error = on_error
        self.siblings = tuple(siblings)
        self.call_soon = call_soon
        self.tick = tick  # dns_filter.handover: say which CPU we serve on
        self.burst = _mmsg if burst else None
        self.hosted: tuple[socket.socket, ...] = ()
        self._poll: select.epoll | None = None
        self._again = False

    def fileno(self) -> int:
        return self.sock.fileno() if self._poll is None else self._poll.fileno()

    def host(self, sockets: Sequence[socket.socket]) -> None:
        """Serve these sibling sockets (dns_filter.handover) as our own, in the same wake-up.

        While hosting, the reactor watches one epoll holding our socket and
        theirs: one reactor event per wake-up instead of one per socket (each
        costs a few µs of Twisted dispatch: two workers on one core went from
        1.06x to 1.03x the CPU per cached answer of one). Unregister this
        reader before calling and register it again after: the descriptor changes.
        """
        if self._poll is not None:
            self._poll.close()
            self._poll = None
        self.hosted = tuple(sockets)
        if self.hosted:
            self._poll = select.epoll()
            for sock in (self.sock, *self.hosted):
                self._poll.register(sock.fileno(), select.EPOLLIN)

    def logPrefix(self) -> str:  # noqa: N802 - Twisted interface
        return "dns-udp"

    def doRead(self) -> None:  # noqa: N802 - Twisted interface
        if self.tick is not None:
            self.tick()
        budget = READS_PER_WAKEUP - self._serve(self.sock, READS_PER_WAKEUP)
        for sock in self.hosted:
            self._serve(sock, READS_PER_WAKEUP)
        if budget <= 0 or not self.siblings:
            return
        # Our own queue is empty: take what the other workers' sockets hold before
        # sleeping. Workers sharing a core then run until every queue is empty,
        # instead of handing the core over each time one of them runs dry.
        stolen = 0
        for sibling in self.siblings:
            stolen += self._serve(sibling, budget - stolen)
            if stolen >= budget:
                break
        if stolen and not self._again and self.call_soon is not None:
            self._again = True
            self.call_soon(self._read_again)

    def _read_again(self) -> None:
        self._again = False
        self.doRead()

    def _serve(self, sock: socket.socket, budget: int) -> int:
        """Read up to `budget` queries from `sock`, then send their answers; count read."""
        if self.burst is not None and type(sock) is socket.socket:
            return self._serve_burst(self.burst, sock, budget)
        recv = sock.recvfrom
        handle = self.handle
        replies: list[tuple[bytes, tuple[str, int]]] = []
        read = 0
        while read < budget:
            try:
                data, addr = recv(MAX_QUERY_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # e.g. ICMP port unreachable reported on the socket
            read += 1
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
                result.addCallbacks(  # type: ignore[union-attr]
                    self._send_later, self._failed, callbackArgs=(sock, addr)
                )
        # Answers go out together after the burst is read: a client that sleeps
        # between answers is woken once per burst, not once per answer (a wake-up
        # costs the sender ~3 µs here; measured in bench/dns_bench.py).
        send = sock.sendto
        for response, addr in replies:
            try:
                send(response, addr)
            except OSError:
                pass  # client gone or buffer full: UDP may drop, the client retries
        return read

    def _serve_burst(self, burst: ModuleType, sock: socket.socket, budget: int) -> int:
        """_serve with one recvmmsg per 64 queries and one sendmmsg for the answers."""
        fd = sock.fileno()
        handle = self.handle
        replies: list[tuple[bytes, bytes]] = []
        read = 0
        while read < budget:
            wanted = min(budget - read, burst.BURST)
            try:
                queries = burst.recv_burst(fd, wanted)
            except OSError:
                break  # e.g. ICMP port unreachable reported on the socket
            read += len(queries)
            for data, host, peer in queries:
                try:
                    result = handle(data, host, True)
                except Exception:  # noqa: BLE001 - one bad packet must never stop the server
                    log.exception("query from %s failed", host)
                    self.on_error()
                    continue
                if result is None:
                    continue
                if type(result) is bytes:
                    replies.append((result, peer))
                else:
                    result.addCallbacks(  # type: ignore[union-attr]
                        self._send_later, self._failed, callbackArgs=(sock, peer)
                    )
            if len(queries) < wanted:
                break  # the queue is empty: no need to ask again to hear EAGAIN
        if replies:
            burst.send_burst(fd, replies)
        return read

    def _send_later(
        self, response: bytes, sock: socket.socket, addr: tuple[str, int] | bytes
    ) -> None:
        if type(addr) is bytes:  # a raw sockaddr from _mmsg.recv_burst
            self.burst.send_burst(sock.fileno(), [(response, addr)])
            return
        try:
            sock.sendto(response, addr)
        except OSError:
            pass

    def _failed(self, reason: failure.Failure) -> None:
        log.error("deferred answer failed: %s", reason.getErrorMessage())
        self.on_error()

    def connectionLost(self, reason: failure.Failure) -> None:  # noqa: N802 - Twisted interface
        self.host(())  # hosted sockets stay open: they are the siblings'
        self.sock.close()
