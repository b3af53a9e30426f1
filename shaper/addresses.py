"""Subscriber addresses as the u32 classifier sees them.

A subscriber is an IPv4 address or an IPv4/IPv6 prefix (a delegated /64 or
/56). The classifier matches it with one key per 32-bit word of the prefix,
and hashes it on its last whole byte, the byte that varies most between
subscribers of one pool.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import NamedTuple

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD

# Offsets of the source and destination address inside the IP header.
_SRC_OFFSET = {4: 12, 6: 8}
_DST_OFFSET = {4: 16, 6: 24}
_TEXT: dict[Prefix, str] = {}  # canonical text, memoised: ipaddress is slow


class Prefix(NamedTuple):
    """A NamedTuple so hashing and comparing (done ~100,000 times per
    reconcile) stay in C."""

    version: int  # 4 or 6
    length: int
    packed: bytes  # network address, host bits zero

    @property
    def protocol(self) -> int:
        return ETH_P_IP if self.version == 4 else ETH_P_IPV6

    def __str__(self) -> str:
        text = _TEXT.get(self)
        if text is None:
            family = socket.AF_INET if self.version == 4 else socket.AF_INET6
            text = socket.inet_ntop(family, self.packed)
            if self.length != len(self.packed) * 8:
                text += f"/{self.length}"
            if len(_TEXT) > 1_000_000:
                _TEXT.clear()
            _TEXT[self] = text
        return text

    @property
    def hash_byte(self) -> int:
        """Index of the last whole byte inside the prefix (the outer hash key)."""
        return max(self.length // 8 - 1, 0)

    @property
    def inner_hash_byte(self) -> int:
        """The byte before it: subscribers of one group share hash_byte's low bits."""
        return max(self.hash_byte - 1, 0)

    def bucket(self, byte_index: int) -> int:
        return self.packed[byte_index]

    def keys(self, source: bool) -> list[tuple[int, int, int]]:
        """u32 match keys (mask, value, offset) for this prefix, host order."""
        base = (_SRC_OFFSET if source else _DST_OFFSET)[self.version]
        out = []
        remaining = self.length
        for word in range(len(self.packed) // 4):
            if remaining <= 0:
                break
            bits = min(remaining, 32)
            mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
            value = int.from_bytes(self.packed[word * 4 : word * 4 + 4], "big") & mask
            out.append((mask, value, base + word * 4))
            remaining -= 32
        return out

    def hash_word(self, byte_index: int, source: bool) -> tuple[int, int]:
        """(hash mask, aligned word offset) selecting one address byte."""
        base = (_SRC_OFFSET if source else _DST_OFFSET)[self.version]
        where = base + byte_index
        shift = 8 * (3 - where % 4)
        return 0xFF << shift, where - where % 4


def parse_prefix(text: str) -> Prefix:
    """'192.0.2.7', '2001:db8:1:2::/64' → Prefix (host bits cleared); raises ValueError.

    inet_pton, not ipaddress: a reconcile parses every subscriber's address
    and ipaddress takes ~50 µs each.
    """
    address, _, length_text = text.strip().partition("/")
    version = 6 if ":" in address else 4
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    try:
        packed = socket.inet_pton(family, address)
    except OSError:
        raise ValueError(f"{text!r} is not an IP address or prefix") from None
    bits = len(packed) * 8
    if not length_text:
        length = bits
    elif length_text.isdigit() and int(length_text) <= bits:
        length = int(length_text)
    else:
        raise ValueError(f"{text!r}: bad prefix length")
    if length < 8:
        raise ValueError(f"{text}: prefix shorter than /8 is not a subscriber")
    if length < bits:
        mask = ((1 << length) - 1) << (bits - length)
        packed = (int.from_bytes(packed, "big") & mask).to_bytes(len(packed), "big")
    return Prefix(version, length, packed)


def prefix_from_keys(
    version: int, keys: Sequence[tuple[int, int, int]], source: bool
) -> Prefix | None:
    """Inverse of Prefix.keys, for filters read back from the kernel."""
    base = (_SRC_OFFSET if source else _DST_OFFSET)[version]
    if version == 4 and len(keys) == 1 and keys[0][0] == 0xFFFFFFFF and keys[0][2] == base:
        return Prefix(4, 32, keys[0][1].to_bytes(4, "big"))  # the common case, fast
    size = 4 if version == 4 else 16
    raw = bytearray(size)
    length = 0
    for mask, value, offset in sorted(keys, key=lambda k: k[2]):
        word = (offset - base) // 4
        if offset - base != word * 4 or not 0 <= word < size // 4 or word * 32 != length:
            return None
        bits = bin(mask).count("1")
        if mask != (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF:
            return None
        raw[word * 4 : word * 4 + 4] = (value & mask).to_bytes(4, "big")
        length += bits
        if bits < 32:
            break
    if length < 8:
        return None
    return Prefix(version, length, bytes(raw))
