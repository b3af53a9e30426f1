"""DNS wire format on the hot path: read the question, build small answers.

dnslib costs ~70 µs per parse, so the per-query path never calls it: it reads
the header and the one question with plain indexing, and every answer the
filter makes itself (REFUSED, blocked, RFC 8482) is a few concatenated bytes.
dnslib is used only off the hot path (synthesised CNAME chains, tests).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_HINFO = 13
TYPE_AAAA = 28
TYPE_OPT = 41
TYPE_ANY = 255

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5

EDE_OPTION = 15  # RFC 8914
EDE_BLOCKED = 15
EDE_STALE_ANSWER = 3

EDNS_FLAG = 1
DO_FLAG = 2
CD_FLAG = 4


class FormatError(Exception):
    """The packet is a query we cannot read; answer FORMERR if it has a header."""


class NotAQuery(Exception):
    """A response or an unsupported opcode: never answered with a query answer."""


class Question:
    """The one question of a query, as offsets into the packet.

    `qname` (lower case, no trailing dot, "" for the root) is built only when
    asked: a cache hit already approved for the subscriber's policy never needs it.
    """

    __slots__ = (
        "qtype",
        "qclass",
        "name_end",
        "qend",
        "edns_size",
        "flags",
        "_data",
        "_dots",
        "_qname",
    )

    def __init__(
        self,
        data: bytes,
        dots: list[int],
        qtype: int,
        qclass: int,
        name_end: int,
        qend: int,
        edns_size: int,
        flags: int,
    ):
        self.qtype = qtype
        self.qclass = qclass
        self.name_end = name_end  # offset just past the name's terminating zero
        self.qend = qend  # offset just past QTYPE/QCLASS
        self.edns_size = edns_size  # 0 when the query carried no OPT record
        self.flags = flags  # EDNS_FLAG | DO_FLAG | CD_FLAG
        self._data = data
        self._dots = dots  # offsets of the length bytes after the first: they become dots
        self._qname: str | None = None

    @property
    def qname(self) -> str:
        if self._qname is None:
            if self.name_end == 13:
                self._qname = ""
            else:
                raw = bytearray(self._data[13 : self.name_end - 1])
                for dot in self._dots:
                    raw[dot - 13] = 46  # "."
                self._qname = raw.lower().decode("latin-1")
        return self._qname

    def cache_key(self, data: bytes) -> bytes:
        # Only the name is lowered: QTYPE bytes may fall in 'A'..'Z' (HTTPS = 65).
        return (
            data[12 : self.name_end].lower()
            + data[self.name_end : self.qend]
            + bytes((self.flags,))
        )

    def max_udp(self) -> int:
        return self.edns_size if self.edns_size else 512


def parse_question(data: bytes) -> Question:
    """Read a standard query's single question and its OPT record, if any."""
    n = len(data)
    if n < 12:
        raise FormatError("short header")
    if data[2] & 0x80:
        raise NotAQuery("QR set")
    if data[2] & 0x78:
        raise NotAQuery("opcode")
    if data[4] != 0 or data[5] != 1:
        raise FormatError("qdcount != 1")
    # Walk the labels, remembering where each length byte sits: those become dots.
    i = 12
    dots: list[int] = []
    try:
        length = data[12]
        while length:
            if length > 63:
                raise FormatError("compressed or bad label in question")
            i += length + 1
            dots.append(i)
            length = data[i]
    except IndexError:
        raise FormatError("name runs past the packet") from None
    name_end = i + 1
    qend = name_end + 4
    if name_end - 12 > 255:
        raise FormatError("name too long")
    if n < qend:
        raise FormatError("question truncated")
    qtype = (data[name_end] << 8) | data[name_end + 1]
    qclass = (data[name_end + 2] << 8) | data[name_end + 3]
    flags = CD_FLAG if data[3] & 0x10 else 0
    edns_size = 0
    if data[11] or data[10]:
        # OPT is the only additional record a stub sends after the question.
        if (
            n >= qend + 11
            and data[qend] == 0
            and data[qend + 1] == 0
            and data[qend + 2] == TYPE_OPT
        ):
            edns_size = max(512, min(4096, (data[qend + 3] << 8) | data[qend + 4]))
            flags |= EDNS_FLAG
            if data[qend + 7] & 0x80:
                flags |= DO_FLAG
    return Question(data, dots[:-1], qtype, qclass, name_end, qend, edns_size, flags)


def _flags(query: bytes, rcode: int, *, aa: bool = False, tc: bool = False) -> bytes:
    # QR, opcode 0, RD copied from the query, RA set; CD copied.
    b2 = 0x80 | (query[2] & 0x01) | (0x04 if aa else 0) | (0x02 if tc else 0)
    b3 = 0x80 | (query[3] & 0x10) | rcode
    return bytes((b2, b3))


def opt_record(udp_size: int = 1232, options: bytes = b"") -> bytes:
    return b"\x00\x00\x29" + struct.pack("!HBBHH", udp_size, 0, 0, 0, len(options)) + options


def ede_option(info_code: int, text: str) -> bytes:
    body = struct.pack("!H", info_code) + text.encode("utf-8")
    return struct.pack("!HH", EDE_OPTION, len(body)) + body


