"""Read what is installed on one interface back from the kernel.

Everything the shaper needs to know survives in the kernel itself: the class
dump gives every class, its rate and its leaf; the u32 filters carry each
subscriber's prefix and the class it leads to. So a new process adopts the
tree as it finds it.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from shaper import layout
from shaper.addresses import ETH_P_IP, ETH_P_IPV6, Prefix, prefix_from_keys
from shaper.netlink import NetlinkSocket
from shaper.tc import (
    RTM_GETQDISC,
    RTM_GETTCLASS,
    RTM_GETTFILTER,
    TC_H_ROOT,
    TCA_KIND,
    TCMSG,
    ClassInfo,
    FilterInfo,
    HtbRate,
    class_header,
    dump_request,
    find_attr,
    htb_options,
    parse_filter,
)

_VERSION = {ETH_P_IP: 4, ETH_P_IPV6: 6}
_U32_ROOT_TABLES = 0x800  # u32 numbers its automatic root tables from 800:
# Installed.groups value: our handle is there, but not an HTB.
WRONG_KIND = -1


class PlacedFilter(NamedTuple):
    qdisc: int
    info: FilterInfo


@dataclass
class Installed:
    """One interface's tree as read from the kernel."""

    ifindex: int
    root_ok: bool = False
    groups: dict[int, int] = field(default_factory=dict)  # group → its class's leaf handle
    default_class: ClassInfo | None = None
    classes: dict[int, ClassInfo] = field(default_factory=dict)  # subscriber classes
    outer: dict[Prefix, list[PlacedFilter]] = field(default_factory=lambda: defaultdict(list))
    inner: dict[Prefix, list[PlacedFilter]] = field(default_factory=lambda: defaultdict(list))
    stray: list[PlacedFilter] = field(default_factory=list)  # in our tables but not ours
    tables: set[tuple[int, int]] = field(default_factory=set)  # (qdisc, table id)
    links: set[tuple[int, int]] = field(default_factory=set)  # (qdisc, table id)
    nodes: dict[tuple[int, int], set[int]] = field(default_factory=lambda: defaultdict(set))
    leaf_majors: set[int] = field(default_factory=set)

    def prefixes(self) -> set[Prefix]:
        return set(self.outer) | set(self.inner)


@dataclass
class ParseCache:
    """Decoded pieces of the last dumps, keyed by their raw bytes.

    Filter messages and class options do not change unless the tree does, so
    a reconcile with nothing to change decodes nothing: it looks each message
    up. (A kernel with CONFIG_CLS_U32_PERF puts hit counters in filter
    messages; then filters miss the cache and are decoded: slower, not wrong.)
    Each read keeps only what it saw, so the cache is the size of the tree.
    """

    filters: dict[bytes, tuple[object, ...]] = field(default_factory=dict)
    options: dict[bytes, tuple[HtbRate | None, int]] = field(default_factory=dict)


@dataclass
class Snapshot:
    """The raw dumps of one interface: cheap to take and to compare.

    Two equal snapshots mean an unchanged tree (statistics are left out), so
    a reconcile whose snapshot and desired state equal those of the last
    quiet reconcile has nothing to do and decodes nothing.
    """

    ifindex: int
    classes: list[tuple[int, int, int, bytes]]  # classid, parent, leaf, raw options
    kinds: dict[int, tuple[int, str]] | None  # handle → (parent, kind), if verified
    filters: list[tuple[int, list[bytes]]]  # (qdisc, raw filter messages)

    def same_tree(self, other: Snapshot | None) -> bool:
        return (
            other is not None
            and self.ifindex == other.ifindex
            and self.classes == other.classes
            and self.filters == other.filters
        )


def take_snapshot(nl: NetlinkSocket, ifindex: int, verify_kinds: bool) -> Snapshot:
    """Dump classes, (qdisc kinds,) and the filters of our root and group qdiscs."""
    classes = [class_header(b, s, e) for b, s, e in nl.dump(RTM_GETTCLASS, dump_request(ifindex))]
    kinds = read_qdisc_kinds(nl, ifindex) if verify_kinds else None
    qdiscs = []
    if any(c[0] >> 16 == layout.ROOT_MAJOR for c in classes):
        qdiscs.append(layout.ROOT)
    for classid, _parent, leaf, _options in classes:
        group = (classid & 0xFFFF) - 1
        if classid >> 16 != layout.ROOT_MAJOR or not 0 <= group < layout.GROUPS:
            continue
        if leaf == layout.inner_qdisc(group) and (
            kinds is None or kinds.get(leaf, (0, ""))[1] == "htb"
        ):
            qdiscs.append(leaf)
    filters = []
    for qdisc in qdiscs:
        raw = [b[s:e] for b, s, e in nl.dump(RTM_GETTFILTER, dump_request(ifindex, qdisc))]
        filters.append((qdisc, raw))
    return Snapshot(ifindex, classes, kinds, filters)


