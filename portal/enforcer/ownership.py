"""Who acts on what: the edge-box ownership rules as plain functions (issue 16).

No database, no network: the boxes seen, the nas table's box column and this
box's settings in; targets and owners out. Unit tested in
tests/enforcer/test_ownership.py; portal/enforcer/README.md states the rules
for operators:

- A NAS belongs to the box named in its `box` column while that box's enforcer
  has been seen within BOX_TIMEOUT_S. A NAS with no box belongs to the only box
  when exactly one enforcer box runs (the embedded shape and the demo need no
  configuration); with more than one it is unowned. Nobody acts on an unowned
  NAS's sessions: `ispedge enforcer status --problems` lists it.
- The owner of a session's NAS sends its CoA (target `nas:<address>`) and closes
  its stale sessions.
- A box with the local shaper shapes exactly the sessions whose
  Framed-IP-Address lies in its `[enforcer] shaped_networks` (target
  `shaper:<box>`), on a NAS or not. With no networks configured it shapes the
  sessions on no known NAS, and only while it is the only box.
- A session no target covers while this is the only box is recorded as `none`
  (unenforced), as before boxes existed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BOX_TIMEOUT_S = 60.0
NONE = "none"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def nas_target(address: str) -> str:
    return f"nas:{address}"


def shaper_target(box: str) -> str:
    return f"shaper:{box}"


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """[enforcer] shaped_networks as networks; ValueError names the bad entry."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise ValueError(f"shaped_networks: {v!r} is not a network (e.g. 100.64.0.0/16)"
                             ) from None
    return tuple(out)


def live_boxes(seen: Mapping[str, float], me: str | None, now: float,
               timeout_s: float = BOX_TIMEOUT_S) -> frozenset[str]:
    """Enforcer boxes seen within timeout_s; `me` (a running enforcer) always counts."""
    live = {name for name, at in seen.items() if now - at <= timeout_s}
    if me:
        live.add(me)
    return frozenset(live)


@dataclass(frozen=True)
class Owner:
    box: str | None  # the box that acts for the NAS; None: unowned
    problem: str = ""  # why it is unowned, as an operator reads it


def nas_owner(nas_box: str | None, live: frozenset[str]) -> Owner:
    """The box that acts for a NAS whose `box` column is nas_box."""
    if nas_box:
        if nas_box in live:
            return Owner(nas_box)
        return Owner(None, f"its box {nas_box} has not been seen for {BOX_TIMEOUT_S:.0f} s")
    if len(live) == 1:
        return Owner(next(iter(live)))
    if not live:
        return Owner(None, "no box named and no enforcer running")
    return Owner(None, f"no box named and {len(live)} boxes run enforcers "
                       f"({', '.join(sorted(live))}): `ispedge nas set ADDRESS --box NAME`")


def in_networks(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("/")[0])
    except ValueError:
        return False
    return any(ip in n for n in networks if n.version == ip.version)


def session_targets(nas_ip: str, framed_ip: str, nas_boxes: Mapping[str, str | None],
                    me: str, live: frozenset[str], shaper_on: bool,
                    networks: tuple[Network, ...]) -> list[str]:
    """The targets this box (`me`) acts on for one session.

    nas_boxes: the CoA-able NASes (nas table) and their box column. framed_ip: the
    session's address as the shaper keys it ("" when it has none usable).
    """
    targets = []
    known = nas_ip in nas_boxes
    if known and nas_owner(nas_boxes[nas_ip], live).box == me:
        targets.append(nas_target(nas_ip))
    only = live == frozenset({me})
    if shaper_on and framed_ip:
        if networks:
            if in_networks(framed_ip, networks):
                targets.append(shaper_target(me))
        elif not known and only:
            targets.append(shaper_target(me))
    if not targets and not known and only:
        targets.append(NONE)
    return targets


def responsible(target: str, me: str, nas_boxes: Mapping[str, str | None],
                live: frozenset[str]) -> bool:
    """May this box delete a state row of `target` that it no longer wishes?

    Its own shaper's rows and the rows of NASes it owns; rows of a NAS that left
    the nas table, `none` rows and rows of the pre-box `shaper` target belong to
    no box, so any box clears them (deleting twice is harmless).
    """
    if target.startswith("shaper:"):
        return target == shaper_target(me)
    if target.startswith("nas:"):
        address = target[4:]
        return address not in nas_boxes or nas_owner(nas_boxes[address], live).box == me
    return True


def closes_stale(nas_ip: str, nas_boxes: Mapping[str, str | None], me: str,
                 live: frozenset[str]) -> bool:
    """Does this box close a silent session of this NAS? Its owner does; a NAS not
    in the nas table has no owner to wait for, so any box does (the close is a
    conditional update: doing it twice changes nothing)."""
    if nas_ip not in nas_boxes:
        return True
    return nas_owner(nas_boxes[nas_ip], live).box == me


@dataclass(frozen=True)
class Unowned:
    target: str  # nas:<address> | shaper:<box>
    problem: str
    sessions: int  # open sessions nobody acts on


def unowned(nas_boxes: Mapping[str, str | None], live: frozenset[str],
            sessions_by_nas: Mapping[str, int], shaper_targets: Mapping[str, int]
            ) -> list[Unowned]:
    """What no running box acts on, for `ispedge enforcer status --problems`.

    Every NAS in the nas table without a live owner (whether or not it has
    sessions now: it will), and every box's shaper whose box is no longer seen
    while state rows say it shapes sessions (shaper_targets: target -> rows).
    """
    out = []
    for address in sorted(nas_boxes):
        owner = nas_owner(nas_boxes[address], live)
        if owner.box is None:
            out.append(Unowned(nas_target(address), f"NAS {address}: {owner.problem}",
                               sessions_by_nas.get(address, 0)))
    for target in sorted(shaper_targets):
        box = target.removeprefix("shaper:")
        if target.startswith("shaper:") and box not in live:
            out.append(Unowned(target, f"box {box} (local shaper) has not been seen for "
                                       f"{BOX_TIMEOUT_S:.0f} s", shaper_targets[target]))
    return out
