"""Vendor profiles and result decoding: plain functions, no network."""

from __future__ import annotations

import pytest
from pyrad.packet import CoAPacket

from coa import (
    COA_ACK,
    COA_NAK,
    DISCONNECT_ACK,
    DISCONNECT_NAK,
    PROFILE_NAMES,
    Burst,
    CiscoProfile,
    Nas,
    Rate,
    get_profile,
)
from coa.dictionary import load_dictionary
from coa.profiles import default_profiles
from coa.results import answered, no_answer

BURST = Burst(
    down_kbps=15000, up_kbps=3000, threshold_down_kbps=8000, threshold_up_kbps=1500, seconds=10
)
CISCO = CiscoProfile(down_policies={10000: "DOWN-10M"}, up_policies={2000: "UP-2M"})


def test_mikrotik_puts_upload_first_in_kbit() -> None:
    profile = get_profile("mikrotik")
    assert profile.attributes(Rate(10000, 2000)) == [("Mikrotik-Rate-Limit", "2000k/10000k")]


def test_mikrotik_burst_fields_in_router_order() -> None:
    rate = Rate(10000, 2000, BURST)
    assert get_profile("mikrotik").attributes(rate) == [
        ("Mikrotik-Rate-Limit", "2000k/10000k 3000k/15000k 1500k/8000k 10/10")
    ]


def test_accel_ppp_filter_id_is_down_slash_up() -> None:
    profile = get_profile("accel-ppp")
    assert profile.attributes(Rate(10000, 2000)) == [("Filter-Id", "10000/2000")]
    # burst is accel-ppp's own configuration, not a per-session attribute
    assert profile.attributes(Rate(10000, 2000, BURST)) == [("Filter-Id", "10000/2000")]


def test_generic_wispr_in_bits_per_second() -> None:
    assert get_profile("generic").attributes(Rate(10000, 2000)) == [
        ("WISPr-Bandwidth-Max-Down", 10_000_000),
        ("WISPr-Bandwidth-Max-Up", 2_000_000),
    ]


def test_generic_refuses_rates_beyond_32_bits() -> None:
    with pytest.raises(ValueError, match="32-bit"):
        get_profile("generic").attributes(Rate(5_000_000, 1000))


def test_cisco_maps_rates_to_policy_names() -> None:
    assert CISCO.attributes(Rate(10000, 2000)) == [
        ("Cisco-AVPair", "ip:sub-qos-policy-in=UP-2M"),
        ("Cisco-AVPair", "ip:sub-qos-policy-out=DOWN-10M"),
    ]


