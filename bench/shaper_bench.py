"""Shaper at scale: 10,000 subscribers, both directions, in a scratch namespace.

    sudo .venv/bin/python bench/shaper_bench.py [--subscribers N] [--flat-reference]

Prints, each against its target:
  full build (20,000 classes + leaves + 40,000 u32 filters), and `tc -batch`
  building the very same tree on a second veth pair in the same run;
  one rate change via update() (and via a full reconcile, for comparison);
  reconcile with nothing to change; counters of every subscriber.
--flat-reference also times `tc -batch` adding the classes under ONE htb per
interface, to show what the grouped layout saves.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shaper import Rate, Shaper, layout  # noqa: E402
from shaper.addresses import parse_prefix  # noqa: E402
from shaper.shaper import LEAF_MIN_BYTES, LEAF_QUEUE_MS  # noqa: E402

TIERS = [Rate(10_000, 2_000), Rate(25_000, 5_000), Rate(50_000, 10_000), Rate(100_000, 20_000)]


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def subscribers(count: int) -> dict[str, Rate]:
    # A CGNAT pool filled in order, as a RADIUS pool would hand it out.
    out = {}
    for i in range(count):
        address = f"100.64.{i // 250}.{i % 250 + 1}"
        out[address] = TIERS[i % len(TIERS)]
    return out


def tc_batch_text(dev: str, desired: dict[str, Rate], download: bool, leaf_kind: str) -> str:
    """The same tree as the shaper builds, as tc commands."""
    lines = [f"qdisc add dev {dev} root handle 1: htb default ffff r2q 10"]
    for g in range(layout.GROUPS):
        lines.append(
            f"class add dev {dev} parent 1: classid 1:{g + 1:x} htb rate 100gbit ceil 100gbit "
            f"burst 12500000b quantum 200000"
        )
        lines.append(
            f"qdisc add dev {dev} parent 1:{g + 1:x} handle {layout.inner_qdisc(g) >> 16:x}: htb"
        )
    field = "dst" if download else "src"
    offset = 16 if download else 12
    u32 = f"filter add dev {dev} parent 1: prio 10"
    lines.append(f"{u32} handle 220: protocol ip u32 divisor 256")
    lines.append(
        f"{u32} protocol ip u32 ht 800:: match ip {field} 0.0.0.0/0 "
        f"hashkey mask 0x000000ff at {offset} link 220:"
    )
    tables: set[int] = set()
    minors = dict.fromkeys(range(layout.GROUPS), 0)
    nodes: dict[tuple[int, int], int] = {}
    leaves = iter(layout.LEAF_MAJORS)
    for address, rate in desired.items():
        prefix = parse_prefix(address)
        g = layout.group_of(prefix)
        inner = f"{layout.inner_qdisc(g) >> 16:x}:"
        if g not in tables:
            tables.add(g)
            u32 = f"filter add dev {dev} parent {inner} prio 10"
            lines.append(f"{u32} handle 220: protocol ip u32 divisor 256")
            lines.append(
                f"{u32} protocol ip u32 ht 800:: match ip {field} "
                f"0.0.0.0/0 hashkey mask 0x0000ff00 at {offset} link 220:"
            )
        minors[g] += 1
        classid = f"{inner}{minors[g]:x}"
        htb = rate.htb(download)
        quantum = min(max(htb.rate_bps // 10, 1600), 200_000)
        lines.append(
            f"class add dev {dev} parent {inner} classid {classid} htb rate {htb.rate_bps * 8}bit "
            f"ceil {htb.rate_bps * 8}bit burst {htb.burst_bytes}b quantum {quantum}"
        )
        limit = max(htb.rate_bps * LEAF_QUEUE_MS // 1000, LEAF_MIN_BYTES)
        leaf = next(leaves)
        lines.append(
            f"qdisc add dev {dev} parent {classid} handle {leaf:x}: {leaf_kind} limit {limit}"
        )
        inner_bucket, outer_bucket = prefix.packed[2], prefix.packed[3]
        for parent, bucket, flow in (
            (inner, inner_bucket, classid),
            ("1:", outer_bucket, f"1:{g + 1:x}"),
        ):
            key = (-1 if parent == "1:" else g, bucket)
            node = nodes[key] = nodes.get(key, 0) + 1
            lines.append(
                f"filter add dev {dev} parent {parent} prio 10 handle 220:{bucket:x}:{node:x} "
                f"protocol ip u32 ht 220:{bucket:x}: match ip {field} {address}/32 flowid {flow}"
            )
    return "\n".join(lines) + "\n"


def flat_batch_text(dev: str, desired: dict[str, Rate]) -> str:
    lines = [f"qdisc add dev {dev} root handle 1: htb default ffff r2q 10"]
    for minor, rate in enumerate(desired.values(), start=1):
        htb = rate.htb(True)
        lines.append(
            f"class add dev {dev} parent 1: classid 1:{minor:x} htb rate {htb.rate_bps * 8}bit "
            f"ceil {htb.rate_bps * 8}bit burst {htb.burst_bytes}b quantum 1600"
        )
    return "\n".join(lines) + "\n"


def run_tc_batch(netns: str, text: str) -> tuple[float, float]:
    """(wall, CPU) seconds of `tc -batch`; CPU is tc's user + system time."""
    with tempfile.NamedTemporaryFile("w", suffix=".tc") as f:
        f.write(text)
        f.flush()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        sh("tc", "-n", netns, "-batch", f.name)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return wall, cpu


