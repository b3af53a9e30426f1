"""Shared wire-format cache of upstream answers.

It holds only what upstream said, keyed by the question (and the EDNS/DO/CD
bits that change the answer), never anything per subscriber: policy sits above
it, so one cached answer serves every subscriber allowed to see it.

TTLs count down: an entry is re-rendered at most once per second of age, so a
cache hit is a dict lookup plus a byte concatenation. Negative answers are
cached for the SOA minimum (RFC 2308); expired entries are kept for a stale
window and served with a 30 s TTL when every upstream fails (RFC 8767).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from dns_filter import wire

STALE_TTL = 30  # RFC 8767 section 4 recommends 30 s


class CacheEntry:
    __slots__ = (
        "allowed",
        "wire",
        "ttl_offsets",
        "stored_at",
        "expires",
        "stale_until",
        "rendered",
        "rendered_age",
    )

    def __init__(
        self,
        data: bytes,
        ttl_offsets: list[tuple[int, int]],
        stored_at: float,
        ttl: int,
        stale_s: int,
    ):
        self.wire = data
        self.ttl_offsets = ttl_offsets  # (offset, original ttl) of every record but OPT
        self.stored_at = stored_at
        self.expires = stored_at + ttl
        self.stale_until = self.expires + stale_s
        self.rendered = data
        self.rendered_age = 0
        # policy (categories) -> blocklist generation under which this name was
        # allowed: lets a repeat query skip the block decision (see resolver.py)
        self.allowed: dict[frozenset[str], int] = {}

    def render(self, age: int, stale: bool = False) -> bytes:
        if stale:
            return self._with_ttls(lambda _ttl: STALE_TTL)
        if age != self.rendered_age:
            self.rendered = self._with_ttls(lambda ttl: max(0, ttl - age))
            self.rendered_age = age
        return self.rendered

    def _with_ttls(self, new_ttl: Callable[[int], int]) -> bytes:
        buf = bytearray(self.wire)
        for offset, ttl in self.ttl_offsets:
            struct.pack_into("!I", buf, offset, new_ttl(ttl))
        return bytes(buf)


def answer_ttl(data: bytes) -> tuple[int, list[tuple[int, int]]] | None:
    """How long a response may be cached, and where its TTLs are; None = don't cache."""
    rcode = wire.rcode_of(data)
    if rcode not in (wire.RCODE_NOERROR, wire.RCODE_NXDOMAIN) or wire.is_truncated(data):
        return None
    refs = wire.walk_records(data)
    offsets = [(r.ttl_offset, r.ttl) for r in refs if r.rtype != wire.TYPE_OPT]
    answers = [r for r in refs if r.section == 0]
    if answers and rcode == wire.RCODE_NOERROR:
        return min(r.ttl for r in answers), offsets
    # Negative answer: min(SOA TTL, SOA MINIMUM) from the authority section.
    for r in refs:
        if r.section == 1 and r.rtype == wire.TYPE_SOA and r.rdlength >= 22:
            (minimum,) = struct.unpack_from("!I", data, r.rdata_offset + r.rdlength - 4)
            return min(r.ttl, minimum), offsets
    return None


class AnswerCache:
    def __init__(
        self,
        min_ttl: int = 0,
        max_ttl: int = 86400,
        stale_s: int = 86400,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.stale_s = stale_s
        self.max_entries = max_entries
        self.clock = clock
        self.entries: dict[bytes, CacheEntry] = {}
        self.hits = 0
        self.misses = 0
        self.stale_served = 0

    def get(self, key: bytes) -> bytes | None:
        """A fresh answer (TTLs counted down), or None."""
        entry = self.fresh_entry(key)
        return None if entry is None else self.render(entry)

    def fresh_entry(self, key: bytes) -> CacheEntry | None:
        entry = self.entries.get(key)
        if entry is not None and self.clock() < entry.expires:
            self.hits += 1
            return entry
        self.misses += 1
        return None

    def render(self, entry: CacheEntry) -> bytes:
        return entry.render(int(self.clock() - entry.stored_at))

    def get_stale(self, key: bytes) -> bytes | None:
        entry = self.entries.get(key)
        if entry is None or self.clock() >= entry.stale_until:
            return None
        self.stale_served += 1
        return entry.render(0, stale=True)

    def put(self, key: bytes, data: bytes) -> bool:
        try:
            found = answer_ttl(data)
        except (wire.FormatError, IndexError, struct.error):
            return False
        if found is None:
            return False
        ttl, offsets = found
        ttl = min(max(ttl, self.min_ttl), self.max_ttl)
        if ttl <= 0:
            return False
        if len(self.entries) >= self.max_entries:
            self._evict()
        self.entries.pop(key, None)  # re-insert at the end: eviction is oldest-first
        self.entries[key] = CacheEntry(data, offsets, self.clock(), ttl, self.stale_s)
        return True

    def _evict(self) -> None:
        now = self.clock()
        dead = [k for k, e in self.entries.items() if e.stale_until <= now]
        for k in dead:
            del self.entries[k]
        # Still full: drop the oldest tenth (dicts keep insertion order).
        if len(self.entries) >= self.max_entries:
            for k in list(self.entries)[: max(1, self.max_entries // 10)]:
                del self.entries[k]

    def __len__(self) -> int:
        return len(self.entries)
