"""Sessions as deltas: a changed radacct row → edits of the address → subscriber map.

The resolver follows `radacct_changes` (every insert and update of radacct) and
reads each changed row from the `dns_session` view. The rules, plain values in
and out:

- An open session maps each of its addresses (Framed-IP-Address, Framed-IPv6-Prefix,
  Delegated-IPv6-Prefix) to its username's categories. An address that first comes
  in an Interim-Update is mapped by that update.
- An address a session no longer holds (it stopped, or an update changed it) is
  removed, unless another open session this resolver knows holds it: then it maps
  to that session's subscriber (the most recent one).
- A row that is not there (not a subscriber's, or the row is gone) or belongs to a
  NAS this resolver does not serve is treated as stopped.

Sessions opened before the resolver started are known from its full load
(`dns_policy`) by address only; the periodic full reload heals any mapping the
deltas cannot (two such sessions sharing one address).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from dns_filter.policy import PolicyRow, key_of


def address_key(text: str | None) -> str | None:
    """The canonical key of an address or prefix ("10.0.0.5", "2001:db8:1::/56"), or None:
    the policy table's own key (its IPv4 fast path runs for each of 670 interims/s at
    200k sessions; ip_network cost the resolver 7 % of its time in scale_bench)."""
    return key_of(text) if text else None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One radacct row as `dns_session` gives it."""

    radacctid: int
    username: str
    nas: str
    open: bool
    addresses: tuple[str, ...]  # canonical keys (address_key)
    categories: str

    @classmethod
    def from_view(cls, radacctid: int, username: str, nas: str | None, open_: object,
                  framed_ip: str | None, framed_v6_prefix: str | None,
                  delegated_v6_prefix: str | None, categories: str | None) -> SessionRow:
        keys = []
        for text in (framed_ip, framed_v6_prefix, delegated_v6_prefix):
            key = address_key(text)
            if key is not None and key not in keys:
                keys.append(key)
        # One string object per NAS and per set of categories (a few distinct values
        # over 200k sessions): the index grows by what each session needs, not more.
        return cls(int(radacctid), str(username), sys.intern(str(nas or "")),
                   bool(int(str(open_ or 0))), tuple(keys), sys.intern(str(categories or "")))


@dataclass(frozen=True, slots=True)
class Edit:
    address: str
    row: PolicyRow | None  # None: remove the mapping


@dataclass
class SessionIndex:
    """The open sessions this resolver has followed, and who holds each address."""

    sessions: dict[int, SessionRow] = field(default_factory=dict)
    # address -> the radacctid holding it, or the set of them when several do (rare:
    # an int costs a few bytes where a set of one costs ~200, times 200k sessions)
    holders: dict[str, int | set[int]] = field(default_factory=dict)

    def apply(self, radacctid: int, row: SessionRow | None) -> list[Edit]:
        """The edits one changed radacct row makes (row None: not one we serve)."""
        old = self.sessions.pop(radacctid, None)
        now_open = row is not None and row.open
        held = set(row.addresses) if now_open and row is not None else set()
        if old is not None:
            before = set(old.addresses)
        elif row is not None and not row.open:
            before = set(row.addresses)  # a session from the full load, stopped now
        else:
            before = set()
        edits: list[Edit] = []
        for address in sorted(before - held):
            self._release(address, radacctid)
            other = self._holder(address)
            if other is None:
                edits.append(Edit(address, None))
            else:
                edits.append(Edit(address, PolicyRow(address, other.username, other.categories)))
        if now_open and row is not None:
            self.sessions[radacctid] = row
            # An Interim-Update of a session followed already, same subscriber and
            # categories: its addresses map as they did (670 interims/s at 200k
            # sessions made as many no-op edits for the answer thread to check).
            same = (old is not None and old.username == row.username
                    and old.categories == row.categories)
            for address in row.addresses:
                self._hold(address, radacctid)
                if same and old is not None and address in old.addresses:
                    continue
                edits.append(Edit(address, PolicyRow(address, row.username, row.categories)))
        return edits

    def _holder(self, address: str) -> SessionRow | None:
        ids = self.holders.get(address)
        if ids is None:
            return None
        return self.sessions[ids if isinstance(ids, int) else max(ids)]

    def _hold(self, address: str, radacctid: int) -> None:
        held = self.holders.get(address)
        if held is None or held == radacctid:
            self.holders[address] = radacctid
        elif isinstance(held, int):
            self.holders[address] = {held, radacctid}
        else:
            held.add(radacctid)

    def _release(self, address: str, radacctid: int) -> None:
        held = self.holders.get(address)
        if held is None:
            return
        if isinstance(held, int):
            if held == radacctid:
                del self.holders[address]
            return
        held.discard(radacctid)
        if len(held) == 1:
            self.holders[address] = next(iter(held))
        elif not held:
            del self.holders[address]


def served(nas: str, serve: frozenset[str] | None) -> bool:
    """Whether a session on `nas` is this resolver's (`serve` None: every NAS)."""
    return serve is None or nas in serve
