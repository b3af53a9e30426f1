"""Read blocklist text in the formats lists are published in.

hosts files ("0.0.0.0 example.com"), plain domains, adblock "||example.com^"
and "*.example.com" wildcards. A listed domain blocks its subdomains, so a
wildcard is stored as its parent. Comments (#, !) and blank lines are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_HOSTS_ADDRESSES = {
    "0.0.0.0",
    "127.0.0.1",
    "::",
    "::1",
    "0:0:0:0:0:0:0:0",
    "255.255.255.255",
    "::0",
}
_SKIP_NAMES = {
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
}


@dataclass
class ParseResult:
    domains: set[str] = field(default_factory=set)
    rejected: int = 0  # lines that were neither blank, comment nor a domain
    lines: int = 0


def normalise(name: str) -> str | None:
    name = name.strip().strip(".").lower()
    if name.startswith("*."):
        name = name[2:]
    if not name or len(name) > 253 or name in _SKIP_NAMES:
        return None
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return None
    labels = name.split(".")
    if len(labels) < 2:
        # A bare TLD in a list is almost always an error; never block a whole TLD.
        return None
    if all(_LABEL.match(label) for label in labels):
        return name
    return None


def parse_line(line: str) -> list[str] | None | bool:
    """Domains on the line, None for a blank/comment line, False for a line we cannot read."""
    line = line.strip()
    if not line or line[0] in "#!" or line.startswith("[Adblock"):
        return None
    if "#" in line:
        line = line.split("#", 1)[0].strip()
        if not line:
            return None
    if line.startswith("@@"):
        return None  # adblock exceptions belong in the allowlist, not here
    if line.startswith("||"):
        body = line[2:]
        end = body.find("^")
        if end < 0 or (body[end + 1 :] and not body[end + 1 :].startswith("$")):
            return False
        name = normalise(body[:end])
        return [name] if name else False
    parts = line.split()
    if len(parts) >= 2 and parts[0] in _HOSTS_ADDRESSES:
        if parts[1] in _SKIP_NAMES:
            return None
        names = [n for n in (normalise(p) for p in parts[1:]) if n]
        return names or False
    if len(parts) == 1:
        name = normalise(parts[0])
        return [name] if name else False
    return False


def parse_text(lines: Iterable[str]) -> ParseResult:
    result = ParseResult()
    for line in lines:
        result.lines += 1
        found = parse_line(line)
        if found is None:
            continue
        if found is False:
            result.rejected += 1
        else:
            result.domains.update(found)  # type: ignore[arg-type]
    return result
