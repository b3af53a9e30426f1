"""Where every subscriber lives in the tc tree; fixed, so a restart can find it.

Per interface::

    htb 1: (root, default minor ffff)
    ├── class 1:ffff           default rate, only when Shaper(default=...) is set
    ├── class 1:1 .. 1:40      one per group, unlimited
    │   └── htb 10b: .. fd6:   the group's own HTB tree (majors: INNER_MAJORS)
    │       └── class 10b:N    one per subscriber, rate = ceil
    │           └── leaf       fq_codel / bfifo / pfifo, handle from LEAF_MAJORS
    └── u32 filters on 1: (prefix → group class) and on each 1xx: (prefix → class)

Why groups: when a class is added the kernel walks every class of that qdisc
to rebind filters (``tc_bind_tclass``), so adds under one HTB get slower as it
grows: 10,000 classes took 8.5 s under one qdisc and 0.9 s spread over 64.
Each packet is classified twice, both times by a 256-bucket u32 hash, so the
cost per packet stays flat however many subscribers there are.

Each filter's key is the subscriber's prefix, so the address → class mapping
is read back from the kernel (the filters) after a restart.
"""

from __future__ import annotations

from shaper.addresses import Prefix
from shaper.tc import handle

ROOT_MAJOR = 1
GROUPS = 64
DEFAULT_MINOR = 0xFFFF
SUBSCRIBER_MINORS = range(1, 0xFFFF)
U32_NODES = range(1, 0x1000)


def qdisc_hash_bucket(major: int) -> int:
    """The bucket of a device's 16-bucket qdisc hash (hash_32) this handle lands in.

    Every class or filter change looks its qdisc up by handle, walking one
    bucket. With 10,000 leaves the buckets hold ~600 qdiscs each, so the group
    HTBs live in the root's bucket and leaves never do: lookups of group
    qdiscs then walk ~65 entries. Measured: leaf adds 0.30 → 0.15 s and
    filter adds in groups 3-4x faster per 10,000.
    """
    return (((major << 16) * 0x61C88647) & 0xFFFFFFFF) >> 28


_ROOT_BUCKET = qdisc_hash_bucket(ROOT_MAJOR)
INNER_MAJORS: tuple[int, ...] = tuple(
    m for m in range(0x100, 0x1000) if qdisc_hash_bucket(m) == _ROOT_BUCKET
)[:GROUPS]
_GROUP_OF_MAJOR = {major: group for group, major in enumerate(INNER_MAJORS)}
# Leaf qdisc majors (~57,000 per interface): clear of the group majors and of
# the root's hash bucket. The kernel numbers handle-less qdiscs from 8001:
# per device, but we own these devices' trees, so none appear beside ours.
LEAF_MAJORS: tuple[int, ...] = tuple(
    m for m in range(0x1000, 0xFFFF) if qdisc_hash_bucket(m) != _ROOT_BUCKET
)
LEAF_MAJOR_SET = frozenset(LEAF_MAJORS)
DEFAULT_LEAF_MAJOR = 0x0FFF

ROOT = handle(ROOT_MAJOR)
DEFAULT_CLASS = handle(ROOT_MAJOR, DEFAULT_MINOR)

# u32 priority per IP version; each (priority, protocol) is its own filter list.
PRIO = {4: 10, 6: 20}

# A group class is never the bottleneck: 100 Gbit/s.
GROUP_RATE_BPS = 12_500_000_000


def group_of(prefix: Prefix) -> int:
    return prefix.bucket(prefix.hash_byte) % GROUPS


def group_class(group: int) -> int:
    return handle(ROOT_MAJOR, group + 1)


def inner_qdisc(group: int) -> int:
    return handle(INNER_MAJORS[group])


def group_of_inner(qdisc_handle: int) -> int | None:
    if qdisc_handle & 0xFFFF:
        return None
    return _GROUP_OF_MAJOR.get(qdisc_handle >> 16)


def table_id(prefix: Prefix) -> int:
    """u32 hash table id for prefixes of this version and length (below the auto 800+)."""
    return 0x100 * (prefix.version // 2) + prefix.length


def link_node(prefix: Prefix) -> int:
    """Node of the root-table filter linking to table_id: longer prefixes are tried first."""
    return 0x200 - prefix.length
