"""Reconcile against a real kernel: only differences are sent, damage is repaired,
a new process adopts the tree, failures name their operation and address.

Independent checks read the tree with the `tc` command, not our own parser.
"""

from __future__ import annotations

import subprocess

import pytest

from shaper import Capabilities, Rate, Shaper, ShaperError, canonical, detect, layout
from shaper.addresses import parse_prefix
from tests.shaper.netlab import Lab

DESIRED = {
    "10.0.0.5": Rate(10_000, 5_000),
    "10.0.3.5": Rate(20_000, 5_000, burst_kbytes=64),
    "100.64.7.200": Rate(3_000, 1_000),
    "2001:db8:0:1::/64": Rate(30_000, 10_000),
    "2001:db8:100:200::/56": Rate(40_000, 20_000),
    "198.51.100.8/30": Rate(50_000, 50_000),
}


def tc(lab: Lab, *args: str) -> str:
    return lab.ns(lab.edge, "tc", *args)


def subscriber_classes(lab: Lab, dev: str) -> dict[str, str]:
    """classid → 'rate …' for every class under a group HTB, as `tc` shows them."""
    out = {}
    for line in tc(lab, "class", "show", "dev", dev).splitlines():
        words = line.split()
        if words[:2] == ["class", "htb"] and not words[2].startswith("1:"):
            out[words[2]] = words[words.index("rate") + 1]
    return out


def test_build_then_same_state_sends_nothing(lab: Lab, shaper: Shaper) -> None:
    first = shaper.reconcile(DESIRED)
    assert first.added == sorted(canonical(a) for a in DESIRED)
    assert first.operations > 0

    again = shaper.reconcile(DESIRED)

    assert again.operations == 0 and again.unchanged
    assert not (again.added or again.changed or again.removed or again.repaired)
    # What `tc` sees: one class per subscriber and direction, at the right rate.
    down = subscriber_classes(lab, "vd")
    up = subscriber_classes(lab, "vu")
    assert sorted(down.values()) == sorted(
        ["10Mbit", "20Mbit", "3Mbit", "30Mbit", "40Mbit", "50Mbit"]
    )
    assert sorted(up.values()) == sorted(["5Mbit", "5Mbit", "1Mbit", "10Mbit", "20Mbit", "50Mbit"])
    # Classification is hashed on both layers: 256 buckets on the last octet
    # (outer) and on the one before it (inside a group), IPv6 on its prefix bytes.
    outer = tc(lab, "filter", "show", "dev", "vd", "parent", "1:")
    assert "link 220:" in outer and "hash mask 000000ff at 16" in outer
    assert "link 340:" in outer and "hash mask 000000ff at 28" in outer  # /64: byte 7
    assert "link 338:" in outer and "hash mask 0000ff00 at 28" in outer  # /56: byte 6
    group5 = f"{layout.inner_qdisc(5) >> 16:x}:"  # 10.0.0.5 and 10.0.3.5 live in group 5
    inner = tc(lab, "filter", "show", "dev", "vd", "parent", group5)
    assert "hash mask 0000ff00 at 16" in inner and "ht divisor 256" in inner
    assert "hash mask 0000ff00 at 12" in tc(lab, "filter", "show", "dev", "vu", "parent", group5)
    # burst_kbytes=64 → 64,000 bytes; the default is 4 ms of rate + 1600 bytes.
    shown = tc(lab, "class", "show", "dev", "vd")
    assert "rate 20Mbit ceil 20Mbit burst 64000b cburst 64000b" in shown
    assert "rate 10Mbit ceil 10Mbit burst 6600b cburst 6600b" in shown