def read_qdisc_kinds(nl: NetlinkSocket, ifindex: int) -> dict[int, tuple[int, str]]:
    """handle → (parent, kind) of every qdisc on the interface."""
    out: dict[int, tuple[int, str]] = {}
    for buf, start, end in nl.dump(RTM_GETQDISC, dump_request(ifindex)):
        _f, index, handle, parent, _info = TCMSG.unpack_from(buf, start)
        if index != ifindex:
            continue
        kind = find_attr(buf, start + TCMSG.size, end, TCA_KIND)
        out[handle] = (parent, buf[kind[0] : kind[1]].rstrip(b"\0").decode() if kind else "")
    return out


def decode(snap: Snapshot, source: bool, cache: ParseCache) -> Installed:
    """The installed tree from a snapshot (``source``: upload side, match source addresses)."""
    state = Installed(snap.ifindex)
    inner_majors = {layout.inner_qdisc(g) >> 16 for g in range(layout.GROUPS)}
    options_cache = cache.options  # few distinct rates: stays small
    for classid, parent, leaf, options in snap.classes:
        decoded = options_cache.get(options)
        if decoded is None:
            decoded = options_cache[options] = htb_options(options) if options else (None, 0)
        info = ClassInfo(classid, parent, leaf, decoded[0], decoded[1])
        if leaf:
            state.leaf_majors.add(leaf >> 16)
        # HTB reports top-level classes with parent TC_H_ROOT: the major tells the qdisc.
        major, minor = classid >> 16, classid & 0xFFFF
        if major == layout.ROOT_MAJOR:
            if classid == layout.DEFAULT_CLASS:
                state.default_class = info
            elif 1 <= minor <= layout.GROUPS:
                state.groups[minor - 1] = leaf
        elif major in inner_majors and parent == TC_H_ROOT:
            state.classes[classid] = info
    if len(options_cache) > 100_000:
        options_cache.clear()
    state.root_ok = bool(state.groups) or state.default_class is not None
    if snap.kinds is not None:
        root = snap.kinds.get(layout.ROOT)
        state.root_ok = root is not None and root == (TC_H_ROOT, "htb")
        for group, leaf in list(state.groups.items()):
            if snap.kinds.get(leaf) != (layout.group_class(group), "htb"):
                state.groups[group] = WRONG_KIND if leaf == layout.inner_qdisc(group) else leaf
    if not state.root_ok:
        return Installed(snap.ifindex)
    new: dict[bytes, tuple[object, ...]] = {}
    for qdisc, raw in snap.filters:
        _decode_filters(state, qdisc, raw, source, qdisc == layout.ROOT, cache.filters, new)
    cache.filters.update(new)  # the other interface's entries stay too
    if len(cache.filters) > 2 * len(new) + 1024:
        cache.filters = new
    return state


# What one filter message means (first element says which).
_SKIP, _TABLE, _LINK, _STRAY, _MATCH = range(5)


def _decode_filter(buf: bytes, qdisc: int, source: bool, outer: bool) -> tuple[object, ...]:
    info = parse_filter(buf)
    if info is None or info.handle == 0:
        return (_SKIP,)
    htid = info.handle >> 20
    if info.handle & 0xFFFFF == 0:  # a hash table itself
        return (_TABLE, htid) if htid < _U32_ROOT_TABLES else (_SKIP,)
    if htid >= _U32_ROOT_TABLES:
        return (_LINK, info.link >> 20) if info.link else (_SKIP,)
    placed = PlacedFilter(qdisc, info)
    version = _VERSION.get(info.protocol)
    prefix = prefix_from_keys(version, info.keys, source) if version else None
    bucket = (info.handle >> 12) & 0xFF
    if (
        prefix is None
        or layout.table_id(prefix) != htid
        or bucket != prefix.bucket(prefix.hash_byte if outer else prefix.inner_hash_byte)
        or not info.classid
    ):
        return (_STRAY, placed)
    return (_MATCH, prefix, placed, (qdisc, info.handle >> 12), info.handle & 0xFFF)


def _decode_filters(
    state: Installed,
    qdisc: int,
    raw: list[bytes],
    source: bool,
    outer: bool,
    old: dict[bytes, tuple[object, ...]],
    new: dict[bytes, tuple[object, ...]],
) -> None:
    target = state.outer if outer else state.inner
    nodes = state.nodes
    tag = (b"s" if source else b"d") + (b"o" if outer else b"i")
    for payload in raw:
        # The message names its qdisc (tcm_parent); the tag adds direction and layer.
        key = payload + tag
        item = old.get(key)
        if item is None:
            item = _decode_filter(payload, qdisc, source, outer)
        new[key] = item
        kind = item[0]
        if kind == _MATCH:
            _k, prefix, placed, bucket, node = item
            target[prefix].append(placed)  # type: ignore[index]
            nodes[bucket].add(node)  # type: ignore[index]
        elif kind == _TABLE:
            state.tables.add((qdisc, item[1]))  # type: ignore[arg-type]
        elif kind == _LINK:
            state.links.add((qdisc, item[1]))  # type: ignore[arg-type]
        elif kind == _STRAY:
            state.stray.append(item[1])  # type: ignore[arg-type]


def protocol_name(protocol: int) -> str:
    return {ETH_P_IP: "ip", ETH_P_IPV6: "ipv6"}.get(protocol, hex(socket.ntohs(protocol)))