@pytest.mark.parametrize(
    ("rate", "missing"), [(Rate(20000, 2000), "20000 kbit/s down"), (Rate(10000, 1), "1 kbit/s up")]
)
def test_cisco_without_a_policy_for_the_rate_is_an_error(rate: Rate, missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        CISCO.attributes(rate)


def test_reply_attributes_are_freeradius_rows() -> None:
    rate = Rate(10000, 2000)
    assert get_profile("mikrotik").reply_attributes(rate) == [
        ("Mikrotik-Rate-Limit", ":=", "2000k/10000k")
    ]
    assert get_profile("generic").reply_attributes(rate) == [
        ("WISPr-Bandwidth-Max-Down", ":=", "10000000"),
        ("WISPr-Bandwidth-Max-Up", ":=", "2000000"),
    ]
    # two Cisco-AVPair rows: ":=" would let the second replace the first
    assert CISCO.reply_attributes(rate) == [
        ("Cisco-AVPair", "+=", "ip:sub-qos-policy-in=UP-2M"),
        ("Cisco-AVPair", "+=", "ip:sub-qos-policy-out=DOWN-10M"),
    ]


@pytest.mark.parametrize("name", ["mikrotik", "accel-ppp", "generic", "cisco"])
def test_every_profile_encodes_with_the_shipped_dictionary(name: str) -> None:
    profiles = default_profiles({10000: "DOWN-10M"}, {2000: "UP-2M"})
    packet = CoAPacket(secret=b"s", dict=load_dictionary())
    for attribute, value in profiles[name].attributes(Rate(10000, 2000, BURST)):
        packet.AddAttribute(attribute, value)
    assert len(packet.RequestPacket()) > 20


def test_profile_names() -> None:
    assert set(PROFILE_NAMES) == {"mikrotik", "accel-ppp", "generic", "cisco"}
    with pytest.raises(ValueError, match="unknown NAS profile 'juniper'"):
        get_profile("juniper")


@pytest.mark.parametrize(
    ("down", "up"), [(-1, 1000), (1000, -5), (0, 1000), (1000, 0), (1.5, 1000), (True, 1000)]
)
def test_bad_rates_are_refused(down: object, up: object) -> None:
    with pytest.raises(ValueError):
        Rate(down, up)  # type: ignore[arg-type]


def test_bad_bursts_are_refused() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Burst(15000, 3000, 8000, 1500, 0)
    with pytest.raises(ValueError, match="burst rate"):
        Rate(20000, 2000, BURST)  # burst 15000 below the 20000 rate


@pytest.mark.parametrize(
    "kwargs", [{"address": "nas.example"}, {"secret": ""}, {"coa_port": 0}, {"coa_port": 70000}]
)
def test_bad_nas_is_refused(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {"address": "127.0.0.1", "secret": "s"} | kwargs
    with pytest.raises(ValueError):
        Nas(**values)  # type: ignore[arg-type]


def test_ack_results() -> None:
    for code in (COA_ACK, DISCONNECT_ACK):
        result = answered(code, None, None, 1.5)
        assert result.ok and not result.retryable and result.error_cause is None
        assert result.rtt_ms == 1.5


def test_session_gone_is_final() -> None:
    result = answered(COA_NAK, 503, None, 2.0)
    assert not result.ok and not result.retryable and result.session_gone
    assert result.code == COA_NAK
    assert "Session-Context-Not-Found (503)" in result.message


@pytest.mark.parametrize(
    ("cause", "retryable"),
    [(401, False), (402, False), (403, False), (404, False), (407, False), (501, False)]
    + [(502, True), (505, True), (506, True)],
)
def test_nak_retryability_by_error_cause(cause: int, retryable: bool) -> None:
    result = answered(DISCONNECT_NAK, cause, "no", 1.0)
    assert not result.ok and result.retryable is retryable and not result.session_gone
    assert f"({cause})" in result.message and "[no]" in result.message


def test_bare_nak_is_retryable() -> None:
    result = answered(COA_NAK, None, None, 1.0)
    assert not result.ok and result.retryable and "without Error-Cause" in result.message


def test_no_answer_is_retryable_and_mentions_bad_authenticators() -> None:
    result = no_answer("127.0.0.1:3799", 3, 2, 900.0)
    assert not result.ok and result.retryable and result.code is None
    assert "3 attempt(s)" in result.message and "wrong shared secret" in result.message
    assert "secret" not in no_answer("127.0.0.1:3799", 3, 0, 900.0).message


@pytest.mark.parametrize("message_authenticator", [True, False])
def test_one_pass_request_encoding_matches_pyrad(message_authenticator: bool) -> None:
    from coa.client import _Request

    encoded = []
    for cls in (CoAPacket, _Request):
        packet = cls(code=43, id=7, secret=b"s3cret", dict=load_dictionary())
        if message_authenticator:
            packet.add_message_authenticator()
        packet.AddAttribute("User-Name", "bob")
        packet.AddAttribute("Mikrotik-Rate-Limit", "2000k/10000k")
        encoded.append(packet.RequestPacket())
    assert encoded[0] == encoded[1]
    # and a NAS-side pyrad accepts it
    received = CoAPacket(packet=encoded[1], secret=b"s3cret", dict=load_dictionary())
    assert received.VerifyCoARequest()
    if message_authenticator:
        assert received.verify_message_authenticator()
