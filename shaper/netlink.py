"""A minimal rtnetlink socket for traffic-control messages.

pyroute2 0.9.7 is too slow for tens of thousands of classes (it builds rate
tables modern kernels ignore, and one round trip per call), and its sync
``nlm_request`` is broken. We speak the wire format directly: messages are
encoded with ``struct``, sent many per ``sendmsg``, and every reply is matched
back to the message that caused it by sequence number.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

NETLINK_ROUTE = 0

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

NLMSG_HDR = struct.Struct("=IHHII")
TCMSG = struct.Struct("=BxxxiIII")
RTA_HDR = struct.Struct("=HH")
NLA_F_NESTED = 0x8000

CLONE_NEWNET = 0x40000000

# Messages per sendmsg: large enough to amortise the syscall, well inside
# the send buffer (a message is at most ~200 bytes).
BATCH = 1024


def attr(kind: int, payload: bytes) -> bytes:
    length = RTA_HDR.size + len(payload)
    return RTA_HDR.pack(length, kind) + payload + b"\0" * (-length & 3)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def parse_attrs(
    data: bytes | memoryview, offset: int = 0, end: int | None = None
) -> dict[int, Any]:
    """Attributes of one level as {type: payload memoryview}; the last wins."""
    view = memoryview(data)
    stop = len(view) if end is None else end
    out: dict[int, Any] = {}
    while offset + 4 <= stop:
        length, kind = RTA_HDR.unpack_from(view, offset)
        if length < 4:
            break
        out[kind & ~NLA_F_NESTED] = view[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return out


@dataclass(frozen=True)
class Request:
    """One message to send, and what to say about it if the kernel refuses."""

    msg_type: int
    flags: int
    body: bytes
    operation: str
    address: str | None = None


@dataclass(frozen=True)
class Failure:
    request: Request
    errno: int
    message: str

    def describe(self) -> str:
        who = f" for {self.request.address}" if self.request.address else ""
        return f"{self.request.operation}{who}: {self.message}"


def _netns_fd(netns: str) -> int:
    path = netns if netns.startswith("/") else f"/run/netns/{netns}"
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def in_netns(netns: str | None, func: Any) -> Any:
    """Run ``func()`` with this thread inside ``netns``, then come back.

    Sockets and interface indexes obtained inside stay bound to that
    namespace, so only their creation needs the switch.
    """
    if netns is None:
        return func()
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = _netns_fd(netns)
    try:
        _setns(target)
        try:
            return func()
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


class NetlinkSocket:
    """Blocking rtnetlink socket: batched requests with per-message acks, dumps."""

    def __init__(self, netns: str | None = None) -> None:
        self._sock: socket.socket = in_netns(netns, self._open)
        self._seq = 0
        self.sent = 0  # change requests (not reads) issued, for callers counting work

    @staticmethod
    def _open() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        # Ask for short error acks (no copy of our request in them).
        sock.setsockopt(270, 10, 1)  # SOL_NETLINK, NETLINK_CAP_ACK
        # And for the kernel's explanation of a refusal (extended ack).
        sock.setsockopt(270, 11, 1)  # SOL_NETLINK, NETLINK_EXT_ACK
        sock.bind((0, 0))
        return sock

    def close(self) -> None:
        self._sock.close()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def execute(
        self, requests: Sequence[Request], on_reply: Callable[[bytes], None] | None = None
    ) -> list[Failure]:
        """Send every request, BATCH per sendmsg; return the refusals.

        Requests carry no ACK flag, so the kernel answers only refusals (and
        GET replies); a NOOP with ACK closes each batch, and since the kernel
        handles a sendmsg before it returns, its ack means the batch is done.
        That saves one recv per request, which at 80,000 requests was a second.

        The kernel processes each message of a batch even when an earlier one
        fails, so callers order requests so that a failure leaves a state the
        next reconcile can read and repair.
        """
        failures: list[Failure] = []
        pack = NLMSG_HDR.pack
        for start in range(0, len(requests), BATCH):
            chunk = requests[start : start + BATCH]
            by_seq: dict[int, Request] = {}
            parts: list[bytes] = []
            for req in chunk:
                seq = self._next_seq()
                by_seq[seq] = req
                flags = req.flags | NLM_F_REQUEST
                parts.append(pack(NLMSG_HDR.size + len(req.body), req.msg_type, flags, seq, 0))
                parts.append(req.body)
            fence = self._next_seq()
            parts.append(pack(NLMSG_HDR.size, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, fence, 0))
            self._sock.sendall(b"".join(parts))
            # rtnetlink GET types are 2 mod 4; count only changes.
            self.sent += sum(1 for r in chunk if r.msg_type & 3 != 2)
            done = False
            while not done:
                data = self._sock.recv(1 << 20)
                for msg_type, seq, start_, end in _messages(data):
                    if seq == fence:
                        done = True
                        continue
                    req = by_seq.get(seq)
                    if req is None:
                        continue
                    if msg_type != NLMSG_ERROR:
                        if on_reply is not None:
                            on_reply(data[start_:end])
                        continue
                    (code,) = struct.unpack_from("=i", data, start_)
                    if code:
                        payload = data[start_:end]
                        failures.append(Failure(req, -code, _extack(payload) or os.strerror(-code)))
        return failures

    def dump(self, msg_type: int, body: bytes) -> Iterator[tuple[bytes, int, int]]:
        """Yield (buffer, start, end) locating each message payload of a dump.

        Callers parse in place: slicing 40,000 payloads out would cost more
        than the parsing itself.
        """
        seq = self._next_seq()
        header = NLMSG_HDR.pack(
            NLMSG_HDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
        )
        self._sock.sendall(header + body)
        while True:
            data = self._sock.recv(1 << 20)
            for rtype, rseq, start, end in _messages(data):
                if rseq != seq:
                    continue
                if rtype == NLMSG_DONE:
                    return
                if rtype == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, start)
                    if code:
                        raise OSError(-code, _extack(data[start:end]) or os.strerror(-code))
                    return
                yield data, start, end

    def dump_datagrams(self, msg_type: int, body: bytes) -> Iterator[tuple[bytes, int]]:
        """Yield (datagram, end) of a dump for callers that walk messages themselves.

        The hottest dump (counters, every few seconds) skips building a tuple
        per message; ``end`` excludes a trailing NLMSG_DONE.
        """
        seq = self._next_seq()
        header = NLMSG_HDR.pack(
            NLMSG_HDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
        )
        self._sock.sendall(header + body)
        while True:
            data = self._sock.recv(1 << 20)
            offset = 0
            while offset + 16 <= len(data):
                length, rtype, _flags, rseq, _pid = NLMSG_HDR.unpack_from(data, offset)
                if length < 16:
                    return
                if rseq == seq and rtype in (NLMSG_DONE, NLMSG_ERROR):
                    if rtype == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", data, offset + 16)
                        if code:
                            raise OSError(-code, os.strerror(-code))
                    if offset:
                        yield data, offset
                    return
                offset += (length + 3) & ~3
            yield data, len(data)


def _messages(data: bytes) -> list[tuple[int, int, int, int]]:
    """(type, seq, payload start, payload end) of each message in a datagram."""
    out = []
    offset = 0
    size = len(data)
    unpack = NLMSG_HDR.unpack_from
    while offset + 16 <= size:
        length, msg_type, _flags, seq, _pid = unpack(data, offset)
        if length < 16:
            break
        out.append((msg_type, seq, offset + 16, offset + length))
        offset += (length + 3) & ~3
    return out


NLMSGERR_ATTR_MSG = 1


def _extack(payload: bytes) -> str:
    """The kernel's extended-ack text of an error message, if it sent one."""
    # struct nlmsgerr: int error + the 16-byte header of our request (capped).
    attrs = parse_attrs(payload, 4 + NLMSG_HDR.size)
    text = attrs.get(NLMSGERR_ATTR_MSG)
    if text is None:
        return ""
    return bytes(text).rstrip(b"\0").decode(errors="replace")


def strerror(code: int) -> str:
    return errno_mod.errorcode.get(code, str(code))
