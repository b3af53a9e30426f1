"""Who is asking: source address → categories to block.

IPv4 subscribers are matched by exact address (a dict lookup on the string
Twisted hands us); IPv6 subscribers by delegated prefix, longest match.
Addresses inside the served networks with no subscriber get the operator's
default categories; addresses outside get None, which the chain answers
with REFUSED so the box is never an open resolver.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

Categories = frozenset[str]


@dataclass(frozen=True, slots=True)
class PolicyRow:
    address: str  # "10.0.0.5" or "2001:db8:1::/56"
    username: str
    categories: str  # comma separated, "" = nothing blocked


def parse_categories(text: str | None) -> Categories:
    return _parse_categories(text or "")


# A few distinct category strings over 200k sessions: the 670 interims/s of a 200k
# scale run parsed them again per session change (py-spy: 6 % of the resolver's
# GIL time, issue 17); a frozenset is immutable, so one per string is shared.
@functools.lru_cache(maxsize=4096)
def _parse_categories(text: str) -> Categories:
    return frozenset(c.strip() for c in text.split(",") if c.strip())


def key_of(address: str) -> str | None:
    """The table's key of a dns_policy address ("10.0.0.5", "2001:db8:1::/56"), or None
    for a row `_add` would skip."""
    address = address.strip()
    if "/" not in address and ":" not in address:
        try:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, address))
        except OSError:
            return None
    try:
        net = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return None
    if net.version == 4:
        return str(net.network_address) if net.prefixlen == 32 else None
    return f"{net.network_address}/{net.prefixlen}"


class PolicyTable:
    """Current subscriber policies, replaceable whole or per username."""

    def __init__(self) -> None:
        self.v4: dict[str, Categories] = {}
        # prefix length -> {network int: categories}; probed longest first
        self.v6: dict[int, dict[int, Categories]] = {}
        self.by_username: dict[str, list[str]] = {}
        self.owner_of: dict[str, str] = {}  # address key -> username
        self._interned: dict[Categories, Categories] = {}
        self.version = 0

    def __len__(self) -> int:
        return len(self.v4) + sum(len(t) for t in self.v6.values())

    @classmethod
    def build(cls, rows: Iterable[PolicyRow]) -> PolicyTable:
        """A new table (may run in a worker thread; `adopt` it on the reactor thread)."""
        fresh = cls()
        for row in rows:
            fresh._add(row)
        return fresh

    def adopt(self, fresh: PolicyTable) -> None:
        self.v4, self.v6, self.by_username = fresh.v4, fresh.v6, fresh.by_username
        self.owner_of = fresh.owner_of
        self._interned = fresh._interned
        self.version += 1

    def replace_all(self, rows: Iterable[PolicyRow]) -> None:
        self.adopt(PolicyTable.build(rows))

    def replace_username(self, username: str, rows: Iterable[PolicyRow]) -> None:
        for address in self.by_username.pop(username, []):
            self._remove(address)
            self.owner_of.pop(address, None)
        for row in rows:
            self._add(row)
        self.version += 1

    def apply_edits(self, edits: Iterable[tuple[str, PolicyRow | None]]) -> int:
        """Per-address deltas (address key, row or None to remove); returns how many
        changed the table. An edit that changes nothing leaves `version` alone, so
        interim updates of unchanged sessions do not clear the lookup memo."""
        changed = 0
        for address, row in edits:
            current = self._lookup_key(address)
            owner = self.owner_of.get(address)
            if row is None and current is None:
                continue
            if (row is not None and current is not None and owner == row.username
                    and current == parse_categories(row.categories)):
                continue
            if current is not None:
                self._remove(address)
                self.owner_of.pop(address, None)
                keys = self.by_username.get(owner or "", [])
                if address in keys:
                    keys.remove(address)
                    if not keys:
                        del self.by_username[owner or ""]
            if row is not None:
                self._add(row)
            changed += 1
        if changed:
            self.version += 1
        return changed

    def net_edits(self, edits: Iterable[tuple[str, PolicyRow | None]]
                  ) -> dict[str, PolicyRow | None]:
        """The edits that would change this table, the last one per address (each
        edit sets its address whole, so the last wins, as `apply_edits` in order).

        Runs in the polling thread, as `diff` does (the table changes only on the
        reactor, after the poll): a resolver started beside 200k open sessions knows
        them by address only, so for the first interim cycle every Interim-Update
        made an edit the answer thread had to check -- 14 % of its time at 670
        interims/s (scale_bench, py-spy), now spent off the answer path."""
        last: dict[str, PolicyRow | None] = {}
        for address, row in edits:
            last[address] = row
        owner = self.owner_of
        out: dict[str, PolicyRow | None] = {}
        for address, row in last.items():
            current = self._lookup_key(address)
            if row is None:
                if current is not None:
                    out[address] = None
            elif current is None or owner.get(address) != row.username \
                    or current != parse_categories(row.categories):
                out[address] = row
        return out

    def diff(self, chunks: Iterable[Iterable[PolicyRow]]) -> dict[str, PolicyRow | None]:
        """The edits (address key -> row, or None to remove) that make this table equal
        to `chunks` (a full read of the database), for `apply_edits`.

        Runs in the polling thread while the answer thread reads the table (nothing
        mutates it meanwhile: edits are applied on the reactor): a periodic check
        costs one read of the database and a comparison, never a second table nor
        a rebuild, and the answer thread applies only what differs."""
        want: dict[str, PolicyRow] = {}
        for chunk in chunks:
            for row in chunk:
                key = key_of(row.address)
                if key is not None:
                    want[key] = row  # a shared address: the last row, as `_add` does
        edits: dict[str, PolicyRow | None] = {}
        owner = self.owner_of
        for key, row in want.items():
            current = self._lookup_key(key)
            if current is None or owner.get(key) != row.username \
                    or current != parse_categories(row.categories):
                edits[key] = row
        for key in list(owner):
            if key not in want:
                edits[key] = None
        return edits

    def _lookup_key(self, key: str) -> Categories | None:
        if "/" not in key:
            return self.v4.get(key)
        net = ipaddress.ip_network(key)
        return self.v6.get(net.prefixlen, {}).get(int(net.network_address))

    def rows(self) -> list[PolicyRow]:
        out = []
        owner = self.owner_of
        for address, cats in self.v4.items():
            out.append(PolicyRow(address, owner.get(address, ""), ",".join(sorted(cats))))
        for plen, table in self.v6.items():
            for net, cats in table.items():
                address = f"{ipaddress.IPv6Address(net)}/{plen}"
                out.append(PolicyRow(address, owner.get(address, ""), ",".join(sorted(cats))))
        return out

    def _intern(self, cats: Categories) -> Categories:
        return self._interned.setdefault(cats, cats)

    def _add(self, row: PolicyRow) -> None:
        cats = self._intern(parse_categories(row.categories))
        address = row.address.strip()
        if "/" not in address and ":" not in address:
            # IPv4 fast path (10k rows per full reload): strict C parser, canonical text.
            try:
                key = socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, address))
            except OSError:
                return
            self.v4[key] = cats
            self.by_username.setdefault(row.username, []).append(key)
            self.owner_of[key] = row.username
            return
        try:
            net = ipaddress.ip_network(address, strict=False)
        except ValueError:
            return  # a malformed row must not take the table down; the DB owns validation
        if net.version == 4:
            if net.prefixlen != 32:
                return
            key = str(net.network_address)
            self.v4[key] = cats
        else:
            self.v6.setdefault(net.prefixlen, {})[int(net.network_address)] = cats
            key = f"{net.network_address}/{net.prefixlen}"
        self.by_username.setdefault(row.username, []).append(key)
        self.owner_of[key] = row.username

    def _remove(self, key: str) -> None:
        if "/" not in key:
            self.v4.pop(key, None)
            return
        net = ipaddress.ip_network(key)
        table = self.v6.get(net.prefixlen)
        if table is not None:
            table.pop(int(net.network_address), None)
            if not table:
                del self.v6[net.prefixlen]

    def owner(self, source: str) -> str:
        """The username whose row answers for this source address ("" if none), read
        from the table's own maps: nothing to rebuild when the table changes."""
        found = self.owner_of.get(source)
        if found is not None:
            return found
        try:
            address = ipaddress.ip_address(source.split("%", 1)[0])
        except ValueError:
            return ""
        if address.version == 4:
            return self.owner_of.get(str(address), "")
        if address.ipv4_mapped is not None:
            return self.owner_of.get(str(address.ipv4_mapped), "")
        value = int(address)
        for plen in sorted(self.v6, reverse=True):
            mask = ((1 << plen) - 1) << (128 - plen) if plen else 0
            if value & mask in self.v6[plen]:
                return self.owner_of.get(f"{ipaddress.IPv6Address(value & mask)}/{plen}", "")
        return ""

    def lookup_v6(self, address: int) -> Categories | None:
        for plen in sorted(self.v6, reverse=True):
            mask = ((1 << plen) - 1) << (128 - plen) if plen else 0
            found = self.v6[plen].get(address & mask)
            if found is not None:
                return found
        return None


