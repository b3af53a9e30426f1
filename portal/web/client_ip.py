"""The client's address: the socket peer, or X-Forwarded-For from a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def parse_networks(items: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(item, strict=False) for item in items]


def client_ip(peer: str, forwarded_for: str | None,
              trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """Walk X-Forwarded-For from the right, skipping trusted proxies.

    Only hops appended by proxies we trust are believed; the first untrusted hop
    is the client. A forged header from an untrusted peer is ignored.
    """
    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not forwarded_for or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer
