"""`ispedge demo`: one home with parental controls on, and the dig that shows it."""

from __future__ import annotations

from dataclasses import dataclass

from portal.core import parental
from portal.store import db
from portal.store.models import ParentalSettings, Subscriber

DEMO_HOME = "alice@demo.net"
DEMO_CATEGORIES = ("adult", "gambling")
DEMO_BLOCKED_NAME = "www.bet365.com"


@dataclass(frozen=True)
class Example:
    username: str
    address: str  # the framed IP of an open session: dig's -b
    name: str  # a name the home's categories block


async def _ensure(sub: Subscriber) -> None:
    row = await ParentalSettings.get_or_none(subscriber_id=sub.id)
    if row and row.enabled and set(DEMO_CATEGORIES) <= set(row.categories.split(",")):
        return
    await parental.change(sub, {"enabled": True,
                                "categories": dict.fromkeys(DEMO_CATEGORIES, True)},
                          list(parental.BUILTIN), ip="127.0.0.1")


async def _open_address(username: str) -> str:
    rows = await db.fetch("SELECT address FROM dns_policy WHERE username = ?", [username])
    v4 = [str(r["address"]) for r in rows if ":" not in str(r["address"])]
    return v4[0] if v4 else ""


async def ensure_example() -> Example | None:
    """alice@demo.net blocks adult + gambling; if her session happens to be closed,
    the first subscriber online (with parental controls allowed) is used instead."""
    candidates = [DEMO_HOME] + [
        str(r["username"]) for r in await db.fetch(
            "SELECT DISTINCT p.username FROM dns_policy p JOIN subscribers s"
            " ON s.username = p.username JOIN resellers r ON r.id = s.reseller_id"
            " WHERE r.parental_enabled ORDER BY p.username")]
    for username in candidates:
        sub = await Subscriber.get_or_none(username=username)
        if sub is None:
            continue
        address = await _open_address(username)
        if address:
            await _ensure(sub)
            return Example(username, address, DEMO_BLOCKED_NAME)
    return None