def error_response(data: bytes, rcode: int) -> bytes | None:
    """FORMERR/REFUSED/... for anything with a readable header; None to drop."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    try:
        q = parse_question(data)
    except (FormatError, NotAQuery):
        # Echo no question we could not read; opcode is kept so NOTIMP makes sense.
        b2 = 0x80 | (data[2] & 0x79)
        return data[:2] + bytes((b2, 0x80 | rcode)) + b"\x00" * 8
    return build_response(data, q, rcode)


def build_response(
    data: bytes,
    q: Question,
    rcode: int,
    answers: bytes = b"",
    ancount: int = 0,
    ede: bytes = b"",
    *,
    aa: bool = False,
    tc: bool = False,
    opt: bytes | None = None,
    authority: bytes = b"",
    nscount: int = 0,
) -> bytes:
    """Header + the client's own question + answers (+ OPT when the client sent one).

    `opt` is a prebuilt OPT record (hot callers keep one); else built from `ede`.
    """
    if not q.flags & EDNS_FLAG:
        opt = b""
    elif opt is None:
        opt = opt_record(1232, ede)
    head = (
        data[:2]
        + _flags(data, rcode, aa=aa, tc=tc)
        + struct.pack("!HHHH", 1, ancount, nscount, 1 if opt else 0)
    )
    return head + data[12 : q.qend] + answers + authority + opt


def truncated_response(data: bytes, q: Question) -> bytes:
    return build_response(data, q, RCODE_NOERROR, tc=True)


def rr_to_question(rtype: int, ttl: int, rdata: bytes) -> bytes:
    """One answer record whose owner is the question name (pointer to offset 12)."""
    return b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def encode_name(name: str) -> bytes:
    labels = [label.encode("ascii") for label in name.strip(".").split(".") if label]
    return b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"


def negative_soa(ttl: int) -> bytes:
    """An SOA owned by the question name whose MINIMUM (and TTL) let resolvers and
    stubs cache a synthesised NXDOMAIN for `ttl` seconds (RFC 2308)."""
    rdata = encode_name("blocked.ispedge.invalid") + encode_name("hostmaster.ispedge.invalid")
    rdata += struct.pack("!IIIII", 1, ttl, ttl, ttl, ttl)
    return rr_to_question(TYPE_SOA, ttl, rdata)


def rfc8482_response(data: bytes, q: Question) -> bytes:
    rdata = b"\x07RFC8482\x00"
    return build_response(data, q, RCODE_NOERROR, rr_to_question(TYPE_HINFO, 3600, rdata), 1)


def patch_id(query: bytes, response: bytes) -> bytes:
    return query[:2] + response[2:]


def rcode_of(response: bytes) -> int:
    return response[3] & 0x0F


def is_truncated(response: bytes) -> bool:
    return bool(response[2] & 0x02)


def skip_name(data: bytes, i: int) -> int:
    """Offset just past a (possibly compressed) name starting at i."""
    while True:
        length = data[i]
        if length == 0:
            return i + 1
        if length & 0xC0 == 0xC0:
            return i + 2
        if length > 63:
            raise FormatError("bad label")
        i += length + 1


@dataclass(slots=True)
class RecordRef:
    section: int  # 0 answer, 1 authority, 2 additional
    rtype: int
    ttl_offset: int
    ttl: int
    rdata_offset: int
    rdlength: int


def walk_records(data: bytes) -> list[RecordRef]:
    """Locate every resource record of a response (used when caching, not per query)."""
    if len(data) < 12:
        raise FormatError("short header")
    qd, an, ns, ar = struct.unpack_from("!HHHH", data, 4)
    i = 12
    for _ in range(qd):
        i = skip_name(data, i) + 4
    refs: list[RecordRef] = []
    for section, count in ((0, an), (1, ns), (2, ar)):
        for _ in range(count):
            i = skip_name(data, i)
            if i + 10 > len(data):
                raise FormatError("record truncated")
            rtype, _cls, ttl, rdlength = struct.unpack_from("!HHIH", data, i)
            refs.append(RecordRef(section, rtype, i + 4, ttl, i + 10, rdlength))
            i += 10 + rdlength
            if i > len(data):
                raise FormatError("rdata truncated")
    return refs


def add_ede(response: bytes, info_code: int, text: str, add_opt: bool = False) -> bytes:
    """The response with an EDE option appended to its OPT record; with no OPT, one
    is added when `add_opt` (the client sent EDNS), else the response is unchanged.

    Off the hot path (stale answers): walks the records to find the OPT.
    """
    try:
        refs = walk_records(response)
    except (FormatError, IndexError, struct.error):
        return response
    for ref in refs:
        if ref.section == 2 and ref.rtype == TYPE_OPT:
            option = ede_option(info_code, text)
            end = ref.rdata_offset + ref.rdlength
            rdlength = struct.pack("!H", ref.rdlength + len(option))
            return (
                response[: ref.rdata_offset - 2]
                + rdlength
                + response[ref.rdata_offset : end]
                + option
                + response[end:]
            )
    if not add_opt:
        return response
    arcount = struct.pack("!H", ((response[10] << 8) | response[11]) + 1)
    return response[:10] + arcount + response[12:] + opt_record(1232, ede_option(info_code, text))