def timed(func, repeat: int = 1) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    """Median wall and CPU seconds (this process, all threads, user + system).

    The kernel's tc work runs in our sendmsg/recvmsg calls, so CPU time counts
    it too and, unlike wall time, does not grow when other jobs share the box.
    """
    walls, cpus = [], []
    value = None
    for _ in range(repeat):
        cpu0, start = time.process_time(), time.perf_counter()
        value = func()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu0)
    if repeat > 1:
        low, high = min(walls) * 1000, max(walls) * 1000
        print(f"    ({repeat} runs, wall min {low:.2f} ms, max {high:.2f} ms)")
    return statistics.median(walls), statistics.median(cpus), value


def line(
    label: str,
    seconds: float,
    cpu: float | None = None,
    target: float | None = None,
    ref: float | None = None,
) -> None:
    text = f"{label:<44} {seconds * 1000:9.2f} ms"
    text += f"  (cpu {cpu * 1000:8.2f} ms)" if cpu is not None else " " * 20
    if target is not None:
        text += f"  target ≤ {target * 1000:g} ms {'OK' if seconds <= target else 'MISSED'}"
    if ref is not None:
        text += f"  = {seconds / ref:.2f} × tc -batch"
    print(text, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--flat-reference", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")

    netns = f"isp-bench-{os.getpid()}"
    sh("ip", "netns", "add", netns)
    try:
        for a, b in (("vd", "vdp"), ("vu", "vup"), ("td", "tdp"), ("tu", "tup"), ("fd", "fdp")):
            sh("ip", "-n", netns, "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "-n", netns, "link", "set", a, "up")
        desired = subscribers(args.subscribers)
        n = len(desired)
        print(f"{n} subscribers, both directions: {2 * n} classes, {2 * n} leaves, {4 * n} filters")

        shaper = Shaper("vd", "vu", netns=netns)
        print(f"leaf qdisc: {shaper.leaf_kind}; capabilities: {sorted(shaper.capabilities.qdiscs)}")
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

        build, build_cpu, result = timed(lambda: shaper.reconcile(desired))
        ops = result.operations  # type: ignore[attr-defined]
        # tc -batch builds the same tree on other veths, alone in the namespace
        # like ours was: the kernel slows down with every qdisc it holds, on
        # any device (teardown of ours takes 1.5 s alone, 6 s beside a copy).
        shaper.teardown()
        text = tc_batch_text("td", desired, True, shaper.leaf_kind) + tc_batch_text(
            "tu", desired, False, shaper.leaf_kind
        )
        batch, batch_cpu = run_tc_batch(netns, text)
        line(f"full build ({ops} netlink requests)", build, build_cpu, 4.0, batch)
        line("  tc -batch, same tree", batch, batch_cpu)
        for dev in ("td", "tu"):
            sh("tc", "-n", netns, "qdisc", "del", "dev", dev, "root")
        again, again_cpu, _ = timed(lambda: shaper.reconcile(desired))
        line("full build again (after teardown)", again, again_cpu, 4.0)

        first, first_cpu, result = timed(lambda: shaper.reconcile(desired))
        assert result.operations == 0  # type: ignore[attr-defined]
        line("reconcile, nothing to change, first (decodes)", first, first_cpu)
        noop, noop_cpu, result = timed(lambda: shaper.reconcile(desired), repeat=5)
        assert result.operations == 0  # type: ignore[attr-defined]
        line("reconcile, nothing to change (median of 5)", noop, noop_cpu, 0.2)

        address = next(iter(desired))
        rates = iter([Rate(7_000 + i, 1_000 + i) for i in range(21)])
        change, change_cpu, _ = timed(lambda: shaper.update({address: next(rates)}), repeat=21)
        line("one rate change, update() (median of 21)", change, change_cpu, 0.001)
        full, full_cpu, _ = timed(
            lambda: shaper.reconcile({**desired, address: Rate(3_000, 3_000)})
        )
        line("one rate change, full reconcile", full, full_cpu)

        count, count_cpu, counters = timed(shaper.counters, repeat=9)
        assert len(counters) == n  # type: ignore[arg-type]
        line(f"counters of all {n} (median of 9)", count, count_cpu, 0.15)

        # A new process adopting the tree: its first reconcile also checks kinds.
        adopt, adopt_cpu, result = timed(lambda: Shaper("vd", "vu", netns=netns).reconcile(desired))
        line("restart: new Shaper + first reconcile", adopt, adopt_cpu)

        teardown, teardown_cpu, _ = timed(shaper.teardown)
        line("teardown", teardown, teardown_cpu)
        print(f"load average after: {os.getloadavg()[0]:.2f}")

        if args.flat_reference:  # classes only, one interface, each tree alone
            flat, flat_cpu = run_tc_batch(netns, flat_batch_text("fd", desired))
            line(f"reference: tc -batch {n} classes, ONE htb", flat, flat_cpu)
            sh("tc", "-n", netns, "qdisc", "del", "dev", "fd", "root")
            grouped = "\n".join(
                ln
                for ln in tc_batch_text("fdp", desired, True, shaper.leaf_kind).splitlines()
                if ln.startswith(
                    ("qdisc add dev fdp root", "class add", "qdisc add dev fdp parent 1:")
                )
            )
            grouped_classes, grouped_cpu = run_tc_batch(netns, grouped + "\n")
            line(
                f"reference: tc -batch {n} classes, {layout.GROUPS} htbs",
                grouped_classes,
                grouped_cpu,
            )
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


if __name__ == "__main__":
    main()