class ClientPolicies:
    """The first stage: source address → categories, or None for REFUSED."""

    def __init__(
        self, table: PolicyTable, served_networks: Iterable[str], default_categories: Iterable[str]
    ):
        self.table = table
        self.served = [ipaddress.ip_network(n, strict=False) for n in served_networks]
        self.default = frozenset(default_categories)
        self._memo: dict[str, Categories | None] = {}
        self._memo_version = -1

    def categories_for(self, source: str) -> Categories | None:
        found = self.table.v4.get(source)
        if found is not None:
            return found
        if self._memo_version != self.table.version:
            self._memo.clear()
            self._memo_version = self.table.version
        try:
            return self._memo[source]
        except KeyError:
            pass
        result = self._resolve(source)
        if len(self._memo) > 100_000:
            self._memo.clear()
        self._memo[source] = result
        return result

    def _resolve(self, source: str) -> Categories | None:
        try:
            address = ipaddress.ip_address(source.split("%", 1)[0])
        except ValueError:
            return None
        if address.version == 6 and address.ipv4_mapped is not None:
            mapped = str(address.ipv4_mapped)
            found = self.table.v4.get(mapped)
            if found is not None:
                return found
            address = address.ipv4_mapped
        if address.version == 6:
            found = self.table.lookup_v6(int(address))
            if found is not None:
                return found
        if any(address in net for net in self.served):
            return self.default
        return None
