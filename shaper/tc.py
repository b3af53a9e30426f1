"""Encode and decode the tc messages the shaper uses: HTB, fifo leaves, u32.

Only what we send and read is here, laid out as in <linux/pkt_sched.h> and
<linux/pkt_cls.h>. Rates on the wire are bytes per second.
"""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from shaper.netlink import (
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTA_HDR,
    TCMSG,
    Request,
    attr,
    attr_str,
    attr_u32,
    parse_attrs,
)

RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWTCLASS, RTM_DELTCLASS, RTM_GETTCLASS = 40, 41, 42
RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 44, 45, 46

TC_H_ROOT = 0xFFFFFFFF
TCA_KIND, TCA_OPTIONS, TCA_STATS2 = 1, 2, 7
TCA_STATS_BASIC, TCA_STATS_PKT64 = 1, 8

TCA_HTB_PARMS, TCA_HTB_INIT, TCA_HTB_RATE64, TCA_HTB_CEIL64 = 1, 2, 6, 7
TC_LINKLAYER_ETHERNET = 1

TCA_U32_CLASSID, TCA_U32_HASH, TCA_U32_LINK, TCA_U32_DIVISOR, TCA_U32_SEL = 1, 2, 3, 4, 5
TC_U32_TERMINAL = 1

TCA_FQ_CODEL_FLOWS = 5

RATESPEC = struct.Struct("=BBHhHI")
HTB_OPT = struct.Struct("=12s12sIIIII")
HTB_GLOB = struct.Struct("=IIIII")
BASIC = struct.Struct("=QI")

# One psched tick is 64 ns on every kernel since 2.6.x (/proc/net/psched).
NS_PER_TICK = 64


def handle(major: int, minor: int = 0) -> int:
    return (major << 16) | minor


def _tcmsg(ifindex: int, handle_: int, parent: int, info: int = 0) -> bytes:
    return TCMSG.pack(socket.AF_UNSPEC, ifindex, handle_, parent, info)


def filter_info(prio: int, protocol: int) -> int:
    return (prio << 16) | socket.htons(protocol)


# ---------------------------------------------------------------- qdiscs


def htb_qdisc(
    ifindex: int, handle_: int, parent: int, default_minor: int, operation: str
) -> Request:
    glob = HTB_GLOB.pack(3, 10, default_minor, 0, 0)
    body = (
        _tcmsg(ifindex, handle_, parent)
        + attr_str(TCA_KIND, "htb")
        + attr(TCA_OPTIONS, attr(TCA_HTB_INIT, glob))
    )
    return Request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, body, operation)


@functools.lru_cache(maxsize=4096)
def _leaf_attrs(kind: str, limit: int) -> bytes:
    if kind == "fq_codel":
        # 1024 flows per subscriber would cost ~70 KB each; a home needs few.
        options = attr(TCA_OPTIONS, attr_u32(TCA_FQ_CODEL_FLOWS, 256))
    else:
        options = attr(TCA_OPTIONS, struct.pack("=I", limit))
    return attr_str(TCA_KIND, kind) + options


def leaf_qdisc(
    ifindex: int,
    handle_: int,
    parent: int,
    kind: str,
    limit: int,
    operation: str,
    address: str,
    create: bool,
) -> Request:
    """A class's leaf: fq_codel, or a fifo limited in bytes (bfifo) or packets (pfifo)."""
    body = _tcmsg(ifindex, handle_, parent) + _leaf_attrs(kind, limit)
    flags = NLM_F_CREATE | NLM_F_EXCL if create else 0
    return Request(RTM_NEWQDISC, flags, body, operation, address)


def delete_qdisc(ifindex: int, handle_: int, parent: int, operation: str) -> Request:
    return Request(RTM_DELQDISC, 0, _tcmsg(ifindex, handle_, parent), operation)


# ---------------------------------------------------------------- classes


