"""Real packets through the shaper: iperf3 across subscriber ── edge ── internet.

HTB shapes wire bytes (1514 per full frame, 1448 of them TCP payload), so TCP
goodput sits near 95.5% of the configured rate; we accept 90–100%.
"""

from __future__ import annotations

import pytest

from shaper import Rate, Shaper
from shaper.shaper import LEAF_MIN_BYTES, LEAF_QUEUE_MS
from tests.shaper.netlab import PORTS, SUB_ADDRESS6, SUB_ADDRESSES, SUB_PREFIX6, Lab, result

LOW, HIGH = 0.90, 1.00


def slack(kbps: int) -> int:
    """Bytes a transfer can leave behind: two leaf queues' worth."""
    return 2 * max(kbps * 125 * LEAF_QUEUE_MS // 1000, LEAF_MIN_BYTES)


def assert_shaped(goodput_bps: float, kbps: int) -> None:
    ratio = goodput_bps / (kbps * 1000)
    assert LOW <= ratio <= HIGH, (
        f"goodput {goodput_bps / 1e6:.2f} Mbit/s is {ratio:.1%} of {kbps / 1000} Mbit/s"
    )


@pytest.mark.parametrize("mbit", [5, 20, 100])
def test_download_and_upload_goodput_follow_rate_and_counters_account(
    lab: Lab, shaper: Shaper, mbit: int
) -> None:
    address = SUB_ADDRESSES[0]
    # Upload at half the download, so a swapped direction cannot pass.
    rate = Rate(down_kbps=mbit * 1000, up_kbps=mbit * 500)
    shaper.reconcile({address: rate})

    before = shaper.counters()[address]
    down = lab.measure(download=True)
    middle = shaper.counters()[address]
    up = lab.measure(download=False)
    after = shaper.counters()[address]

    assert_shaped(down.goodput_bps, rate.down_kbps)
    assert_shaped(up.goodput_bps, rate.up_kbps)
    # The class counted every payload byte plus headers; beyond that at most
    # what was still queued or in flight when iperf3 stopped counting.
    down_bytes = middle.down_bytes - before.down_bytes
    up_bytes = after.up_bytes - middle.up_bytes
    assert down.received_bytes <= down_bytes <= down.received_bytes * 1.1 + slack(rate.down_kbps)
    assert up.received_bytes <= up_bytes <= up.received_bytes * 1.1 + slack(rate.up_kbps)
    assert middle.down_packets - before.down_packets >= down.received_bytes // 1448


@pytest.mark.parametrize("how", ["reconcile", "update"])
def test_rate_change_takes_effect_in_place(lab: Lab, shaper: Shaper, how: str) -> None:
    address = SUB_ADDRESSES[0]
    shaper.reconcile({address: Rate(20_000, 20_000)})
    assert_shaped(lab.measure(download=True).goodput_bps, 20_000)
    bytes_before = shaper.counters()[address].down_bytes

    if how == "reconcile":
        result = shaper.reconcile({address: Rate(5_000, 20_000)})
    else:
        result = shaper.update({address: Rate(5_000, 20_000)})

    assert result.changed == [address] and not result.added and not result.repaired
    assert result.operations == 2  # the class and its leaf's queue limit, download only
    assert_shaped(lab.measure(download=True).goodput_bps, 5_000)
    # Same class, changed in place: its counters kept counting.
    assert shaper.counters()[address].down_bytes > bytes_before


def test_two_subscribers_are_shaped_independently(lab: Lab, shaper: Shaper) -> None:
    fast, slow = SUB_ADDRESSES[0], SUB_ADDRESSES[1]
    shaper.reconcile({fast: Rate(20_000, 20_000), slow: Rate(5_000, 5_000)})

    a = lab.iperf(download=True, bind=fast, port=PORTS[0])
    b = lab.iperf(download=True, bind=slow, port=PORTS[1])
    fast_run, slow_run = result(a), result(b)

    assert_shaped(fast_run.goodput_bps, 20_000)
    assert_shaped(slow_run.goodput_bps, 5_000)


def test_unlisted_address_is_unshaped_without_default(lab: Lab, shaper: Shaper) -> None:
    shaper.reconcile({SUB_ADDRESSES[0]: Rate(5_000, 5_000)})
    other = lab.measure(download=True, bind=SUB_ADDRESSES[2], seconds=1)
    assert other.goodput_bps > 50e6  # far above any configured rate


def test_default_rate_shapes_unlisted_addresses(lab: Lab) -> None:
    s = Shaper("vd", "vu", netns=lab.edge, default=Rate(10_000, 5_000))
    try:
        s.reconcile({SUB_ADDRESSES[0]: Rate(20_000, 20_000)})
        assert_shaped(lab.measure(download=True, bind=SUB_ADDRESSES[2]).goodput_bps, 10_000)
        assert_shaped(lab.measure(download=False, bind=SUB_ADDRESSES[2]).goodput_bps, 5_000)
        assert_shaped(lab.measure(download=True, bind=SUB_ADDRESSES[0]).goodput_bps, 20_000)
    finally:
        s.teardown()
        s.close()


def test_ipv6_prefix_is_shaped(lab: Lab, shaper: Shaper) -> None:
    rate = Rate(down_kbps=20_000, up_kbps=10_000)
    shaper.reconcile({SUB_PREFIX6: rate})

    assert_shaped(lab.measure(download=True, bind=SUB_ADDRESS6).goodput_bps, rate.down_kbps)
    assert_shaped(lab.measure(download=False, bind=SUB_ADDRESS6).goodput_bps, rate.up_kbps)
    counters = shaper.counters()[SUB_PREFIX6]
    assert counters.down_bytes > 0 and counters.up_bytes > 0


def test_removed_address_is_no_longer_shaped(lab: Lab, shaper: Shaper) -> None:
    address = SUB_ADDRESSES[0]
    shaper.reconcile({address: Rate(5_000, 5_000), SUB_ADDRESSES[1]: Rate(5_000, 5_000)})

    result = shaper.reconcile({SUB_ADDRESSES[1]: Rate(5_000, 5_000)})

    assert result.removed == [address]
    assert address not in shaper.counters()
    assert lab.measure(download=True, bind=address, seconds=1).goodput_bps > 50e6


def test_adopted_tree_keeps_shaping_after_restart(lab: Lab, shaper: Shaper) -> None:
    desired = {SUB_ADDRESSES[0]: Rate(5_000, 5_000)}
    shaper.reconcile(desired)

    restarted = Shaper("vd", "vu", netns=lab.edge)
    try:
        assert restarted.reconcile(desired).operations == 0
        assert_shaped(lab.measure(download=True).goodput_bps, 5_000)
        assert restarted.counters()[SUB_ADDRESSES[0]].down_bytes > 0
    finally:
        restarted.close()
