"""The query chain, wired in one visible place.

    rate limit → parse question → who is asking (policy) → block decision
      → shared answer cache → upstream (coalesced; stale on failure)

`handle` returns the answer bytes at once whenever it can (rate-limited,
refused, blocked, cached: the hot path, no Deferred), a Deferred when an
upstream must be asked, or None to send nothing.
"""

from __future__ import annotations

import logging
import struct

from dnslib import CNAME, QTYPE, RR, DNSHeader, DNSQuestion, DNSRecord
from twisted.internet import defer

from dns_filter import wire
from dns_filter.block_log import BlockLog
from dns_filter.blocking import EXPIRED, BlockDecider, BlockResponder, Decision
from dns_filter.cache import AnswerCache
from dns_filter.metrics import Metrics
from dns_filter.policy import ClientPolicies
from dns_filter.ratelimit import RateLimiter
from dns_filter.upstream import UpstreamFailed, UpstreamPool

log = logging.getLogger("ispedge.dns")
SAFESEARCH_TTL = 300


class FilterChain:
    def __init__(
        self,
        clients: ClientPolicies,
        limiter: RateLimiter,
        decider: BlockDecider,
        responder: BlockResponder,
        cache: AnswerCache,
        upstreams: UpstreamPool,
        metrics: Metrics,
        block_log: BlockLog | None = None,
    ):
        self.block_log = block_log
        self.clients = clients
        self.limiter = limiter
        self.decider = decider
        self.responder = responder
        self.cache = cache
        self.upstreams = upstreams
        self.metrics = metrics
        self.inflight: dict[bytes, list[defer.Deferred[bytes | None]]] = {}

    def handle(self, data: bytes, source: str, udp: bool) -> bytes | defer.Deferred[bytes] | None:
        counts = self.metrics.queries
        if not self.limiter.allow(source):
            counts["ratelimited"] += 1
            return None
        try:
            q = wire.parse_question(data)
        except wire.FormatError:
            counts["formerr"] += 1
            return wire.error_response(data, wire.RCODE_FORMERR)
        except wire.NotAQuery:
            if len(data) < 12 or data[2] & 0x80:
                counts["dropped"] += 1
                return None
            counts["notimp"] += 1
            return wire.error_response(data, wire.RCODE_NOTIMP)

        categories = self.clients.categories_for(source)
        if categories is None or q.qclass != 1:
            counts["refused"] += 1
            return wire.build_response(data, q, wire.RCODE_REFUSED)
        if q.qtype == wire.TYPE_ANY:
            counts["any"] += 1
            return wire.rfc8482_response(data, q)

        # Fast lane: a cached answer this policy was already allowed to see under
        # the current blocklist generation needs no block decision (no qname built).
        key = q.cache_key(data)
        entry = self.cache.fresh_entry(key)
        generation = self.decider.generation
        if entry is not None and entry.allowed.get(categories) == generation:
            counts["cached"] += 1
            return self._from_cache(data, q, self.cache.render(entry), udp)

        decision = self.decider.decide(q.qname, categories)
        if decision.kind is not Decision.PASS:
            if decision.kind == Decision.BLOCK:
                counts["blocked"] += 1
                self.metrics.blocks[decision.detail] += 1
                if self.block_log is not None and decision.detail != EXPIRED:
                    # (an expired subscriber's lookups are not parental blocks)
                    self.block_log.add(source, q.qname, decision.detail)
                return self._fit(data, q, self.responder.respond(data, q, decision.detail), udp)
            if decision.kind == Decision.CANARY:
                counts["canary"] += 1
                return self.responder.canary(data, q)
            counts["safesearch"] += 1
            return defer.Deferred.fromCoroutine(self._safesearch(data, q, decision.detail, udp))

        if entry is not None:
            if len(entry.allowed) < 64:  # distinct policies are few; never let it grow unbounded
                entry.allowed[categories] = generation
            counts["cached"] += 1
            return self._from_cache(data, q, self.cache.render(entry), udp)
        counts["forwarded"] += 1
        d = self._lookup(data, q, key)
        d.addCallback(self._reply, data, q, udp)
        return d

    @classmethod
    def _from_cache(cls, data: bytes, q: wire.Question, cached: bytes, udp: bool) -> bytes:
        """The cached answer with the client's ID and question (its letter case) put back."""
        return cls._fit(
            data, q, data[:2] + cached[2:12] + data[12 : q.qend] + cached[q.qend :], udp
        )

    @staticmethod
    def _fit(data: bytes, q: wire.Question, response: bytes, udp: bool) -> bytes:
        if udp and len(response) > q.max_udp():
            return wire.truncated_response(data, q)
        return response

    def _reply(
        self, upstream_answer: bytes | None, data: bytes, q: wire.Question, udp: bool
    ) -> bytes:
        if upstream_answer is None:
            self.metrics.queries["servfail"] += 1
            return wire.build_response(data, q, wire.RCODE_SERVFAIL)
        return self._fit(
            data,
            q,
            data[:2] + upstream_answer[2:12] + data[12 : q.qend] + upstream_answer[q.qend :],
            udp,
        )

    def _lookup(self, data: bytes, q: wire.Question, key: bytes) -> defer.Deferred[bytes | None]:
        """Upstream answer (or stale, or None); one upstream query per key in flight."""
        d: defer.Deferred[bytes | None] = defer.Deferred()
        waiters = self.inflight.get(key)
        if waiters is not None:
            waiters.append(d)
            return d
        self.inflight[key] = [d]
        defer.Deferred.fromCoroutine(self._fetch(data, q, key))
        return d

    async def _fetch(self, data: bytes, q: wire.Question, key: bytes) -> None:
        result: bytes | None
        try:
            result = await self.upstreams.resolve(data, data[12 : q.qend].lower())
            self.cache.put(key, result)
        except UpstreamFailed as e:
            result = self.cache.get_stale(key)
            if result is not None:
                result = wire.add_ede(
                    result,
                    wire.EDE_STALE_ANSWER,
                    "upstreams unreachable",
                    bool(q.flags & wire.EDNS_FLAG),
                )
                self.metrics.queries["stale"] += 1
                log.info("all upstreams failed for %s (%s); serving stale", q.qname, e)
        except Exception:  # noqa: BLE001 - never leave waiters hanging
            log.exception("upstream lookup for %s failed", q.qname)
            result = None
        for waiter in self.inflight.pop(key, []):
            waiter.callback(result)
        self.metrics.gauges["cache_entries"] = len(self.cache)

    async def _safesearch(self, data: bytes, q: wire.Question, target: str, udp: bool) -> bytes:
        """CNAME the search front end to its safe host, with the host's own records after it."""
        try:
            return await self._safesearch_answer(data, q, target, udp)
        except Exception:  # noqa: BLE001 - odd types or answers dnslib cannot rebuild
            log.exception("safe-search rewrite of %s failed", q.qname)
            self.metrics.queries["servfail"] += 1
            return wire.build_response(data, q, wire.RCODE_SERVFAIL)

    async def _safesearch_answer(
        self, data: bytes, q: wire.Question, target: str, udp: bool
    ) -> bytes:
        name = (
            b"".join(bytes((len(label),)) + label.encode() for label in target.split(".")) + b"\x00"
        )
        arcount = b"\x00\x01" if q.flags & wire.EDNS_FLAG else b"\x00\x00"
        target_query = (
            b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00"
            + arcount
            + name
            + struct.pack("!HH", q.qtype, q.qclass)
        )
        if q.flags & wire.EDNS_FLAG:
            target_query += wire.opt_record(1232)
        tq = wire.parse_question(target_query)
        tkey = tq.cache_key(target_query)
        answer = self.cache.get(tkey)
        if answer is None:
            answer = await self._lookup(target_query, tq, tkey)
        if answer is None:
            self.metrics.queries["servfail"] += 1
            return wire.build_response(data, q, wire.RCODE_SERVFAIL)
        upstream = DNSRecord.parse(answer)
        header = DNSHeader(id=0, qr=1, ra=1, rd=(data[2] & 1), rcode=upstream.header.rcode)
        reply = DNSRecord(header, q=DNSQuestion(q.qname or ".", q.qtype, q.qclass))
        ttl = min([SAFESEARCH_TTL, *(rr.ttl for rr in upstream.rr)])
        reply.add_answer(RR(q.qname or ".", QTYPE.CNAME, rdata=CNAME(target), ttl=ttl))
        for rr in upstream.rr:
            reply.add_answer(rr)
        for rr in upstream.auth:
            reply.add_auth(rr)
        packed = reply.pack()
        if q.flags & wire.EDNS_FLAG:
            packed = packed[:10] + b"\x00\x01" + packed[12:] + wire.opt_record(1232)
        return self._fit(
            data, q, data[:2] + packed[2:12] + data[12 : q.qend] + packed[q.qend :], udp
        )
