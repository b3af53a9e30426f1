"""Plain-value pieces: prefixes as u32 keys, message encoding read back, rates."""

from __future__ import annotations

import pytest

from shaper import Rate, canonical, layout
from shaper.addresses import parse_prefix, prefix_from_keys
from shaper.tc import HtbRate, htb_class, parse_class, parse_filter, u32_handle, u32_match


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.5",
        "198.51.100.8/30",
        "100.64.0.0/10",
        "2001:db8:0:1::/64",
        "2001:db8:100:200::/56",
        "2001:db8::1/128",
        "2001:db8:a::/48",
        "2001:db8:ab:cd80::/57",
    ],
)
@pytest.mark.parametrize("source", [False, True])
def test_prefix_survives_the_round_trip_through_u32_keys(text: str, source: bool) -> None:
    prefix = parse_prefix(text)
    assert prefix_from_keys(prefix.version, prefix.keys(source), source) == prefix


def test_keys_match_address_fields_of_the_ip_header() -> None:
    v4 = parse_prefix("10.1.2.3")
    assert v4.keys(source=False) == [(0xFFFFFFFF, 0x0A010203, 16)]
    assert v4.keys(source=True) == [(0xFFFFFFFF, 0x0A010203, 12)]
    v6 = parse_prefix("2001:db8:100:200::/56")
    assert v6.keys(source=False) == [(0xFFFFFFFF, 0x20010DB8, 24), (0xFFFFFF00, 0x01000200, 28)]
    assert v6.keys(source=True)[0][2] == 8


def test_hash_selects_the_last_whole_byte_of_the_prefix() -> None:
    v4 = parse_prefix("10.1.2.3")
    assert v4.hash_byte == 3 and v4.bucket(v4.hash_byte) == 3
    assert v4.hash_word(v4.hash_byte, source=False) == (0x000000FF, 16)
    assert v4.hash_word(v4.inner_hash_byte, source=True) == (0x0000FF00, 12)
    v6 = parse_prefix("2001:db8:0:1::/64")
    assert v6.hash_byte == 7 and v6.hash_word(7, source=False) == (0x000000FF, 28)


def test_canonical_forms_and_bad_input() -> None:
    assert canonical("10.0.0.5/32") == "10.0.0.5"
    assert canonical("2001:DB8:0:1::/64") == "2001:db8:0:1::/64"
    assert canonical("2001:db8:0:1::5/64") == "2001:db8:0:1::/64"
    with pytest.raises(ValueError):
        parse_prefix("10.0.0.0/4")
    with pytest.raises(ValueError):
        parse_prefix("not-an-address")


def test_rate_validation_and_conversion() -> None:
    with pytest.raises(ValueError):
        Rate(0, 1_000)
    with pytest.raises(ValueError):
        Rate(1_000, 1_000, burst_kbytes=0)
    with pytest.raises(ValueError):
        Rate(1_500.5, 1_000)  # type: ignore[arg-type]
    rate = Rate(down_kbps=8_000, up_kbps=800, burst_kbytes=50)
    assert rate.htb(download=True) == HtbRate(1_000_000, 50_000)
    assert rate.htb(download=False) == HtbRate(100_000, 50_000)
    # Unset: 4 ms of the rate plus an MTU's worth (DEFAULT_BURST_MS).
    assert Rate(8_000, 800).htb(download=True).burst_bytes == 4_000 + 1600


@pytest.mark.parametrize("rate_bps", [125_000, 12_500_000, 12_500_000_000])
def test_htb_class_message_reads_back(rate_bps: int) -> None:
    want = HtbRate(rate_bps, 64_000)
    request = htb_class(3, 0x1050002, 0x1050000, want, "op", None, True)
    info = parse_class(memoryview(request.body))
    assert info.classid == 0x1050002 and info.ceil_bps == rate_bps
    assert info.rate is not None and info.rate.rate_bps == rate_bps
    assert abs(info.rate.burst_bytes - 64_000) <= rate_bps * 64 // 1_000_000_000 + 1


def test_u32_match_message_reads_back() -> None:
    prefix = parse_prefix("2001:db8:0:1::/64")
    handle = u32_handle(layout.table_id(prefix), 1, 7)
    request = u32_match(
        3, 0x10000, 20, prefix.protocol, handle, prefix.keys(False), 0x10002, "op", "a"
    )
    info = parse_filter(memoryview(request.body))
    assert info is not None
    assert (info.handle, info.prio, info.protocol, info.classid) == (handle, 20, 0x86DD, 0x10002)
    assert prefix_from_keys(6, info.keys, source=False) == prefix


def test_layout_ids_stay_clear_of_each_other() -> None:
    assert max(layout.table_id(parse_prefix(p)) for p in ("10.0.0.1", "2001:db8::1")) < 0x800
    inner = {layout.inner_qdisc(g) >> 16 for g in range(layout.GROUPS)}
    assert len(inner) == layout.GROUPS
    assert not inner & layout.LEAF_MAJOR_SET and layout.ROOT_MAJOR not in inner
    assert layout.DEFAULT_LEAF_MAJOR not in inner | layout.LEAF_MAJOR_SET
    assert len(layout.LEAF_MAJORS) > 50_000
    # Group qdiscs share the root's bucket of the kernel's qdisc hash; leaves never do.
    root_bucket = layout.qdisc_hash_bucket(layout.ROOT_MAJOR)
    assert {layout.qdisc_hash_bucket(m) for m in inner} == {root_bucket}
    assert root_bucket not in {layout.qdisc_hash_bucket(m) for m in layout.LEAF_MAJORS}
    assert [layout.group_of_inner(layout.inner_qdisc(g)) for g in range(3)] == [0, 1, 2]
    assert layout.link_node(parse_prefix("2001:db8::/64")) < layout.link_node(
        parse_prefix("2001:db8::/56")
    )