@dataclass(frozen=True)
class HtbRate:
    """What an HTB class is set to: bytes/s and burst in bytes (both directions the same)."""

    rate_bps: int  # bytes per second
    burst_bytes: int

    def quantum(self) -> int:
        # Only matters when siblings borrow (ours never do); keep it in the
        # range HTB does not warn about.
        return min(max(self.rate_bps // 10, 1600), 200_000)

    def buffer_ticks(self) -> int:
        return self.burst_bytes * 1_000_000_000 // (self.rate_bps * NS_PER_TICK)


def _ratespec(rate_bps: int) -> bytes:
    # linklayer set → the kernel computes rates itself, no rate table needed.
    return RATESPEC.pack(0, TC_LINKLAYER_ETHERNET, 0, 0, 0, min(rate_bps, 0xFFFFFFFF))


@functools.lru_cache(maxsize=4096)
def _htb_class_attrs(rate: HtbRate) -> bytes:
    """TCA_KIND + TCA_OPTIONS of a class: the same for every class of one rate."""
    ticks = rate.buffer_ticks()
    spec = _ratespec(rate.rate_bps)
    options = attr(TCA_HTB_PARMS, HTB_OPT.pack(spec, spec, ticks, ticks, rate.quantum(), 0, 0))
    if rate.rate_bps > 0xFFFFFFFF:
        rate64 = struct.pack("=Q", rate.rate_bps)
        options += attr(TCA_HTB_RATE64, rate64) + attr(TCA_HTB_CEIL64, rate64)
    return attr_str(TCA_KIND, "htb") + attr(TCA_OPTIONS, options)


def htb_class(
    ifindex: int,
    classid: int,
    parent: int,
    rate: HtbRate,
    operation: str,
    address: str | None,
    create: bool,
) -> Request:
    body = _tcmsg(ifindex, classid, parent) + _htb_class_attrs(rate)
    flags = NLM_F_CREATE | NLM_F_EXCL if create else 0
    return Request(RTM_NEWTCLASS, flags, body, operation, address)


def delete_class(
    ifindex: int, classid: int, parent: int, operation: str, address: str | None
) -> Request:
    return Request(RTM_DELTCLASS, 0, _tcmsg(ifindex, classid, parent), operation, address)


class ClassInfo(NamedTuple):
    classid: int
    parent: int
    leaf: int  # handle of the leaf qdisc (0: HTB's built-in default)
    rate: HtbRate | None
    ceil_bps: int


_RTA = RTA_HDR.unpack_from
_U32 = struct.Struct("=I").unpack_from
_U64 = struct.Struct("=Q").unpack_from


def find_attr(buf: bytes, offset: int, end: int, kind: int) -> tuple[int, int] | None:
    """(start, end) of the payload of the first attribute ``kind`` in buf[offset:end]."""
    while offset + 4 <= end:
        length, t = _RTA(buf, offset)
        if length < 4:
            return None
        if t & 0x7FFF == kind:
            return offset + 4, offset + length
        offset += (length + 3) & ~3
    return None


def htb_options(options: bytes) -> tuple[HtbRate | None, int]:
    """(rate with burst, ceil) from an HTB class's TCA_OPTIONS payload."""
    o = parse_attrs(options)
    parms = o.get(TCA_HTB_PARMS)
    if parms is None or len(parms) < HTB_OPT.size:
        return None, 0
    rspec, cspec, buffer, _cbuf, _q, _lvl, _prio = HTB_OPT.unpack_from(parms, 0)
    rate_bps = RATESPEC.unpack(rspec)[5]
    ceil_bps = RATESPEC.unpack(cspec)[5]
    if TCA_HTB_RATE64 in o:
        (rate_bps,) = struct.unpack_from("=Q", o[TCA_HTB_RATE64], 0)
    if TCA_HTB_CEIL64 in o:
        (ceil_bps,) = struct.unpack_from("=Q", o[TCA_HTB_CEIL64], 0)
    # The kernel reports the buffer back in ticks, rounded: recover bytes.
    burst = round(buffer * NS_PER_TICK * rate_bps / 1_000_000_000) if rate_bps else 0
    return HtbRate(rate_bps, burst), ceil_bps


def class_header(buf: bytes, start: int, end: int) -> tuple[int, int, int, bytes]:
    """(classid, parent, leaf, raw TCA_OPTIONS) of one class message, parsed in place.

    The options hold the rate and never change with traffic, so callers can
    memoise ``htb_options`` on them; the rest of the message is statistics.
    """
    _fam, _ifindex, classid, parent, leaf = TCMSG.unpack_from(buf, start)
    where = find_attr(buf, start + TCMSG.size, end, TCA_OPTIONS)
    options = buf[where[0] : where[1]] if where else b""
    return classid, parent, leaf, options


def parse_class(payload: bytes) -> ClassInfo:
    classid, parent, leaf, options = class_header(payload, 0, len(payload))
    rate, ceil_bps = htb_options(options) if options else (None, 0)
    return ClassInfo(classid, parent, leaf, rate, ceil_bps)


def class_counters(buf: bytes, start: int, end: int) -> tuple[int, int, int]:
    """(classid, bytes, packets) of one class message: the hot path of counters().

    The kernel writes TCA_STATS_PKT64 (packets beyond 32 bits) only when
    needed, and then right after TCA_STATS_BASIC (maybe after a pad).
    """
    (classid,) = _U32(buf, start + 8)
    stats = find_attr(buf, start + TCMSG.size, end, TCA_STATS2)
    if stats is None:
        return classid, 0, 0
    offset, stop = stats
    while offset + 4 <= stop:
        length, kind = _RTA(buf, offset)
        if length < 4:
            break
        if kind == TCA_STATS_BASIC:
            nbytes, npackets = BASIC.unpack_from(buf, offset + 4)
            offset += (length + 3) & ~3
            for _ in range(2):
                if offset + 12 > stop:
                    break
                length, kind = _RTA(buf, offset)
                if kind == TCA_STATS_PKT64:
                    (npackets,) = _U64(buf, offset + 4)
                    break
                offset += (length + 3) & ~3
            return classid, nbytes, npackets
        offset += (length + 3) & ~3
    return classid, 0, 0


def counters_in(data: bytes, end: int, out: dict[int, tuple[int, int]]) -> None:
    """Add {classid: (bytes, packets)} of every class message in a datagram."""
    offset = 0
    while offset + 16 <= end:
        length, msg_type = _NLHDR(data, offset)
        if msg_type == RTM_NEWTCLASS:
            classid, nbytes, npackets = class_counters(data, offset + 16, offset + length)
            out[classid] = (nbytes, npackets)
        offset += (length + 3) & ~3


_NLHDR = struct.Struct("=IH").unpack_from


def dump_request(ifindex: int, parent: int = 0) -> bytes:
    return _tcmsg(ifindex, 0, parent)


# ---------------------------------------------------------------- u32


@functools.lru_cache(maxsize=8)
def _sel_struct(nkeys: int) -> struct.Struct:
    # rtattr header, tc_u32_sel (offmask and hmask big-endian, passed pre-swapped),
    # then per key: mask, value (big-endian, pre-swapped), off, offmask.
    return struct.Struct("=HHBBBxHHhhI" + "IIii" * nkeys)


def _sel_attr(
    keys: Sequence[tuple[int, int, int]], flags: int = 0, hmask: int = 0, hoff: int = 0
) -> bytes:
    """TCA_U32_SEL attribute: one struct.pack, this is built 40,000 times a build."""
    packer = _sel_struct(len(keys))
    flat: list[int] = []
    for mask, value, off in keys:
        flat += (socket.htonl(mask), socket.htonl(value), off, 0)
    return packer.pack(
        packer.size, TCA_U32_SEL, flags, 0, len(keys), 0, 0, 0, hoff, socket.htonl(hmask), *flat
    )


# TCA_OPTIONS header, then TCA_U32_HASH and TCA_U32_CLASSID.
_HASH_CLASSID = struct.Struct("=HHHHIHHI")
_KIND_U32 = attr_str(TCA_KIND, "u32")


def u32_handle(htid: int, bucket: int, node: int) -> int:
    return (htid << 20) | (bucket << 12) | node


def u32_table(
    ifindex: int,
    parent: int,
    prio: int,
    protocol: int,
    htid: int,
    operation: str,
    address: str | None = None,
) -> Request:
    options = attr(TCA_U32_DIVISOR, struct.pack("=I", 256))
    body = (
        _tcmsg(ifindex, u32_handle(htid, 0, 0), parent, filter_info(prio, protocol))
        + attr_str(TCA_KIND, "u32")
        + attr(TCA_OPTIONS, options)
    )
    return Request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, body, operation, address)


def u32_link(
    ifindex: int,
    parent: int,
    prio: int,
    protocol: int,
    node: int,
    htid: int,
    hmask: int,
    hoff: int,
    operation: str,
    address: str | None = None,
) -> Request:
    """A filter in the root table sending packets to table htid, bucket = masked byte."""
    options = attr_u32(TCA_U32_LINK, u32_handle(htid, 0, 0)) + _sel_attr([], 0, hmask, hoff)
    body = (
        _tcmsg(ifindex, node, parent, filter_info(prio, protocol))
        + attr_str(TCA_KIND, "u32")
        + attr(TCA_OPTIONS, options)
    )
    return Request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, body, operation, address)


