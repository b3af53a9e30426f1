"""The chain with plain values: each stage's effect on an answer, and fuzzing."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer

from blocklists.store import DomainStore, build_store
from dns_filter import wire
from dns_filter.blocking import BlockDecider, BlockResponder
from dns_filter.cache import AnswerCache
from dns_filter.metrics import Metrics
from dns_filter.policy import ClientPolicies, PolicyRow, PolicyTable
from dns_filter.ratelimit import RateLimiter
from dns_filter.resolver import FilterChain
from dns_filter.upstream import UpstreamFailed


class StubUpstreams:
    """Answers every A query with 192.0.2.1 (or fails when told to)."""

    def __init__(self) -> None:
        self.asked: list[bytes] = []
        self.fail = False

    async def resolve(self, query: bytes, question: bytes) -> bytes:
        self.asked.append(question)
        if self.fail:
            raise UpstreamFailed("down")
        msg = dns.message.from_wire(query)
        response = dns.message.make_response(msg)
        if msg.question[0].rdtype == 1:
            response.answer.append(
                dns.rrset.from_text(msg.question[0].name, 300, "IN", "A", "192.0.2.1")
            )
        return response.to_wire()


@pytest.fixture
def chain(tmp_path: Path) -> FilterChain:
    build_store(
        tmp_path, {"gambling": ["bet.example"], "adult": ["adult.example"], "doh": ["dns.google"]}
    )
    table = PolicyTable()
    table.replace_all(
        [PolicyRow("10.0.0.5", "alice", "gambling,adult"), PolicyRow("10.0.0.6", "bob", "")]
    )
    return FilterChain(
        ClientPolicies(table, ["10.0.0.0/8"], ["doh"]),
        RateLimiter(0, 1),
        BlockDecider(DomainStore(tmp_path), {"adult": ["doh"]}),
        BlockResponder("nxdomain"),
        AnswerCache(),
        StubUpstreams(),  # type: ignore[arg-type]
        Metrics(),
    )


def ask(
    chain: FilterChain, name: str, source: str = "10.0.0.5", rdtype: str = "A"
) -> dns.message.Message:
    result = chain.handle(dns.message.make_query(name, rdtype).to_wire(), source, True)
    if isinstance(result, defer.Deferred):
        out: list[bytes] = []
        result.addCallback(out.append)
        result = out[0]
    assert result is not None
    return dns.message.from_wire(result)


def test_stages_in_order(chain: FilterChain) -> None:
    assert ask(chain, "x.test", source="192.0.2.9").rcode() == dns.rcode.REFUSED
    assert ask(chain, "www.bet.example").rcode() == dns.rcode.NXDOMAIN
    assert ask(chain, "www.bet.example", source="10.0.0.6").rcode() == dns.rcode.NOERROR
    assert ask(chain, "dns.google", source="10.0.0.7").rcode() == dns.rcode.NXDOMAIN
    first = ask(chain, "Shared.Test", source="10.0.0.5")
    second = ask(chain, "shared.test", source="10.0.0.6")
    assert str(second.question[0].name) == "shared.test."  # the client's own case is echoed
    assert first.answer[0][0].address == second.answer[0][0].address == "192.0.2.1"
    # one upstream query: per-subscriber policy does not split the cache
    assert chain.upstreams.asked.count(b"\x06shared\x04test\x00\x00\x01\x00\x01") == 1  # type: ignore[attr-defined]
    assert chain.metrics.queries["cached"] == 1


def test_upstream_failure_is_servfail_without_stale(chain: FilterChain) -> None:
    chain.upstreams.fail = True  # type: ignore[attr-defined]
    assert ask(chain, "down.test").rcode() == dns.rcode.SERVFAIL
    assert chain.metrics.queries["servfail"] == 1


def test_coalesces_identical_inflight_queries(chain: FilterChain) -> None:
    gate: defer.Deferred[None] = defer.Deferred()
    stub = chain.upstreams
    calls = []

    class Slow:
        async def resolve(self, query: bytes, question: bytes) -> bytes:
            calls.append(question)
            await gate
            return await stub.resolve(query, question)  # type: ignore[attr-defined]

    chain.upstreams = Slow()  # type: ignore[assignment]
    results = [
        chain.handle(dns.message.make_query("same.test", "A").to_wire(), src, True)
        for src in ("10.0.0.5", "10.0.0.6", "10.0.0.8")
    ]
    assert len(calls) == 1
    gate.callback(None)
    got: list[bytes] = []
    for r in results:
        r.addCallback(got.append)  # type: ignore[union-attr]
    assert len(got) == 3 and all(dns.message.from_wire(g).answer for g in got)


@settings(
    max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=120))
def test_fuzz_chain_never_raises(chain: FilterChain, data: bytes) -> None:
    result = chain.handle(data, "10.0.0.5", True)
    if isinstance(result, defer.Deferred):
        out: list[object] = []
        result.addBoth(out.append)
        result = out[0]
    assert result is None or isinstance(result, bytes)
    if isinstance(result, bytes):
        assert len(result) >= 12
        if len(data) >= 2:
            assert result[:2] == data[:2]


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["bet.example", "x.test", "use-application-dns.net", "www.google.com"]),
    st.binary(min_size=1, max_size=8),
    st.integers(2, 40),
)
def test_fuzz_mutated_queries_get_formerr_or_an_answer(
    chain: FilterChain, name: str, noise: bytes, where: int
) -> None:
    data = bytearray(dns.message.make_query(name, "A", use_edns=0).to_wire())
    data[where : where + len(noise)] = noise
    result = chain.handle(bytes(data), "10.0.0.5", True)
    if isinstance(result, defer.Deferred):
        out: list[object] = []
        result.addBoth(out.append)
        result = out[0]
    assert result is None or isinstance(result, bytes)
    if isinstance(result, bytes) and wire.rcode_of(result) == wire.RCODE_FORMERR:
        assert result[:2] == bytes(data[:2])


def test_cached_allow_is_rechecked_after_store_or_policy_change(
    chain: FilterChain, tmp_path: Path
) -> None:
    assert ask(chain, "late.example").rcode() == dns.rcode.NOERROR  # forwarded, cached
    assert ask(chain, "late.example").rcode() == dns.rcode.NOERROR  # fast lane (allowed, cached)
    assert ask(chain, "late.example", source="10.0.0.6").rcode() == dns.rcode.NOERROR
    assert chain.metrics.queries["cached"] == 2
    build_store(tmp_path / "g2", {"gambling": ["late.example"], "adult": [], "doh": []})
    chain.decider.set_store(DomainStore(tmp_path / "g2"))
    assert ask(chain, "late.example").rcode() == dns.rcode.NXDOMAIN
    assert (
        ask(chain, "late.example", source="10.0.0.6").rcode() == dns.rcode.NOERROR
    )  # bob blocks nothing
    chain.clients.table.replace_username("bob", [PolicyRow("10.0.0.6", "bob", "gambling")])
    assert ask(chain, "late.example", source="10.0.0.6").rcode() == dns.rcode.NXDOMAIN
