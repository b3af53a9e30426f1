"""Where every subscriber lives in the tc tree; fixed, so a restart can find it.

Per interface::

    htb 1: (root, default minor ffff)
    ├── class 1:ffff           default rate, only when Shaper(default=...) is set
    ├── class 1:1 .. 1:40      one per group, unlimited
    │   └── htb 100: .. 13f:   the group's own HTB tree
    │       └── class 1xx:N    one per subscriber, rate = ceil
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
INNER_MAJOR_BASE = 0x100
DEFAULT_MINOR = 0xFFFF
SUBSCRIBER_MINORS = range(1, 0xFFFF)
# Leaf qdisc majors: clear of ours above and of the kernel's automatic 8000+.
LEAF_MAJORS = range(0x1000, 0x8000)
U32_NODES = range(1, 0x1000)

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
    return handle(INNER_MAJOR_BASE + group)


def group_of_inner(qdisc_handle: int) -> int | None:
    group = (qdisc_handle >> 16) - INNER_MAJOR_BASE
    return group if 0 <= group < GROUPS and qdisc_handle & 0xFFFF == 0 else None


def table_id(prefix: Prefix) -> int:
    """u32 hash table id for prefixes of this version and length (below the auto 800+)."""
    return 0x100 * (prefix.version // 2) + prefix.length


def link_node(prefix: Prefix) -> int:
    """Node of the root-table filter linking to table_id: longer prefixes are tried first."""
    return 0x200 - prefix.length
