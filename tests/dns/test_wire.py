"""Hot-path parsing and answer building, checked against dnspython's reading of the bytes."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dns_filter import wire


def make(name: str = "WwW.Example.COM", rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()


def test_parse_question_reads_name_type_and_edns() -> None:
    data = make(use_edns=0, payload=1400, want_dnssec=True)
    q = wire.parse_question(data)
    assert q.qname == "www.example.com"
    assert (q.qtype, q.qclass) == (1, 1)
    assert q.edns_size == 1400 and q.flags & wire.EDNS_FLAG and q.flags & wire.DO_FLAG
    plain = wire.parse_question(make("a.b", "AAAA", use_edns=False))
    assert plain.qtype == 28 and plain.edns_size == 0 and plain.max_udp() == 512


def test_cache_key_ignores_name_case_but_not_type_or_do_bit() -> None:
    a = make("Example.com", "HTTPS")
    b = make("example.COM", "HTTPS")
    assert wire.parse_question(a).cache_key(a) == wire.parse_question(b).cache_key(b)
    c = make("example.com", "A")
    assert wire.parse_question(c).cache_key(c) != wire.parse_question(a).cache_key(a)
    d = make("example.com", "A", want_dnssec=True)
    assert wire.parse_question(d).cache_key(d) != wire.parse_question(c).cache_key(c)


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x00" * 11,
        b"\x12\x34\x01\x00\x00\x02" + b"\x00" * 6,
        b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6 + b"\x05abc",
    ],
)
def test_malformed_queries_raise_format_error(packet: bytes) -> None:
    with pytest.raises(wire.FormatError):
        wire.parse_question(packet)


def test_responses_and_other_opcodes_are_not_queries() -> None:
    response = dns.message.make_response(dns.message.make_query("x.test", "A")).to_wire()
    with pytest.raises(wire.NotAQuery):
        wire.parse_question(response)
    assert wire.error_response(response, wire.RCODE_FORMERR) is None  # never answer a response
    notify = bytearray(make())
    notify[2] |= 4 << 3
    reply = dns.message.from_wire(wire.error_response(bytes(notify), wire.RCODE_NOTIMP))
    assert reply.rcode() == dns.rcode.NOTIMP


def test_build_response_echoes_question_and_adds_ede_only_with_edns() -> None:
    data = make(use_edns=0)
    q = wire.parse_question(data)
    out = dns.message.from_wire(
        wire.build_response(data, q, wire.RCODE_NXDOMAIN, ede=wire.ede_option(15, "category adult"))
    )
    assert out.id == dns.message.from_wire(data).id
    assert (
        out.rcode() == dns.rcode.NXDOMAIN and out.flags & dns.flags.QR and out.flags & dns.flags.RA
    )
    assert str(out.question[0].name) == "WwW.Example.COM."
    (ede,) = out.options
    assert ede.otype == dns.edns.EDE and ede.code == 15 and ede.text == "category adult"
    data2 = make(use_edns=False)
    out2 = dns.message.from_wire(
        wire.build_response(data2, wire.parse_question(data2), 3, ede=wire.ede_option(15, "x"))
    )
    assert out2.edns < 0


def test_rfc8482_and_truncated() -> None:
    data = make("x.test", "ANY")
    q = wire.parse_question(data)
    out = dns.message.from_wire(wire.rfc8482_response(data, q))
    assert out.answer[0].rdtype == 13 and b"RFC8482" in out.answer[0][0].cpu
    tc = dns.message.from_wire(wire.truncated_response(data, q))
    assert tc.flags & dns.flags.TC and not tc.answer


def test_walk_records_finds_ttls() -> None:
    query = dns.message.make_query("x.test", "A", use_edns=0)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("x.test.", 123, "IN", "A", "192.0.2.1", "192.0.2.2"))
    data = response.to_wire()
    refs = wire.walk_records(data)
    assert [(r.section, r.rtype, r.ttl) for r in refs] == [(0, 1, 123), (0, 1, 123), (2, 41, 0)]


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_parse_never_raises_anything_else(data: bytes) -> None:
    try:
        q = wire.parse_question(data)
    except (wire.FormatError, wire.NotAQuery):
        reply = wire.error_response(data, wire.RCODE_FORMERR)
        assert reply is None or len(reply) >= 12
        return
    assert q.qend <= len(data)
    assert len(q.qname) <= 255


@settings(max_examples=1500, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.integers(0, 60))
def test_fuzz_mutated_valid_query(noise: bytes, where: int) -> None:
    base = bytearray(make("a.b.example.com", "AAAA", use_edns=0))
    pos = where % len(base)
    base[pos : pos + len(noise)] = noise
    try:
        wire.parse_question(bytes(base))
    except (wire.FormatError, wire.NotAQuery):
        pass


def test_add_ede_appends_to_existing_opt_only() -> None:
    query = dns.message.make_query("x.test", "A", use_edns=0)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("x.test.", 30, "IN", "A", "192.0.2.1"))
    out = dns.message.from_wire(wire.add_ede(response.to_wire(), wire.EDE_STALE_ANSWER, "stale"))
    assert [(o.code, o.text) for o in out.options] == [(3, "stale")]
    assert out.answer[0][0].address == "192.0.2.1"
    plain = dns.message.make_response(
        dns.message.make_query("x.test", "A", use_edns=False)
    ).to_wire()
    assert wire.add_ede(plain, 3, "stale") == plain
    added = dns.message.from_wire(wire.add_ede(plain, 3, "stale", add_opt=True))
    assert added.edns == 0 and [(o.code, o.text) for o in added.options] == [(3, "stale")]
    assert wire.add_ede(b"\x00\x01", 3, "x") == b"\x00\x01"
