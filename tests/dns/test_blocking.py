"""Block decisions over a real built store, and the blocked answers' bytes."""

from __future__ import annotations

from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from blocklists.store import DomainStore, build_store
from dns_filter import wire
from dns_filter.blocking import BlockDecider, BlockResponder, Decision


@pytest.fixture
def store(tmp_path: Path) -> DomainStore:
    build_store(
        tmp_path,
        {
            "adult": ["adult.example"],
            "gambling": ["bet.example", "casino.example"],
            "doh": ["dns.google"],
        },
        allowlist=["ok.casino.example"],
    )
    return DomainStore(tmp_path)


def test_category_blocks_domain_and_subdomains(store: DomainStore) -> None:
    d = BlockDecider(store, {"adult": ["doh"]})
    assert d.decide("bet.example", frozenset({"gambling"})).detail == "gambling"
    assert d.decide("a.b.bet.example", frozenset({"gambling"})).kind == Decision.BLOCK
    assert d.decide("notbet.example", frozenset({"gambling"})).kind == Decision.PASS
    assert d.decide("bet.example", frozenset({"adult"})).kind == Decision.PASS
    assert d.decide("bet.example", frozenset()).kind == Decision.PASS
    # allowlist beats the block
    assert d.decide("ok.casino.example", frozenset({"gambling"})).kind == Decision.PASS
    assert d.decide("x.casino.example", frozenset({"gambling"})).kind == Decision.BLOCK


def test_adult_implies_doh_and_safesearch(store: DomainStore) -> None:
    d = BlockDecider(store, {"adult": ["doh"]})
    assert d.decide("dns.google", frozenset({"adult"})).detail == "doh"
    assert d.decide("dns.google", frozenset({"gambling"})).kind == Decision.PASS
    cname = d.decide("www.google.de", frozenset({"adult"}))
    assert (cname.kind, cname.detail) == (Decision.CNAME, "forcesafesearch.google.com")
    assert d.decide("www.google.de", frozenset({"gambling"})).kind == Decision.PASS
    assert d.decide("docs.google.com", frozenset({"adult"})).kind == Decision.PASS


def test_canary_for_everyone_even_without_categories(store: DomainStore) -> None:
    d = BlockDecider(store)
    assert d.decide("use-application-dns.net", frozenset()).kind == Decision.CANARY


def test_swapping_store_clears_memos(store: DomainStore, tmp_path: Path) -> None:
    d = BlockDecider(store)
    assert d.decide("new.example", frozenset({"gambling"})).kind == Decision.PASS
    build_store(tmp_path / "g2", {"gambling": ["new.example"]})
    d.set_store(DomainStore(tmp_path / "g2"))
    assert d.decide("new.example", frozenset({"gambling"})).kind == Decision.BLOCK


def test_no_store_blocks_nothing() -> None:
    assert BlockDecider(None).decide("bet.example", frozenset({"gambling"})).kind == Decision.PASS


def _respond(responder: BlockResponder, rdtype: str, edns: bool = True) -> dns.message.Message:
    data = dns.message.make_query("Bet.Example", rdtype, use_edns=0 if edns else False).to_wire()
    q = wire.parse_question(data)
    first = responder.respond(data, q, "gambling")
    assert responder.respond(data, q, "gambling") == first
    return dns.message.from_wire(first)


def test_nxdomain_mode_with_ede() -> None:
    msg = _respond(BlockResponder("nxdomain", ttl=45), "A")
    assert msg.rcode() == dns.rcode.NXDOMAIN
    # an SOA so stubs and downstream caches keep the NXDOMAIN for the short blocked TTL
    (soa,) = msg.authority
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 45 and soa[0].minimum == 45
    (ede,) = msg.options
    assert ede.otype == dns.edns.EDE and ede.code == 15 and "gambling" in ede.text


