"""The memory-mapped store: suffix matching on label boundaries, masks, allowlist."""

from __future__ import annotations

import random
import string
from pathlib import Path

from blocklists.store import DomainStore, build_store


def test_suffix_lookup_on_label_boundaries(tmp_path: Path) -> None:
    build_store(
        tmp_path,
        {"adult": ["example.com", "x.org"], "gambling": ["bet.example.com", "x.org"]},
        ["safe.x.org"],
    )
    s = DomainStore(tmp_path)
    adult, gambling = s.bits["adult"], s.bits["gambling"]
    assert s.lookup("example.com") == adult
    assert s.lookup("a.b.example.com") == adult
    assert s.lookup("bet.example.com") == adult | gambling
    assert s.lookup("www.bet.example.com") == adult | gambling
    assert s.lookup("notexample.com") == 0  # not a label boundary
    assert s.lookup("example.com.evil") == 0
    assert s.lookup("com") == 0
    assert s.lookup("x.org") == adult | gambling
    assert s.lookup("safe.x.org") == 0 and s.lookup("deep.safe.x.org") == 0
    assert s.first_category(gambling | adult) == "adult"
    assert s.mask_of(["gambling", "unknown"]) == gambling
    assert len(s) == 3
    s.close()


def test_empty_store(tmp_path: Path) -> None:
    build_store(tmp_path, {"doh": []})
    s = DomainStore(tmp_path)
    assert len(s) == 0 and s.lookup("dns.google") == 0


def test_many_random_domains_agree_with_a_set(tmp_path: Path) -> None:
    rng = random.Random(1)
    names = {
        "".join(rng.choices(string.ascii_lowercase, k=8)) + "." + rng.choice(["com", "net"])
        for _ in range(20000)
    }
    build_store(tmp_path, {"c": names})
    s = DomainStore(tmp_path)
    for name in list(names)[:2000]:
        assert s.lookup(name) == 1 and s.lookup("www." + name) == 1
    for _ in range(2000):
        probe = "".join(rng.choices(string.ascii_lowercase, k=9)) + ".com"
        assert s.lookup(probe) == (1 if probe in names else 0)


def test_compact_trie_gives_same_answers(tmp_path: Path) -> None:
    names = [f"n{i}.example" for i in range(3000)]
    build_store(tmp_path / "fast", {"c": names}, trie_levels=1)
    build_store(tmp_path / "small", {"c": names}, trie_levels=3)
    fast, small = DomainStore(tmp_path / "fast"), DomainStore(tmp_path / "small")
    for probe in ["n1.example", "www.n2999.example", "n3000.example", "example"]:
        assert fast.lookup(probe) == small.lookup(probe)