def u32_match(
    ifindex: int,
    parent: int,
    prio: int,
    protocol: int,
    handle_: int,
    keys: Sequence[tuple[int, int, int]],
    classid: int,
    operation: str,
    address: str,
    create: bool = True,
) -> Request:
    sel = _sel_attr(keys, TC_U32_TERMINAL)
    options = _HASH_CLASSID.pack(
        4 + 16 + len(sel),
        TCA_OPTIONS,
        8,
        TCA_U32_HASH,
        handle_ & 0xFFFFF000,
        8,
        TCA_U32_CLASSID,
        classid,
    )
    body = _tcmsg(ifindex, handle_, parent, filter_info(prio, protocol)) + _KIND_U32 + options + sel
    flags = NLM_F_CREATE | NLM_F_EXCL if create else 0
    return Request(RTM_NEWTFILTER, flags, body, operation, address)


def delete_filter(
    ifindex: int,
    parent: int,
    prio: int,
    protocol: int,
    handle_: int,
    operation: str,
    address: str | None,
) -> Request:
    body = _tcmsg(ifindex, handle_, parent, filter_info(prio, protocol)) + attr_str(TCA_KIND, "u32")
    return Request(RTM_DELTFILTER, 0, body, operation, address)


class FilterInfo(NamedTuple):
    handle: int
    prio: int
    protocol: int
    classid: int  # 0 if none
    link: int  # 0 if none
    divisor: int  # 0 unless a hash table
    keys: tuple[tuple[int, int, int], ...]


