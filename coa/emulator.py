"""A NAS that answers RFC 5176 requests over real UDP, for tests, benchmarks
and demos where no MikroTik, accel-ppp or Cisco box is at hand.

It checks the Request Authenticator and Message-Authenticator like a NAS
does (a bad one is dropped silently), knows a set of sessions (unknown ones
get a NAK with Error-Cause 503), and can be made slow, deaf, forgetful of the
first copies of each request, or to sign answers with the wrong secret.

Run alone: python -m coa.emulator --secret S [--port P] [--delay-ms D]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from pyrad.packet import CoAPacket, PacketError

from coa.dictionary import load_dictionary
from coa.results import ANSWERS, DISCONNECT_REQUEST
from coa.types import SESSION_CONTEXT_NOT_FOUND


@dataclass
class ReceivedRequest:
    code: int
    packet_id: int
    attributes: dict[str, list[Any]]
    source: tuple[str, int]
    raw: bytes
    received_at: float = field(default_factory=time.monotonic)


class NasEmulator(asyncio.DatagramProtocol):
    """sessions: Acct-Session-Ids the NAS knows (None: every session is known).
    drop_first: ignore the first N copies of each request (forces retransmission).
    reply_secret: sign answers with this secret instead (a misconfigured NAS).
    """

    def __init__(
        self,
        secret: str,
        *,
        sessions: set[str] | None = None,
        delay_s: float = 0.0,
        silent: bool = False,
        drop_first: int = 0,
        reply_secret: str | None = None,
        record: bool = True,
    ) -> None:
        self.secret = secret.encode()
        self.reply_secret = (reply_secret or secret).encode()
        self.sessions = sessions
        self.delay_s = delay_s
        self.silent = silent
        self.drop_first = drop_first
        self.record = record
        self.dictionary = load_dictionary()
        self.received: list[ReceivedRequest] = []
        self.copies: Counter[bytes] = Counter()
        self.bad_authenticator = 0
        self.answered = 0
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        # a NAS sized for bursts: 1,000 requests at once fit in the buffer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((host, port))
        await loop.create_datagram_endpoint(lambda: self, sock=sock)
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            request = CoAPacket(packet=data, secret=self.secret, dict=self.dictionary)
        except PacketError:
            return
        if request.code not in ANSWERS or not self._authentic(request, data):
            self.bad_authenticator += 1
            return
        source = (str(addr[0]), int(addr[1]))
        if self.record:
            attributes = {name: list(request[name]) for name in request.keys()}
            self.received.append(
                ReceivedRequest(request.code, request.id, attributes, source, data)
            )
        if self.silent:
            return
        if self.drop_first:
            # counted only when asked: a long-running emulator must not grow
            self.copies[data] += 1
            if self.copies[data] <= self.drop_first:
                return
        answer = self._answer(request)
        if self.delay_s > 0:
            asyncio.get_running_loop().call_later(self.delay_s, self._send, answer, source)
        else:
            self._send(answer, source)

    def _authentic(self, request: CoAPacket, data: bytes) -> bool:
        if not request.VerifyCoARequest():
            return False
        # a NAS must drop a request whose Message-Authenticator is wrong
        return not request.message_authenticator or bool(request.verify_message_authenticator())

    def _answer(self, request: CoAPacket) -> bytes:
        ack, nak = ANSWERS[request.code]
        session_id = (request.get("Acct-Session-Id") or [None])[0]
        reply = request.CreateReply()
        reply.secret = self.reply_secret
        if self.sessions is not None and session_id not in self.sessions:
            reply.code = nak
            reply.AddAttribute("Error-Cause", SESSION_CONTEXT_NOT_FOUND)
        else:
            reply.code = ack
            if request.code == DISCONNECT_REQUEST and self.sessions is not None:
                self.sessions.discard(session_id)
        reply.add_message_authenticator()
        return bytes(reply.ReplyPacket())

    def _send(self, answer: bytes, source: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(answer, source)
            self.answered += 1


async def _serve(args: argparse.Namespace) -> None:
    emulator = NasEmulator(args.secret, delay_s=args.delay_ms / 1000, record=False)
    port = await emulator.start(args.host, args.port)
    print(f"listening {args.host} {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    emulator.close()
    print(f"answered {emulator.answered}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