def test_new_process_adopts_the_tree(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile(DESIRED)
    classes_before = subscriber_classes(lab, "vd")

    restarted = Shaper("vd", "vu", netns=lab.edge)
    try:
        result = restarted.reconcile(DESIRED)
        assert result.operations == 0
        assert subscriber_classes(lab, "vd") == classes_before
        assert set(restarted.counters()) == {canonical(a) for a in DESIRED}
    finally:
        restarted.close()


def test_counters_before_any_reconcile_read_the_installed_tree(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile(DESIRED)
    fresh = Shaper("vd", "vu", netns=lab.edge)
    try:
        counters = fresh.counters()
    finally:
        fresh.close()
    assert set(counters) == {canonical(a) for a in DESIRED}


def test_change_remove_and_add_send_only_those(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile(DESIRED)
    desired = dict(DESIRED)
    desired["10.0.0.5"] = Rate(10_000, 7_000)  # upload only
    del desired["100.64.7.200"]
    desired["10.0.0.69"] = Rate(1_000, 1_000)  # group 5, like 10.0.0.5: no new tables

    result = shaper.reconcile(desired)

    assert result.changed == ["10.0.0.5"]
    assert result.removed == ["100.64.7.200"]
    assert result.added == ["10.0.0.69"]
    # change: class + leaf on one side (2); remove: outer filter, inner filter,
    # class on both sides (6); add: class, leaf, inner and outer filter on both (8).
    assert result.operations == 2 + 6 + 8
    assert "3Mbit" not in subscriber_classes(lab, "vd").values()
    assert "7Mbit" in subscriber_classes(lab, "vu").values()
    assert "100.64.7.200" not in shaper.counters()
    assert shaper.reconcile(desired).operations == 0


def test_removing_everything_leaves_no_subscriber_class_or_filter(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile(DESIRED)
    result = shaper.reconcile({})
    assert result.removed == sorted(canonical(a) for a in DESIRED)
    assert subscriber_classes(lab, "vd") == {} and subscriber_classes(lab, "vu") == {}
    assert "flowid" not in tc(lab, "filter", "show", "dev", "vd", "parent", "1:")
    assert shaper.counters() == {}


def test_deleted_filter_is_repaired(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile(DESIRED)
    address = "10.0.3.5"
    prefix = parse_prefix(address)
    # Delete its outer download filter behind the shaper's back.
    lines = tc(lab, "filter", "show", "dev", "vd", "parent", "1:").splitlines()
    key = f"match {prefix.packed.hex()}/ffffffff at 16"
    owner = next(lines[n - 1] for n, line in enumerate(lines) if key in line)
    assert f"flowid 1:{layout.group_of(prefix) + 1:x} " in owner
    handle = owner.split()[owner.split().index("fh") + 1]
    tc(
        lab,
        "filter",
        "del",
        "dev",
        "vd",
        "parent",
        "1:",
        "prio",
        "10",
        "handle",
        handle,
        "protocol",
        "ip",
        "u32",
    )

    result = shaper.reconcile(DESIRED)

    assert result.repaired == [address]
    assert shaper.reconcile(DESIRED).operations == 0


def test_foreign_class_in_a_group_is_removed(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile(DESIRED)
    group0 = f"{layout.inner_qdisc(0) >> 16:x}:"
    foreign = f"{group0}999"
    tc(
        lab,
        "class",
        "add",
        "dev",
        "vd",
        "parent",
        group0,
        "classid",
        foreign,
        "htb",
        "rate",
        "1mbit",
    )

    result = shaper.reconcile(DESIRED)

    assert result.operations == 1
    assert foreign not in subscriber_classes(lab, "vd")


def test_unknown_root_qdisc_is_replaced(lab: Lab, shaper: Shaper) -> None:
    tc(
        lab,
        "qdisc",
        "replace",
        "dev",
        "vd",
        "root",
        "handle",
        "1:",
        "tbf",
        "rate",
        "1mbit",
        "burst",
        "10k",
        "latency",
        "50ms",
    )
    shaper.reconcile(DESIRED)
    assert "qdisc htb 1: root" in tc(lab, "qdisc", "show", "dev", "vd")
    assert len(subscriber_classes(lab, "vd")) == len(DESIRED)


def test_default_class_follows_the_default_setting(lab: Lab, shaper: Shaper) -> None:
    with_default = Shaper("vd", "vu", netns=lab.edge, default=Rate(2_000, 1_000))
    try:
        with_default.reconcile(DESIRED)
        assert "class htb 1:ffff root leaf" in tc(lab, "class", "show", "dev", "vd")
        assert with_default.reconcile(DESIRED).operations == 0
    finally:
        with_default.close()

    shaper.reconcile(DESIRED)  # default=None
    assert "1:ffff" not in tc(lab, "class", "show", "dev", "vd")


def test_teardown_restores_the_interfaces(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile(DESIRED)
    shaper.teardown()
    assert "htb" not in tc(lab, "qdisc", "show", "dev", "vd")
    assert "htb" not in tc(lab, "qdisc", "show", "dev", "vu")
    shaper.teardown()  # a second teardown finds nothing to do


def test_missing_interface_raises_naming_the_operation(lab: Lab) -> None:
    s = Shaper("vd", "nosuch0", netns=lab.edge)
    try:
        with pytest.raises(ShaperError) as info:
            s.reconcile(DESIRED)
        assert "find interface nosuch0" in info.value.operation
        assert "nosuch0" in str(info.value)
    finally:
        s.teardown()
        s.close()


def test_interface_vanishing_between_calls_raises(lab: Lab) -> None:
    lab.ns(lab.edge, "ip", "link", "add", "vx", "type", "veth", "peer", "name", "vy")
    s = Shaper("vx", "vy", netns=lab.edge)
    try:
        s.reconcile({"10.0.0.5": Rate(1_000, 1_000)})
        lab.ns(lab.edge, "ip", "link", "del", "vx")
        with pytest.raises(ShaperError, match="find interface vx"):
            s.reconcile({"10.0.0.5": Rate(2_000, 1_000)})
        with pytest.raises(ShaperError, match="find interface vx"):
            s.counters()
    finally:
        s.close()
        subprocess.run(["ip", "-n", lab.edge, "link", "del", "vx"], capture_output=True)


def test_missing_namespace_raises() -> None:
    with pytest.raises(ShaperError, match="no-such-netns"):
        Shaper("a", "b", netns="no-such-netns-ispedge")


def test_kernel_refusal_names_address_and_operation_then_next_reconcile_repairs(
    lab: Lab, shaper: Shaper
) -> None:
    shaper.reconcile(DESIRED)
    address = "10.0.0.99"
    group = layout.group_of(parse_prefix(address))
    inner = f"{layout.inner_qdisc(group) >> 16:x}:"
    # Swap the group's HTB for a classless fifo with the same handle: adding
    # a class there is refused by the kernel.
    tc(lab, "qdisc", "del", "dev", "vd", "parent", f"1:{group + 1:x}")
    tc(lab, "qdisc", "add", "dev", "vd", "parent", f"1:{group + 1:x}", "handle", inner, "pfifo")
    desired = {**DESIRED, address: Rate(8_000, 8_000)}

    with pytest.raises(ShaperError) as info:
        shaper.reconcile(desired)

    failures = info.value.failures
    assert all(f.address == address and "vd (download)" in f.operation for f in failures)
    assert any(f.operation.startswith("add class") for f in failures)
    assert info.value.address == address
    assert address in str(info.value)
    # The upload side was unaffected and finished its part.
    assert "8Mbit" in subscriber_classes(lab, "vu").values()

    repaired = shaper.reconcile(desired)
    assert address in repaired.added + repaired.repaired
    assert f"qdisc htb {inner}" in tc(lab, "qdisc", "show", "dev", "vd")
    assert "8Mbit" in subscriber_classes(lab, "vd").values()
    assert shaper.reconcile(desired).operations == 0


def test_update_changes_rates_directly_and_routes_the_rest_through_reconcile(
    lab: Lab, shaper: Shaper
) -> None:
    with pytest.raises(RuntimeError):
        shaper.update({"10.0.0.5": Rate(1_000, 1_000)})
    shaper.reconcile(DESIRED)

    changed = shaper.update({"10.0.0.5": Rate(10_000, 6_000), "10.0.3.5": DESIRED["10.0.3.5"]})
    assert changed.changed == ["10.0.0.5"] and changed.operations == 2  # upload class + leaf
    assert "6Mbit" in subscriber_classes(lab, "vu").values()

    added = shaper.update({"10.0.0.69": Rate(1_000, 1_000), "100.64.7.200": None})
    assert added.added == ["10.0.0.69"] and added.removed == ["100.64.7.200"]

    expected = {**DESIRED, "10.0.0.5": Rate(10_000, 6_000), "10.0.0.69": Rate(1_000, 1_000)}
    del expected["100.64.7.200"]
    assert shaper.reconcile(expected).operations == 0


def test_update_of_a_class_removed_behind_our_back_raises_then_reconcile_repairs(
    lab: Lab, shaper: Shaper
) -> None:
    shaper.reconcile(DESIRED)
    tc(lab, "qdisc", "del", "dev", "vu", "root")  # an operator cleared it by hand

    with pytest.raises(ShaperError) as info:
        shaper.update({"10.0.0.5": Rate(10_000, 9_000)})
    assert info.value.address == "10.0.0.5"
    assert "change class" in info.value.operation and "vu (upload)" in info.value.operation

    repaired = shaper.reconcile({**DESIRED, "10.0.0.5": Rate(10_000, 9_000)})
    assert "10.0.0.5" in repaired.added
    assert "9Mbit" in subscriber_classes(lab, "vu").values()


def test_change_behind_our_back_is_seen_after_a_quiet_reconcile(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile(DESIRED)
    assert shaper.reconcile(DESIRED).operations == 0  # remembered as quiet
    assert shaper.reconcile(DESIRED).operations == 0
    classid = next(c for c, rate in subscriber_classes(lab, "vd").items() if rate == "3Mbit")
    tc(lab, "class", "change", "dev", "vd", "classid", classid, "htb", "rate", "1mbit")

    result = shaper.reconcile(DESIRED)

    assert result.changed == ["100.64.7.200"]
    assert subscriber_classes(lab, "vd")[classid] == "3Mbit"


def test_a_class_left_with_the_old_default_burst_is_set_to_the_new_one(
    lab: Lab, shaper: Shaper
) -> None:
    """An upgrade from the 1 ms default: the tree still holds 10 Mbit/s classes with
    1,250 + 1,600 bytes of burst; the first reconcile sets them to 4 ms + 1,600."""
    shaper.reconcile(DESIRED)
    classid = next(c for c, rate in subscriber_classes(lab, "vd").items() if rate == "10Mbit")
    tc(lab, "class", "change", "dev", "vd", "classid", classid, "htb", "rate", "10mbit",
       "burst", "2850b", "cburst", "2850b")
    assert "burst 2850b" in tc(lab, "class", "show", "dev", "vd", "classid", classid)

    result = shaper.reconcile(DESIRED)

    assert result.changed == ["10.0.0.5"]
    assert "burst 6600b cburst 6600b" in tc(lab, "class", "show", "dev", "vd", "classid", classid)
    assert shaper.reconcile(DESIRED).operations == 0


def test_leaf_kind_is_the_best_the_kernel_really_has(lab: Lab, shaper: Shaper) -> None:
    found = detect(lab.edge)
    # Probed, not assumed: what the kernel lacks is reported absent.
    assert {"htb", "pfifo", "bfifo"} <= found.qdiscs and "u32" in found.classifiers
    kernel_has_fq_codel = (
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                lab.edge,
                "tc",
                "qdisc",
                "add",
                "dev",
                "lo",
                "root",
                "fq_codel",
            ],
            capture_output=True,
        ).returncode
        == 0
    )
    subprocess.run(["tc", "-n", lab.edge, "qdisc", "del", "dev", "lo", "root"], capture_output=True)
    assert ("fq_codel" in found.qdiscs) == kernel_has_fq_codel
    assert shaper.leaf_kind == ("fq_codel" if kernel_has_fq_codel else "bfifo")

    shaper.reconcile({"10.0.0.5": Rate(10_000, 5_000)})
    leaves = [
        line for line in tc(lab, "qdisc", "show", "dev", "vd").splitlines() if "parent 1" in line
    ]
    assert any(line.startswith(f"qdisc {shaper.leaf_kind} ") for line in leaves)
    if shaper.leaf_kind == "bfifo":  # ~30 ms of the rate, at least 128 KiB
        assert any("limit 128Kb" in line for line in leaves)


def test_pfifo_leaves_when_that_is_all_there_is(lab: Lab) -> None:
    only_pfifo = Capabilities(frozenset({"htb", "pfifo"}), frozenset({"u32"}))
    s = Shaper("vd", "vu", netns=lab.edge, capabilities=only_pfifo)
    try:
        s.reconcile({"10.0.0.5": Rate(100_000, 5_000)})
        shown = tc(lab, "qdisc", "show", "dev", "vd")
        # 30 ms of 100 Mbit/s = 375,000 bytes = 247 full frames.
        assert "qdisc pfifo 1000: parent" in shown and "limit 247p" in shown
    finally:
        s.teardown()
        s.close()
