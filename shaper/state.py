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
    dump_request,
    parse_attrs,
    parse_class,
    parse_filter,
)

_VERSION = {ETH_P_IP: 4, ETH_P_IPV6: 6}
_U32_ROOT_TABLES = 0x800
# Installed.groups value: our handle is there, but not an HTB.
WRONG_KIND = -1  # u32 numbers its automatic root tables from 800:


@dataclass(frozen=True)
class PlacedFilter:
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


def read_classes(nl: NetlinkSocket, ifindex: int) -> list[ClassInfo]:
    return [parse_class(p) for _t, p in nl.dump(RTM_GETTCLASS, dump_request(ifindex))]


def read_qdisc_kinds(nl: NetlinkSocket, ifindex: int) -> dict[int, tuple[int, str]]:
    """handle → (parent, kind) of every qdisc on the interface."""
    out: dict[int, tuple[int, str]] = {}
    for _t, payload in nl.dump(RTM_GETQDISC, dump_request(ifindex)):
        _f, index, handle, parent, _info = TCMSG.unpack_from(payload, 0)
        if index != ifindex:
            continue
        kind = bytes(parse_attrs(payload, TCMSG.size).get(TCA_KIND, b"")).rstrip(b"\0").decode()
        out[handle] = (parent, kind)
    return out


def read(nl: NetlinkSocket, ifindex: int, source: bool, verify_kinds: bool) -> Installed:
    """The installed tree; ``verify_kinds`` also checks the qdiscs' kinds (one more dump)."""
    state = Installed(ifindex)
    classes = read_classes(nl, ifindex)
    inner_majors = {layout.inner_qdisc(g) >> 16 for g in range(layout.GROUPS)}
    for info in classes:
        if info.leaf:
            state.leaf_majors.add(info.leaf >> 16)
        # HTB reports top-level classes with parent TC_H_ROOT: the major tells the qdisc.
        major, minor = info.classid >> 16, info.classid & 0xFFFF
        if major == layout.ROOT_MAJOR:
            if info.classid == layout.DEFAULT_CLASS:
                state.default_class = info
            elif 1 <= minor <= layout.GROUPS:
                state.groups[minor - 1] = info.leaf
        elif major in inner_majors and info.parent == TC_H_ROOT:
            state.classes[info.classid] = info
    state.root_ok = bool(state.groups) or state.default_class is not None
    if verify_kinds:
        kinds = read_qdisc_kinds(nl, ifindex)
        root = kinds.get(layout.ROOT)
        state.root_ok = root is not None and root == (TC_H_ROOT, "htb")
        for group, leaf in list(state.groups.items()):
            if kinds.get(leaf) != (layout.group_class(group), "htb"):
                state.groups[group] = WRONG_KIND if leaf == layout.inner_qdisc(group) else leaf
    if not state.root_ok:
        return Installed(ifindex)
    _read_filters(nl, state, layout.ROOT, source, outer=True)
    for group, leaf in state.groups.items():
        if leaf == layout.inner_qdisc(group):  # (not WRONG_KIND)
            _read_filters(nl, state, leaf, source, outer=False)
    return state


def _read_filters(
    nl: NetlinkSocket, state: Installed, qdisc: int, source: bool, outer: bool
) -> None:
    target = state.outer if outer else state.inner
    for _t, payload in nl.dump(RTM_GETTFILTER, dump_request(state.ifindex, qdisc)):
        info = parse_filter(payload)
        if info is None or info.handle == 0:
            continue
        htid = info.handle >> 20
        if info.handle & 0xFFFFF == 0:  # a hash table itself
            if htid < _U32_ROOT_TABLES:
                state.tables.add((qdisc, htid))
            continue
        if htid >= _U32_ROOT_TABLES:
            if info.link:
                state.links.add((qdisc, info.link >> 20))
            continue
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
            state.stray.append(placed)
            continue
        state.nodes[(qdisc, info.handle >> 12)].add(info.handle & 0xFFF)
        target[prefix].append(placed)


def protocol_name(protocol: int) -> str:
    return {ETH_P_IP: "ip", ETH_P_IPV6: "ipv6"}.get(protocol, hex(socket.ntohs(protocol)))
