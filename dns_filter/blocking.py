"""Block decision: (query name, subscriber categories) → pass, block or rewrite.

The blocklist store is swapped in whole when a new generation is published;
the small memo tables here are cleared at that moment, so a decision never
mixes two generations.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Protocol

from dns_filter import wire
from dns_filter.safesearch import safesearch_target

# Firefox keeps its own DoH off only when this name is NXDOMAIN (not 0.0.0.0).
CANARY = "use-application-dns.net"
SAFESEARCH_CATEGORY = "adult"
# The pseudo-category the policy views give an expired or disabled subscriber: every
# name outside the walled garden gets the expired page's address.
EXPIRED = "expired"
EXPIRED_TTL = 5  # seconds a stub or browser may keep the expired page's address


class Store(Protocol):
    categories: list[str]

    def lookup(self, domain: str) -> int: ...

    def mask_of(self, categories: Sequence[str] | frozenset[str]) -> int: ...

    def first_category(self, mask: int) -> str: ...


class Decision:
    __slots__ = ("kind", "detail")
    PASS = "pass"
    BLOCK = "block"  # detail = category
    CANARY = "canary"  # NXDOMAIN for everyone
    CNAME = "cname"  # detail = safe-search target

    def __init__(self, kind: str, detail: str = ""):
        self.kind = kind
        self.detail = detail


PASS = Decision(Decision.PASS)
CANARY_DECISION = Decision(Decision.CANARY, "canary")
EXPIRED_DECISION = Decision(Decision.BLOCK, EXPIRED)


class BlockDecider:
    def __init__(self, store: Store | None, implied: Mapping[str, Sequence[str]] | None = None,
                 walled_garden: Sequence[str] | None = None):
        """walled_garden: the names (with subdomains) an expired subscriber still reaches;
        None: no walled garden, the "expired" pseudo-category is ignored."""
        self.implied = {k: tuple(v) for k, v in (implied or {}).items()}
        self.walled_garden = (frozenset(n.lower().rstrip(".") for n in walled_garden)
                              if walled_garden is not None else None)
        self.store: Store | None = None
        self.generation = 0
        self._category_masks: dict[frozenset[str], int] = {}
        self._block_decisions: dict[str, Decision] = {}
        self.set_store(store)

    def set_store(self, store: Store | None) -> None:
        self.store = store
        self.generation += 1  # invalidates every remembered "allowed" decision
        self._category_masks = {}
        self._block_decisions = {}

    def subscriber_mask(self, categories: frozenset[str]) -> int:
        mask = self._category_masks.get(categories)
        if mask is None:
            names = set(categories)
            for name in categories:
                names.update(self.implied.get(name, ()))
            mask = self.store.mask_of(frozenset(names)) if self.store else 0
            self._category_masks[categories] = mask
        return mask

    def decide(self, qname: str, categories: frozenset[str]) -> Decision:
        if qname == CANARY:
            return CANARY_DECISION
        if not categories:
            return PASS
        if EXPIRED in categories and self.walled_garden is not None:
            return PASS if self.in_walled_garden(qname) else EXPIRED_DECISION
        wanted = self.subscriber_mask(categories)
        if wanted:
            # No per-name memo: a trie walk costs ~1 µs, and a memo of every name
            # ever asked costs ~100 bytes each plus GC work (measured: slower).
            hit = self.store.lookup(qname) & wanted  # type: ignore[union-attr]
            if hit:
                category = self.store.first_category(hit)  # type: ignore[union-attr]
                decision = self._block_decisions.get(category)
                if decision is None:
                    decision = self._block_decisions[category] = Decision(Decision.BLOCK, category)
                return decision
        if SAFESEARCH_CATEGORY in categories:
            target = safesearch_target(qname)
            if target is not None:
                return Decision(Decision.CNAME, target)
        return PASS


    def in_walled_garden(self, qname: str) -> bool:
        garden = self.walled_garden or frozenset()
        name = qname
        while True:
            if name in garden:
                return True
            dot = name.find(".")
            if dot < 0:
                return False
            name = name[dot + 1 :]


class BlockResponder:
    """Builds the answer for a blocked name: NXDOMAIN, null address or block page, plus EDE 15."""

    def __init__(self, mode: str, page_v4: str = "", page_v6: str = "", ttl: int = 60,
                 expired_v4: str = "", expired_v6: str = ""):
        self.mode = mode
        self.ttl = ttl
        # The expired page: always a page answer, short-lived so a renewal shows at once.
        self.expired = (BlockResponder("page", expired_v4, expired_v6, min(ttl, EXPIRED_TTL))
                        if expired_v4 or expired_v6 else None)
        if mode == "null":
            self.v4: bytes | None = bytes(4)
            self.v6: bytes | None = bytes(16)
        elif mode == "page":
            self.v4 = ipaddress.IPv4Address(page_v4).packed if page_v4 else None
            self.v6 = ipaddress.IPv6Address(page_v6).packed if page_v6 else None
        else:
            self.v4 = self.v6 = None
        self._rr_a = wire.rr_to_question(wire.TYPE_A, ttl, self.v4) if self.v4 else b""
        self._rr_aaaa = wire.rr_to_question(wire.TYPE_AAAA, ttl, self.v6) if self.v6 else b""
        self._soa = wire.negative_soa(ttl)
        self._opt: dict[str, bytes] = {}  # category -> OPT record carrying its EDE
        self._answers: dict[tuple[str, int, int, int, int], tuple[bytes, bytes]] = {}

    def respond(self, data: bytes, q: wire.Question, category: str) -> bytes:
        # The answer differs per query only in ID and question; everything else
        # depends on a handful of bits, so it is built once per combination.
        if category == EXPIRED and self.expired is not None:
            return self.expired.respond(data, q, category)
        key = (category, q.qtype, q.flags & wire.EDNS_FLAG, data[2] & 0x01, data[3] & 0x10)
        parts = self._answers.get(key)
        if parts is None:
            if len(self._answers) > 4096:  # categories x types x bits: never near this
                self._answers.clear()
            full = self._build(data, q, category)
            parts = self._answers[key] = (full[2:12], full[q.qend :])
        return data[:2] + parts[0] + data[12 : q.qend] + parts[1]

    def _build(self, data: bytes, q: wire.Question, category: str) -> bytes:
        opt = self._opt.get(category)
        if opt is None:
            ede = wire.ede_option(wire.EDE_BLOCKED, f"blocked by ispedge: category {category}")
            opt = self._opt[category] = wire.opt_record(1232, ede)
        if self.mode == "nxdomain":
            return wire.build_response(
                data, q, wire.RCODE_NXDOMAIN, opt=opt, authority=self._soa, nscount=1
            )
        if q.qtype == wire.TYPE_A and self._rr_a:
            return wire.build_response(data, q, 0, self._rr_a, 1, opt=opt)
        if q.qtype == wire.TYPE_AAAA and self._rr_aaaa:
            return wire.build_response(data, q, 0, self._rr_aaaa, 1, opt=opt)
        # Other types (or no page address for this family): NODATA, cacheable for ttl.
        return wire.build_response(data, q, 0, opt=opt, authority=self._soa, nscount=1)

    def canary(self, data: bytes, q: wire.Question) -> bytes:
        return wire.build_response(data, q, wire.RCODE_NXDOMAIN)
