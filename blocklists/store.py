"""Compact, memory-mapped domain store with suffix lookup.

Each domain is stored as its reversed string plus a dot ("example.com" →
"moc.elpmaxe.") in a marisa-trie, so every listed parent of a query name is a
*prefix* of the reversed query name and one `iter_prefixes_with_ids` call finds
them all; the trailing dot keeps matches on label boundaries. A parallel
unsigned array (indexed by key id; one byte for up to 8 categories) holds
each domain's category bitmask. Both files are memory-mapped, so every
worker process shares one copy in the page cache, and opening a store takes
well under a millisecond.
"""

from __future__ import annotations

import json
import mmap
import os
from array import array
from collections.abc import Iterable, Mapping
from pathlib import Path

import marisa_trie

TRIE_FILE = "domains.marisa"
MASK_FILE = "masks.bin"
ALLOW_FILE = "allow.marisa"
MANIFEST_FILE = "manifest.json"
MAX_CATEGORIES = 32


def mask_typecode(categories: int) -> str:
    """The narrowest unsigned array type holding one bit per category."""
    return "B" if categories <= 8 else "H" if categories <= 16 else "I"


def reverse_key(domain: str) -> str:
    return domain[::-1] + "."


def build_store(
    out_dir: Path,
    categories: Mapping[str, Iterable[str]],
    allowlist: Iterable[str] = (),
    extra_manifest: Mapping[str, object] | None = None,
    trie_levels: int = 1,
) -> dict[str, int]:
    """Write a store for {category: domains} into out_dir; return counts per category.

    `trie_levels` 1 (default) looks up ~2x faster; 3 (marisa's default) makes
    the file ~35% smaller (measured on 1M random names: 15.7 vs 10.0 MB,
    1.4 vs 3.1 µs per hit).
    """
    names = sorted(categories)
    if len(names) > MAX_CATEGORIES:
        raise ValueError(f"at most {MAX_CATEGORIES} categories")
    masks: dict[str, int] = {}
    counts: dict[str, int] = {}
    for bit, name in enumerate(names):
        n = 0
        for domain in categories[name]:
            key = reverse_key(domain)
            masks[key] = masks.get(key, 0) | (1 << bit)
            n += 1
        counts[name] = n
    out_dir.mkdir(parents=True, exist_ok=True)
    trie = marisa_trie.Trie(masks.keys(), num_tries=trie_levels, cache_size=marisa_trie.SMALL_CACHE)
    width = mask_typecode(len(names))
    by_id = array(width, bytes(array(width).itemsize * len(trie)))
    for key, mask in masks.items():
        by_id[trie.key_id(key)] = mask
    trie.save(str(out_dir / TRIE_FILE))
    with open(out_dir / MASK_FILE, "wb") as f:
        by_id.tofile(f)
    marisa_trie.Trie([reverse_key(d) for d in allowlist]).save(str(out_dir / ALLOW_FILE))
    manifest = {
        "categories": names,
        "counts": counts,
        "domains": len(trie),
        "mask_type": width,
        **(extra_manifest or {}),
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    return counts


class DomainStore:
    """A read-only, memory-mapped store; `lookup` returns a category bitmask."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.manifest = json.loads((directory / MANIFEST_FILE).read_text())
        self.categories: list[str] = list(self.manifest["categories"])
        self.bits = {name: 1 << i for i, name in enumerate(self.categories)}
        self._trie = marisa_trie.Trie()
        self._trie.mmap(str(directory / TRIE_FILE))
        self._allow = marisa_trie.Trie()
        self._allow.mmap(str(directory / ALLOW_FILE))
        size = os.path.getsize(directory / MASK_FILE)
        if size:
            with open(directory / MASK_FILE, "rb") as f:
                self._mmap: mmap.mmap | None = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._masks = memoryview(self._mmap).cast(self.manifest.get("mask_type", "I"))
        else:
            self._mmap = None
            self._masks = memoryview(b"").cast("B")
        if len(self._masks) != len(self._trie):
            raise ValueError(f"{directory}: mask file does not match the trie")
        self._prefixes = self._trie.iter_prefixes_with_ids
        self._allowed = self._allow.prefixes

    def __len__(self) -> int:
        return len(self._trie)

    def lookup(self, domain: str) -> int:
        """Bitmask of the categories listing the domain or one of its parents, minus allowlisted."""
        key = domain[::-1] + "."
        mask = 0
        masks = self._masks
        for _key, key_id in self._prefixes(key):
            mask |= masks[key_id]
        if mask and self._allowed(key):
            return 0
        return mask

    def mask_of(self, categories: Iterable[str]) -> int:
        bits = self.bits
        mask = 0
        for name in categories:
            mask |= bits.get(name, 0)
        return mask

    def first_category(self, mask: int) -> str:
        low = mask & -mask
        return self.categories[low.bit_length() - 1]

    def close(self) -> None:
        # Views into the mmap must go before the mmap itself.
        self._masks.release()
        if self._mmap is not None:
            self._mmap.close()
