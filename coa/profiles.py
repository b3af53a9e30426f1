"""NAS vendor profiles: how each vendor wants a rate expressed.

One small class per vendor, like accel-ppp keeps each vendor's format in one
place. `attributes()` feeds a CoA-Request; `reply_attributes()` gives the
same values as FreeRADIUS radreply rows, so a reconnect gets the speed a CoA
set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from coa.types import Rate

AttributeValue = str | int
# (attribute name, value) as pyrad encodes it.
Attribute = tuple[str, AttributeValue]
# (attribute, op, value) as a FreeRADIUS radreply row holds it.
ReplyRow = tuple[str, str, str]

_UINT32_MAX = 2**32 - 1


class Profile(Protocol):
    name: str

    def attributes(self, rate: Rate) -> list[Attribute]: ...

    def reply_attributes(self, rate: Rate) -> list[ReplyRow]: ...


class _Base:
    name = ""
    # ":=" replaces whatever a group reply set; a vendor that needs the same
    # attribute twice overrides this with "+=" (":=" would keep only one).
    reply_op = ":="

    def attributes(self, rate: Rate) -> list[Attribute]:
        raise NotImplementedError

    def reply_attributes(self, rate: Rate) -> list[ReplyRow]:
        return [(name, self.reply_op, str(value)) for name, value in self.attributes(rate)]


class MikrotikProfile(_Base):
    """Mikrotik-Rate-Limit "UPk/DOWNk [burst...]": the router's rx/tx view,
    so the subscriber's upload comes first."""

    name = "mikrotik"

    def attributes(self, rate: Rate) -> list[Attribute]:
        value = f"{rate.up_kbps}k/{rate.down_kbps}k"
        if rate.burst is not None:
            b = rate.burst
            value += (
                f" {b.up_kbps}k/{b.down_kbps}k"
                f" {b.threshold_up_kbps}k/{b.threshold_down_kbps}k"
                f" {b.seconds}/{b.seconds}"
            )
        return [("Mikrotik-Rate-Limit", value)]


class AccelPppProfile(_Base):
    """Filter-Id "DOWN/UP" in kbit/s, accel-ppp's default shaper attribute.

    accel-ppp takes burst from its own down-burst-factor/up-burst-factor
    settings; a Rate's burst has no per-session attribute there and is not sent.
    """

    name = "accel-ppp"

    def attributes(self, rate: Rate) -> list[Attribute]:
        return [("Filter-Id", f"{rate.down_kbps}/{rate.up_kbps}")]


class GenericProfile(_Base):
    """WISPr-Bandwidth-Max-Down/Up in bit/s (hotspot gateways, many CPE NASes)."""

    name = "generic"

    def attributes(self, rate: Rate) -> list[Attribute]:
        down, up = rate.down_kbps * 1000, rate.up_kbps * 1000
        if max(down, up) > _UINT32_MAX:
            raise ValueError(f"WISPr bandwidth is a 32-bit bit/s value; {rate} is too fast")
        return [("WISPr-Bandwidth-Max-Down", down), ("WISPr-Bandwidth-Max-Up", up)]


class CiscoProfile(_Base):
    """Cisco-AVPair sub-qos-policy-in/out naming policies configured on the box.

    A Cisco BNG applies named policy maps, not numbers, so the operator maps
    each rate to a policy name. "in" is traffic from the subscriber (upload),
    "out" is traffic to the subscriber (download).
    """

    name = "cisco"
    reply_op = "+="

    def __init__(
        self,
        down_policies: Mapping[int, str] | None = None,
        up_policies: Mapping[int, str] | None = None,
    ) -> None:
        self.down_policies = dict(down_policies or {})
        self.up_policies = dict(up_policies or {})

    def attributes(self, rate: Rate) -> list[Attribute]:
        try:
            policy_in = self.up_policies[rate.up_kbps]
        except KeyError:
            raise ValueError(f"no Cisco policy configured for {rate.up_kbps} kbit/s up") from None
        try:
            policy_out = self.down_policies[rate.down_kbps]
        except KeyError:
            raise ValueError(
                f"no Cisco policy configured for {rate.down_kbps} kbit/s down"
            ) from None
        return [
            ("Cisco-AVPair", f"ip:sub-qos-policy-in={policy_in}"),
            ("Cisco-AVPair", f"ip:sub-qos-policy-out={policy_out}"),
        ]


def default_profiles(
    cisco_down_policies: Mapping[int, str] | None = None,
    cisco_up_policies: Mapping[int, str] | None = None,
) -> dict[str, Profile]:
    """All profiles by name; only Cisco needs configuration (its policy names)."""
    profiles: list[Profile] = [
        MikrotikProfile(),
        AccelPppProfile(),
        GenericProfile(),
        CiscoProfile(cisco_down_policies, cisco_up_policies),
    ]
    return {p.name: p for p in profiles}


PROFILE_NAMES = tuple(default_profiles())


def get_profile(name: str, profiles: Mapping[str, Profile] | None = None) -> Profile:
    table = default_profiles() if profiles is None else profiles
    try:
        return table[name]
    except KeyError:
        raise ValueError(
            f"unknown NAS profile {name!r}; known: {', '.join(sorted(table))}"
        ) from None