def test_null_mode_answers_unspecified_addresses_with_short_ttl() -> None:
    r = BlockResponder("null", ttl=30)
    a = _respond(r, "A")
    assert a.rcode() == 0 and a.answer[0][0].address == "0.0.0.0" and a.answer[0].ttl == 30
    assert _respond(r, "AAAA").answer[0][0].address == "::"
    mx = _respond(r, "MX")
    assert mx.rcode() == 0 and not mx.answer and mx.authority[0].ttl == 30


def test_page_mode_answers_block_page_address() -> None:
    r = BlockResponder("page", "192.0.2.80", "2001:db8::80")
    assert _respond(r, "A").answer[0][0].address == "192.0.2.80"
    assert _respond(r, "AAAA").answer[0][0].address == "2001:db8::80"
    assert _respond(r, "A", edns=False).edns < 0


@pytest.mark.parametrize("mode", ["nxdomain", "null", "page"])
def test_remembered_answer_parts_equal_a_freshly_built_answer(mode: str) -> None:
    # respond() builds each (category, type, EDNS, RD, CD) answer once and then
    # only splices in the ID and question: it must equal a fresh build every time.
    responder = BlockResponder(mode, "192.0.2.80", "2001:db8::80", ttl=60)
    for i, (name, rdtype, edns, rd, cd) in enumerate([
        ("Bet365.com", "A", 0, True, False), ("www.bet365.com", "A", 0, True, False),
        ("bet365.com", "AAAA", -1, True, False), ("x.bet365.com", "AAAA", 0, False, True),
        ("bet365.com", "MX", 0, True, True), ("a.b.c.bet365.com", "A", -1, False, False),
        ("BET365.COM", "A", 0, True, False),
    ]):
        for category in ("gambling", "adult"):
            m = dns.message.make_query(name, rdtype, use_edns=edns)
            m.id = 1000 + i
            m.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0)
            data = m.to_wire()
            q = wire.parse_question(data)
            assert responder.respond(data, q, category) == responder._build(data, q, category)
            answer = dns.message.from_wire(responder.respond(data, q, category))
            assert answer.id == 1000 + i and str(answer.question[0].name) == name + "."
            assert bool(answer.flags & dns.flags.RD) == rd
            assert bool(answer.flags & dns.flags.CD) == cd


def test_expired_subscribers_reach_only_the_walled_garden(store: DomainStore) -> None:
    """Issue 19: the "expired" pseudo-category sends every name but the portal's own
    (and their subdomains) to the expired page; without a walled garden it is ignored."""
    d = BlockDecider(store, {"adult": ["doh"]}, walled_garden=["Portal.Acme.Test."])
    expired = frozenset({"expired"})
    for name in ("example.com", "bet.example", "acme.test", "xportal.acme.test"):
        assert (d.decide(name, expired).kind, d.decide(name, expired).detail) == (
            Decision.BLOCK, "expired"), name
    assert d.decide("portal.acme.test", expired).kind == Decision.PASS
    assert d.decide("api.portal.acme.test", expired).kind == Decision.PASS
    assert d.decide("use-application-dns.net", expired).kind == Decision.CANARY
    assert d.decide("example.com", frozenset({"gambling"})).kind == Decision.PASS
    off = BlockDecider(store, {"adult": ["doh"]})
    assert off.decide("example.com", expired).kind == Decision.PASS


def test_expired_answers_the_expired_page_briefly_whatever_the_block_mode() -> None:
    r = BlockResponder("nxdomain", ttl=60, expired_v4="192.0.2.9", expired_v6="2001:db8::9")
    data = dns.message.make_query("news.example", "A", use_edns=0).to_wire()
    msg = dns.message.from_wire(r.respond(data, wire.parse_question(data), "expired"))
    assert msg.rcode() == 0 and msg.answer[0][0].address == "192.0.2.9"
    assert msg.answer[0].ttl <= 5  # a renewal shows at once
    assert _respond(r, "A").rcode() == dns.rcode.NXDOMAIN  # other categories unchanged
