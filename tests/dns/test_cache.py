"""The shared answer cache: TTL countdown, caps, negative caching, stale answers."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rrset

from dns_filter import wire
from dns_filter.cache import AnswerCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(
    name: str = "x.test", ttl: int = 300, rcode: int = 0, soa: tuple[int, int] | None = None
) -> tuple[bytes, bytes]:
    query = dns.message.make_query(name, "A")
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if soa is None and rcode == 0:
        response.answer.append(dns.rrset.from_text(name + ".", ttl, "IN", "A", "192.0.2.1"))
    if soa is not None:
        soa_ttl, minimum = soa
        response.authority.append(
            dns.rrset.from_text(
                "test.", soa_ttl, "IN", "SOA", f"ns.test. admin.test. 1 2 3 4 {minimum}"
            )
        )
    data = query.to_wire()
    return wire.parse_question(data).cache_key(data), response.to_wire()


def test_ttl_counts_down_and_expires() -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock)
    key, data = answer(ttl=300)
    assert cache.put(key, data)
    assert dns.message.from_wire(cache.get(key)).answer[0].ttl == 300
    clock.now += 100.4
    assert dns.message.from_wire(cache.get(key)).answer[0].ttl == 200
    clock.now += 200
    assert cache.get(key) is None
    assert cache.hits == 2 and cache.misses == 1


def test_min_and_max_ttl_caps() -> None:
    clock = Clock()
    cache = AnswerCache(min_ttl=60, max_ttl=120, clock=clock)
    k1, short = answer("short.test", ttl=5)
    k2, long = answer("long.test", ttl=86400)
    cache.put(k1, short)
    cache.put(k2, long)
    clock.now += 59
    assert cache.get(k1) is not None
    clock.now += 62
    assert cache.get(k2) is None


def test_negative_answers_cached_for_soa_minimum() -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock)
    key, data = answer("nx.test", rcode=dns.rcode.NXDOMAIN, soa=(3600, 30))
    assert cache.put(key, data)
    clock.now += 29
    assert dns.message.from_wire(cache.get(key)).rcode() == dns.rcode.NXDOMAIN
    clock.now += 2
    assert cache.get(key) is None
    # no SOA: not cacheable (RFC 2308 section 5)
    key2, bare = answer("nx2.test", rcode=dns.rcode.NXDOMAIN)
    assert not cache.put(key2, bare)


def test_servfail_and_truncated_are_not_cached() -> None:
    cache = AnswerCache()
    key, data = answer(rcode=dns.rcode.SERVFAIL)
    assert not cache.put(key, data)
    key, ok = answer()
    tc = bytearray(ok)
    tc[2] |= 0x02
    assert not cache.put(key, bytes(tc))


def test_stale_answer_after_expiry_has_ttl_30_until_stale_window_ends() -> None:
    clock = Clock()
    cache = AnswerCache(stale_s=600, clock=clock)
    key, data = answer(ttl=10)
    cache.put(key, data)
    clock.now += 11
    assert cache.get(key) is None
    stale = cache.get_stale(key)
    assert stale is not None and dns.message.from_wire(stale).answer[0].ttl == 30
    clock.now += 600
    assert cache.get_stale(key) is None


def test_eviction_keeps_size_bounded() -> None:
    cache = AnswerCache(max_entries=50)
    for i in range(200):
        key, data = answer(f"n{i}.test")
        cache.put(key, data)
    assert len(cache) <= 50
    key, _ = answer("n199.test")
    assert cache.get(key) is not None
