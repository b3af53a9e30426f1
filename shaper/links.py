"""The few link operations the shaper needs: find an interface, make a scratch veth."""

from __future__ import annotations

import errno
import struct

from shaper.netlink import NLM_F_CREATE, NLM_F_EXCL, NetlinkSocket, Request, attr, attr_str

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
IFINFOMSG = struct.Struct("=BxHiII")
IFLA_IFNAME, IFLA_LINKINFO = 3, 18
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1


def _ifinfo(index: int = 0) -> bytes:
    return IFINFOMSG.pack(0, 0, index, 0, 0)


def ifindex(nl: NetlinkSocket, name: str) -> int | None:
    """Index of interface ``name`` in the socket's namespace, None if absent."""
    got: list[int] = []

    def collect(payload: bytes) -> None:
        got.append(IFINFOMSG.unpack_from(payload, 0)[2])

    failures = nl.execute(
        [Request(RTM_GETLINK, 0, _ifinfo() + attr_str(IFLA_IFNAME, name), "find interface", None)],
        on_reply=collect,
    )
    if failures:
        if failures[0].errno in (errno.ENODEV, errno.ENOENT):
            return None
        raise OSError(failures[0].errno, failures[0].message)
    return got[0] if got else None


def add_veth(nl: NetlinkSocket, name: str, peer: str) -> None:
    peer_info = _ifinfo() + attr_str(IFLA_IFNAME, peer)
    info = attr_str(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))
    body = _ifinfo() + attr_str(IFLA_IFNAME, name) + attr(IFLA_LINKINFO, info)
    failures = nl.execute([Request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, "add veth", None)])
    if failures:
        raise OSError(failures[0].errno, failures[0].describe())


def delete_link(nl: NetlinkSocket, index: int) -> None:
    nl.execute([Request(RTM_DELLINK, 0, _ifinfo(index), "delete link", None)])
