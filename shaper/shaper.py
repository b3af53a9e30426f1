"""Make the kernel's tc trees match a desired {address: rate}; read their counters.

Two-port layout: download is shaped on the egress of the subscriber-facing
interface (matching destination addresses), upload on the egress of the
uplink (matching source addresses). ``layout`` says where each piece lives.

``reconcile`` reads what is installed, then issues only the difference, in
phases: deletes, then per subscriber class → leaf → inner filter → outer
filter, each phase only for subscribers whose previous step succeeded. Until
the outer filter exists no packet reaches a new class, so a failure at any
step leaves traffic either shaped correctly or falling to the default, and
the next reconcile finds the half-built pieces and rebuilds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shaper import layout, links
from shaper import state as state_mod
from shaper.addresses import Prefix, parse_prefix
from shaper.capabilities import Capabilities, detect
from shaper.errors import FailedOperation, ShaperError
from shaper.netlink import NLM_F_CREATE, NLM_F_REPLACE, Failure, NetlinkSocket, Request
from shaper.state import Installed
from shaper.tc import (
    RTM_GETTCLASS,
    TC_H_ROOT,
    HtbRate,
    counters_in,
    delete_class,
    delete_filter,
    delete_qdisc,
    dump_request,
    htb_class,
    htb_qdisc,
    leaf_qdisc,
    u32_handle,
    u32_link,
    u32_match,
    u32_table,
)
from shaper.values import Counters, Rate, ReconcileResult

# Leaf queue: ~30 ms at the subscriber's rate, but never below what two
# 64 KB GRO/GSO aggregates need, or a fifo counted in bytes would drop them.
LEAF_QUEUE_MS = 30
LEAF_MIN_BYTES = 128 * 1024
MTU_BYTES = 1514


@dataclass
class _Side:
    """One direction: an interface and which address field identifies a subscriber."""

    name: str  # "download" / "upload"
    ifname: str
    source: bool
    ifindex: int = 0
    # Last known (class id, leaf handle) per subscriber: counters and update() use it.
    known: dict[Prefix, tuple[int, int]] = field(default_factory=dict)

    @property
    def download(self) -> bool:
        return not self.source

    def where(self) -> str:
        return f"on {self.ifname} ({self.name})"


@dataclass(eq=False)
class _Add:
    side: _Side
    prefix: Prefix
    rate: HtbRate
    classid: int = 0
    leaf: int = 0


class _Pool:
    """Ids from ``span``, in order, skipping those in ``used``."""

    def __init__(self, span: Sequence[int], used: Iterable[int], what: str) -> None:
        self._span = span
        self._used = set(used)
        self._index = 0
        self._what = what

    def take(self) -> int:
        span, used = self._span, self._used
        while self._index < len(span) and span[self._index] in used:
            self._index += 1
        if self._index >= len(span):
            raise ShaperError(
                [FailedOperation(f"allocate {self._what}", None, 28, "no free ids left")]
            )
        value = span[self._index]
        used.add(value)
        return value


class Shaper:
    """Per-subscriber HTB shaping on two interfaces, driven by reconcile().

    One caller at a time (the enforcer's loop); it uses two netlink sockets
    and one helper thread of its own. close() releases them.
    """

    def __init__(
        self,
        down_ifname: str,
        up_ifname: str,
        *,
        netns: str | None = None,
        default: Rate | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.netns = netns
        self.default = default
        try:
            self._nl = NetlinkSocket(netns)
            # A second socket and thread read the upload side while the main
            # one reads the download side (dumps and counters).
            self._nl2 = NetlinkSocket(netns)
            self._pool = ThreadPoolExecutor(max_workers=1)
            self.capabilities = capabilities or detect(netns)
        except OSError as exc:
            where = f"in network namespace {netns}" if netns else "in this network namespace"
            raise ShaperError(
                [FailedOperation(f"open netlink {where}", None, exc.errno or 0, str(exc))]
            ) from exc
        self.leaf_kind = self.capabilities.leaf_kind()
        self._sides = [
            _Side("download", down_ifname, source=False),
            _Side("upload", up_ifname, source=True),
        ]
        # Check qdisc kinds (one extra dump) on the first pass and after any failure.
        self._verify = True
        self._desired: dict[Prefix, Rate] | None = None  # as of the last reconcile
        self._cache = state_mod.ParseCache()
        # Snapshots and wish of the last reconcile that had nothing to do.
        self._quiet: _Quiet | None = None

    def close(self) -> None:
        self._nl.close()
        self._nl2.close()
        self._pool.shutdown()

    # ------------------------------------------------------------ public API

    def reconcile(self, desired: Mapping[str, Rate]) -> ReconcileResult:
        """Make the installed trees match ``desired``; only differences are sent.

        Keys are IPv4 addresses or IPv4/IPv6 prefixes; results name them in
        canonical form (``10.0.0.5``, ``2001:db8:1::/64``). Raises ShaperError
        (naming each failed operation and address) after applying everything
        that could be applied; calling again repairs what was left.
        """
        wanted: dict[Prefix, Rate] = {}
        for text, rate in desired.items():
            wanted[parse_prefix(text)] = rate
        start = self._nl.sent
        result = ReconcileResult()
        failures: list[FailedOperation] = []
        self._desired = wanted
        quiet, self._quiet = self._quiet, None
        try:
            for side in self._sides:
                self._resolve(side)
            snaps = self._snapshots()
            if quiet is not None and not self._verify and _same(quiet, snaps, wanted, self.default):
                # Same tree, same wish as the last reconcile that found nothing to do.
                self._quiet = (snaps, wanted, self.default)
                return result
            installed = self._decode(snaps)
            if self._fix_skeleton(installed, failures):
                installed = self._decode(self._snapshots())
            self._apply(installed, wanted, result, failures)
        except ShaperError:
            self._verify = True
            raise
        finally:
            result.operations = self._nl.sent - start
        if failures:
            self._verify = True
            raise ShaperError(failures)
        if result.operations == 0:
            self._quiet = (snaps, wanted, self.default)
        self._verify = False
        return result

    def update(self, changes: Mapping[str, Rate | None]) -> ReconcileResult:
        """Apply a few changes (None = remove) on top of the last reconcile.

        The journal-following path: a new rate for an installed subscriber is
        sent straight to its class (no dump; ~0.1 ms); additions and removals
        go through ``reconcile`` of the last desired state plus ``changes``.
        Needs one ``reconcile`` first (the enforcer reconciles on start).
        """
        if self._desired is None:
            raise RuntimeError("Shaper.update() needs a reconcile() first")
        parsed = {parse_prefix(text): rate for text, rate in changes.items()}
        fast = {
            p: r
            for p, r in parsed.items()
            if r is not None and p in self._desired and all(p in s.known for s in self._sides)
        }
        if len(fast) < len(parsed):
            desired = {**self._desired, **parsed}
            return self.reconcile({str(p): r for p, r in desired.items() if r is not None})
        start = self._nl.sent
        result = ReconcileResult()
        requests: list[Request] = []
        for prefix, rate in fast.items():
            old = self._desired[prefix]
            for side in self._sides:
                want = rate.htb(side.download)
                if want == old.htb(side.download):
                    continue
                classid, leaf = side.known[prefix]
                op = f"change class {_cid(classid)} {side.where()}"
                parent = classid & 0xFFFF0000
                requests.append(
                    htb_class(side.ifindex, classid, parent, want, op, str(prefix), False)
                )
                if leaf >> 16 in layout.LEAF_MAJOR_SET:
                    leaf_op = f"change leaf {side.where()}"
                    requests.append(
                        self._leaf(side, leaf, classid, want, leaf_op, str(prefix), False)
                    )
                result.changed.append(str(prefix))
        self._quiet = None
        previous = {p: self._desired[p] for p in fast}
        self._desired.update(fast)
        failed = self._nl.execute(requests)
        result.changed = sorted(set(result.changed))
        result.operations = self._nl.sent - start
        if failed:
            self._desired.update(previous)  # so a retry sends them again
            self._verify = True
            raise ShaperError([_failed(f) for f in failed])
        return result

    def counters(self) -> dict[str, Counters]:
        """Bytes/packets per subscriber, both directions: one class dump per interface."""
        # Resolve names every time: an interface recreated under the same name
        # gets a new index, and a dump of a vanished index is silently empty.
        known = all(side.ifindex for side in self._sides)
        for side in self._sides:
            self._resolve(side)
        if not known:
            installed = self._read_all()
            for side in self._sides:
                side.known = _known_map(installed[side.name])
        # The kernel fills one side's dump while Python parses the other's:
        # two sockets, two threads (recv releases the GIL).
        other = self._pool.submit(self._class_stats, self._nl2, self._sides[1])
        per_side = {self._sides[0].name: self._class_stats(self._nl, self._sides[0])}
        per_side[self._sides[1].name] = other.result()
        down, up = self._sides
        out: dict[str, Counters] = {}
        down_stats, up_stats = per_side["download"], per_side["upload"]
        none = (-1, 0)
        zero = (0, 0)
        for prefix in down.known.keys() | up.known.keys():
            d = down_stats.get(down.known.get(prefix, none)[0], zero)
            u = up_stats.get(up.known.get(prefix, none)[0], zero)
            out[str(prefix)] = Counters(d[0], d[1], u[0], u[1])
        return out

    @staticmethod
    def _class_stats(nl: NetlinkSocket, side: _Side) -> dict[int, tuple[int, int]]:
        stats: dict[int, tuple[int, int]] = {}
        try:
            for data, end in nl.dump_datagrams(RTM_GETTCLASS, dump_request(side.ifindex)):
                counters_in(data, end, stats)
        except OSError as exc:
            op = f"read counters {side.where()}"
            raise ShaperError([FailedOperation(op, None, exc.errno or 0, str(exc))]) from exc
        return stats

    def teardown(self) -> None:
        """Remove both trees; the interfaces go back to their default qdisc."""
        failures: list[FailedOperation] = []
        self._quiet = None
        for side in self._sides:
            index = links.ifindex(self._nl, side.ifname)
            side.known = {}
            side.ifindex = 0
            if index is None:
                continue
            for f in self._nl.execute(
                [delete_qdisc(index, 0, TC_H_ROOT, f"delete root qdisc {side.where()}")]
            ):
                if f.errno not in (2, 22):  # nothing there / not ours to delete
                    failures.append(_failed(f))
        self._verify = True
        if failures:
            raise ShaperError(failures)

    # ------------------------------------------------------------ reading

    def _resolve(self, side: _Side) -> None:
        index = links.ifindex(self._nl, side.ifname)
        if index is None:
            side.ifindex = 0
            raise ShaperError(
                [
                    FailedOperation(
                        f"find interface {side.ifname} ({side.name})", None, 19, "no such device"
                    )
                ]
            )
        side.ifindex = index

    def _snapshots(self) -> dict[str, state_mod.Snapshot]:
        def take(nl: NetlinkSocket, side: _Side) -> state_mod.Snapshot:
            try:
                return state_mod.take_snapshot(nl, side.ifindex, self._verify)
            except OSError as exc:
                op = f"read tc tree {side.where()}"
                raise ShaperError([FailedOperation(op, None, exc.errno or 0, str(exc))]) from exc

        down, up = self._sides
        other = self._pool.submit(take, self._nl2, up)
        return {down.name: take(self._nl, down), up.name: other.result()}

    def _decode(self, snaps: dict[str, state_mod.Snapshot]) -> dict[str, Installed]:
        return {
            side.name: state_mod.decode(snaps[side.name], side.source, self._cache)
            for side in self._sides
        }

    def _read_all(self) -> dict[str, Installed]:
        return self._decode(self._snapshots())

    # ------------------------------------------------------------ skeleton

    def _fix_skeleton(
        self, installed: dict[str, Installed], failures: list[FailedOperation]
    ) -> bool:
        """Root HTB, groups, their HTBs and the default class. True if anything was sent."""
        requests: list[Request] = []
        for side in self._sides:
            inst = installed[side.name]
            idx = side.ifindex
            where = side.where()
            if not inst.root_ok:
                # Whatever root is there (the kernel's default, or a stale tree) goes.
                requests.append(delete_qdisc(idx, 0, TC_H_ROOT, f"delete root qdisc {where}"))
                requests.append(
                    htb_qdisc(
                        idx, layout.ROOT, TC_H_ROOT, layout.DEFAULT_MINOR, f"add root htb {where}"
                    )
                )
            group_rate = HtbRate(layout.GROUP_RATE_BPS, layout.GROUP_RATE_BPS // 1000)
            for g in range(layout.GROUPS):
                have = inst.groups.get(g) if inst.root_ok else None
                if have is None:
                    requests.append(
                        htb_class(
                            idx,
                            layout.group_class(g),
                            layout.ROOT,
                            group_rate,
                            f"add group class {where}",
                            None,
                            True,
                        )
                    )
                if have == layout.inner_qdisc(g):
                    continue
                op = f"add group htb {layout.inner_qdisc(g) >> 16:x}: {where}"
                req = htb_qdisc(idx, layout.inner_qdisc(g), layout.group_class(g), 0, op)
                if have == state_mod.WRONG_KIND:
                    # Our handle on the wrong kind of qdisc: a replace cannot
                    # change the kind, so delete it first.
                    requests.append(
                        delete_qdisc(
                            idx,
                            layout.inner_qdisc(g),
                            layout.group_class(g),
                            f"delete wrong {op[4:]}",
                        )
                    )
                elif have:  # someone else's qdisc is grafted there
                    req = Request(req.msg_type, NLM_F_CREATE | NLM_F_REPLACE, req.body, op)
                requests.append(req)
            requests.extend(self._default_class_requests(side, inst))
        if not requests:
            return False
        for f in self._nl.execute(requests):
            if f.request.operation.startswith("delete root qdisc") and f.errno in (2, 22):
                continue  # there was no root of ours to delete
            failures.append(_failed(f))
        return True

    def _default_class_requests(self, side: _Side, inst: Installed) -> list[Request]:
        where = side.where()
        have = inst.default_class if inst.root_ok else None
        if self.default is None:
            if have is None:
                return []
            return [
                delete_class(
                    side.ifindex,
                    layout.DEFAULT_CLASS,
                    layout.ROOT,
                    f"delete default class {where}",
                    None,
                )
            ]
        rate = self.default.htb(side.download)
        if have is not None and _same_rate(have.rate, have.ceil_bps, rate) and have.leaf:
            return []
        out = [
            htb_class(
                side.ifindex,
                layout.DEFAULT_CLASS,
                layout.ROOT,
                rate,
                f"set default class {where}",
                None,
                have is None,
            )
        ]
        leaf_major = layout.DEFAULT_LEAF_MAJOR
        out.append(
            self._leaf(
                side,
                leaf_major << 16,
                layout.DEFAULT_CLASS,
                rate,
                f"set default leaf {where}",
                "",
                True,
            )
        )
        out[-1] = Request(
            out[-1].msg_type, NLM_F_CREATE | NLM_F_REPLACE, out[-1].body, out[-1].operation
        )
        return out

    def _leaf(
        self,
        side: _Side,
        handle: int,
        parent: int,
        rate: HtbRate,
        op: str,
        address: str,
        create: bool,
    ) -> Request:
        limit = max(rate.rate_bps * LEAF_QUEUE_MS // 1000, LEAF_MIN_BYTES)
        if self.leaf_kind == "pfifo":
            limit = limit // MTU_BYTES
        return leaf_qdisc(side.ifindex, handle, parent, self.leaf_kind, limit, op, address, create)

    # ------------------------------------------------------------ subscribers

    def _apply(
        self,
        installed: dict[str, Installed],
        wanted: dict[Prefix, Rate],
        result: ReconcileResult,
        failures: list[FailedOperation],
    ) -> None:
        deletes: list[Request] = []
        class_deletes: list[Request] = []
        changes: list[tuple[Request, Request]] = []
        adds: list[_Add] = []
        added: set[Prefix] = set()
        changed: set[Prefix] = set()
        repaired: set[Prefix] = set()
        removed: set[Prefix] = set()

        for side in self._sides:
            inst = installed[side.name]
            idx = side.ifindex
            where = side.where()
            kept_classes: set[int] = set()
            for placed in inst.stray:
                deletes.append(_delete_filter(idx, placed, f"delete stray filter {where}", None))
            converted: dict[int, HtbRate] = {}  # id(Rate) → HtbRate: few distinct rates
            for prefix in inst.prefixes() | wanted.keys():
                rate = None
                if prefix in wanted:
                    want = wanted[prefix]
                    rate = converted.get(id(want))
                    if rate is None:
                        rate = converted[id(want)] = want.htb(side.download)
                g = layout.group_of(prefix)
                outer = inst.outer.get(prefix, [])
                inner = inst.inner.get(prefix, [])
                cls = inst.classes.get(inner[0].info.classid) if len(inner) == 1 else None
                complete = (
                    len(outer) == 1
                    and outer[0].info.classid == layout.group_class(g)
                    and len(inner) == 1
                    and inner[0].qdisc == layout.inner_qdisc(g)
                    and cls is not None
                    and cls.classid >> 16 == layout.inner_qdisc(g) >> 16
                    and cls.leaf >> 16 in layout.LEAF_MAJOR_SET
                )
                if complete and rate is not None:
                    assert cls is not None
                    kept_classes.add(cls.classid)
                    if not _same_rate(cls.rate, cls.ceil_bps, rate):
                        address = str(prefix)
                        changes.append(
                            (
                                htb_class(
                                    idx,
                                    cls.classid,
                                    layout.inner_qdisc(g),
                                    rate,
                                    f"change class {_cid(cls.classid)} {where}",
                                    address,
                                    False,
                                ),
                                self._leaf(
                                    side,
                                    cls.leaf,
                                    cls.classid,
                                    rate,
                                    f"change leaf {where}",
                                    address,
                                    False,
                                ),
                            )
                        )
                        changed.add(prefix)
                    continue
                address = str(prefix)
                # Take apart whatever exists, outermost first, so no packet
                # ever reaches a half-removed class.
                for placed in outer:
                    deletes.append(
                        _delete_filter(idx, placed, f"delete outer filter {where}", address)
                    )
                for placed in inner:
                    deletes.append(
                        _delete_filter(idx, placed, f"delete inner filter {where}", address)
                    )
                    old = inst.classes.get(placed.info.classid)
                    if old is not None:
                        class_deletes.append(
                            delete_class(
                                idx,
                                old.classid,
                                old.classid & 0xFFFF0000,
                                f"delete class {_cid(old.classid)} {where}",
                                address,
                            )
                        )
                        kept_classes.add(old.classid)  # handled here, not as an orphan
                if rate is None:
                    removed.add(prefix)
                else:
                    adds.append(_Add(side, prefix, rate))
                    (repaired if outer or inner else added).add(prefix)
            for classid in inst.classes:
                if classid not in kept_classes:
                    class_deletes.append(
                        delete_class(
                            idx,
                            classid,
                            classid & 0xFFFF0000,
                            f"delete orphan class {_cid(classid)} {where}",
                            None,
                        )
                    )

        self._record(self._nl.execute(deletes + class_deletes), failures)
        if changes:
            bad = self._record(self._nl.execute([c for c, _leaf in changes]), failures)
            self._record(
                self._nl.execute([leaf for c, leaf in changes if id(c) not in bad]), failures
            )
        if adds:
            self._add(installed, adds, failures)

        result.added = sorted(str(p) for p in added - repaired)
        result.repaired = sorted(str(p) for p in repaired)
        result.changed = sorted(str(p) for p in changed - added - repaired)
        result.removed = sorted(str(p) for p in removed - added - repaired - changed)
        for side in self._sides:
            side.known = _known_map(installed[side.name])
            for add in adds:
                if add.side is side:
                    side.known.pop(add.prefix, None)
            for prefix in removed:
                side.known.pop(prefix, None)
        for add in adds:
            if add.classid:
                add.side.known[add.prefix] = (add.classid, add.leaf)

    def _add(
        self, installed: dict[str, Installed], adds: list[_Add], failures: list[FailedOperation]
    ) -> None:
        minors: dict[tuple[str, int], _Pool] = {}
        leaves: dict[str, _Pool] = {}
        nodes: dict[tuple[str, int, int], _Pool] = {}
        tables: list[Request] = []
        made: set[tuple[str, int, int]] = set()

        def node(side: _Side, qdisc: int, table: int, bucket: int) -> int:
            key = (side.name, qdisc, (table << 8) | bucket)
            if key not in nodes:
                used = installed[side.name].nodes.get((qdisc, (table << 8) | bucket), set())
                nodes[key] = _Pool(layout.U32_NODES, used, "u32 filter node")
            return nodes[key].take()

        def need_table(side: _Side, qdisc: int, prefix: Prefix, byte: int) -> None:
            inst = installed[side.name]
            table = layout.table_id(prefix)
            key = (side.name, qdisc, table)
            if key in made:
                return
            made.add(key)
            where = side.where()
            prio, proto = layout.PRIO[prefix.version], prefix.protocol
            if (qdisc, table) not in inst.tables:
                tables.append(
                    u32_table(
                        side.ifindex,
                        qdisc,
                        prio,
                        proto,
                        table,
                        f"add u32 table {table:x} {where}",
                        str(prefix),
                    )
                )
            if (qdisc, table) not in inst.links:
                hmask, hoff = prefix.hash_word(byte, side.source)
                tables.append(
                    u32_link(
                        side.ifindex,
                        qdisc,
                        prio,
                        proto,
                        layout.link_node(prefix),
                        table,
                        hmask,
                        hoff,
                        f"add u32 link to {table:x} {where}",
                        str(prefix),
                    )
                )

        class_reqs: list[Request] = []
        for add in adds:
            side, inst = add.side, installed[add.side.name]
            g = layout.group_of(add.prefix)
            key = (side.name, g)
            if key not in minors:
                used = {c & 0xFFFF for c in inst.classes if c >> 16 == layout.inner_qdisc(g) >> 16}
                minors[key] = _Pool(layout.SUBSCRIBER_MINORS, used, "class id")
            if side.name not in leaves:
                leaves[side.name] = _Pool(layout.LEAF_MAJORS, inst.leaf_majors, "leaf qdisc handle")
            add.classid = layout.inner_qdisc(g) | minors[key].take()
            add.leaf = leaves[side.name].take() << 16
            need_table(side, layout.ROOT, add.prefix, add.prefix.hash_byte)
            need_table(side, layout.inner_qdisc(g), add.prefix, add.prefix.inner_hash_byte)
            class_reqs.append(
                htb_class(
                    side.ifindex,
                    add.classid,
                    layout.inner_qdisc(g),
                    add.rate,
                    f"add class {_cid(add.classid)} {side.where()}",
                    str(add.prefix),
                    True,
                )
            )
        self._record(self._nl.execute(tables), failures)

        def leaf(a: _Add) -> Request:
            where, address = a.side.where(), str(a.prefix)
            return self._leaf(a.side, a.leaf, a.classid, a.rate, f"add leaf {where}", address, True)

        def inner_filter(a: _Add) -> Request:
            qdisc = layout.inner_qdisc(layout.group_of(a.prefix))
            bucket = a.prefix.bucket(a.prefix.inner_hash_byte)
            table = layout.table_id(a.prefix)
            handle = u32_handle(table, bucket, node(a.side, qdisc, table, bucket))
            return u32_match(
                a.side.ifindex,
                qdisc,
                layout.PRIO[a.prefix.version],
                a.prefix.protocol,
                handle,
                a.prefix.keys(a.side.source),
                a.classid,
                f"add inner filter {a.side.where()}",
                str(a.prefix),
            )

        def outer_filter(a: _Add) -> Request:
            bucket = a.prefix.bucket(a.prefix.hash_byte)
            table = layout.table_id(a.prefix)
            handle = u32_handle(table, bucket, node(a.side, layout.ROOT, table, bucket))
            return u32_match(
                a.side.ifindex,
                layout.ROOT,
                layout.PRIO[a.prefix.version],
                a.prefix.protocol,
                handle,
                a.prefix.keys(a.side.source),
                layout.group_class(layout.group_of(a.prefix)),
                f"add outer filter {a.side.where()}",
                str(a.prefix),
            )

        # The kernel spends ~100 µs on each class add; encode the later steps
        # meanwhile (sendmsg releases the GIL). Steps of subscribers whose
        # class failed are then simply not sent.
        pending = self._pool.submit(self._nl.execute, class_reqs)
        try:
            steps = [(leaf(a), inner_filter(a), outer_filter(a)) for a in adds]
        finally:
            # Even if encoding failed (ids exhausted), let the socket go quiet
            # before anyone else uses it.
            class_failures = pending.result()
        bad = self._record(class_failures, failures)
        todo = []
        for a, request, step in zip(adds, class_reqs, steps, strict=True):
            if id(request) in bad:
                a.classid = 0
            else:
                todo.append((a, step))
        for index in range(3):  # leaf, inner filter, outer filter
            build = [step[index] for _a, step in todo]
            bad = self._record(self._nl.execute(build), failures)
            todo = [(a, step) for a, step in todo if id(step[index]) not in bad]

    @staticmethod
    def _record(failed: list[Failure], failures: list[FailedOperation]) -> set[int]:
        """Note the failures; return the ids of the requests that failed."""
        failures.extend(_failed(f) for f in failed)
        return {id(f.request) for f in failed}


_Quiet = tuple[dict[str, state_mod.Snapshot], dict[Prefix, Rate], Rate | None]


def _same(
    quiet: _Quiet,
    snaps: dict[str, state_mod.Snapshot],
    wanted: dict[Prefix, Rate],
    default: Rate | None,
) -> bool:
    old_snaps, old_wanted, old_default = quiet
    return (
        all(snaps[name].same_tree(old_snaps.get(name)) for name in snaps)
        and default == old_default
        and wanted == old_wanted
    )


def _cid(classid: int) -> str:
    return f"{classid >> 16:x}:{classid & 0xFFFF:x}"


def _failed(f: Failure) -> FailedOperation:
    return FailedOperation(f.request.operation, f.request.address, f.errno, f.message)


def _delete_filter(
    ifindex: int, placed: state_mod.PlacedFilter, op: str, address: str | None
) -> Request:
    info = placed.info
    return delete_filter(ifindex, placed.qdisc, info.prio, info.protocol, info.handle, op, address)


def _same_rate(have: HtbRate | None, ceil_bps: int, want: HtbRate) -> bool:
    if have is None or have.rate_bps != want.rate_bps or ceil_bps != want.rate_bps:
        return False
    # The kernel keeps the burst as time; allow for its rounding.
    return abs(have.burst_bytes - want.burst_bytes) <= want.rate_bps * 128 // 1_000_000_000 + 2


def _known_map(inst: Installed) -> dict[Prefix, tuple[int, int]]:
    out = {}
    for prefix, placed in inst.inner.items():
        cls = inst.classes.get(placed[0].info.classid) if len(placed) == 1 else None
        if cls is not None:
            out[prefix] = (cls.classid, cls.leaf)
    return out