_KIND_U32_PAYLOAD = b"u32\0"


def parse_filter(payload: bytes) -> FilterInfo | None:
    """One u32 filter message (None if another classifier), walked in place."""
    _fam, _ifindex, handle_, _parent, info = TCMSG.unpack_from(payload, 0)
    end = len(payload)
    kind = find_attr(payload, TCMSG.size, end, TCA_KIND)
    if kind is None or payload[kind[0] : kind[1]] != _KIND_U32_PAYLOAD:
        return None
    opts = find_attr(payload, TCMSG.size, end, TCA_OPTIONS)
    classid = link = divisor = 0
    keys: tuple[tuple[int, int, int], ...] = ()
    if opts is not None:
        offset, stop = opts
        while offset + 4 <= stop:
            length, t = _RTA(payload, offset)
            if length < 4:
                break
            t &= 0x7FFF
            if t == TCA_U32_CLASSID:
                (classid,) = _U32(payload, offset + 4)
            elif t == TCA_U32_LINK:
                (link,) = _U32(payload, offset + 4)
            elif t == TCA_U32_DIVISOR:
                (divisor,) = _U32(payload, offset + 4)
            elif t == TCA_U32_SEL:
                nkeys = payload[offset + 4 + 2]
                keys = tuple(_key(payload, offset + 4 + 16 + 16 * i) for i in range(nkeys))
            offset += (length + 3) & ~3
    return FilterInfo(
        handle_, info >> 16, socket.ntohs(info & 0xFFFF), classid, link, divisor, keys
    )


def _key(buf: bytes, offset: int) -> tuple[int, int, int]:
    mask, value = _KEY_MV(buf, offset)
    (off,) = _KEY_OFF(buf, offset + 8)
    return mask, value, off


_KEY_MV = struct.Struct("!II").unpack_from
_KEY_OFF = struct.Struct("=i").unpack_from
