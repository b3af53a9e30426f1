"""The boxes table: each edge box's daemons say they are alive (issue 16).

One row per (box, role): the enforcer and the resolver of a box heartbeat every
few seconds with one single-row upsert. Who owns what is decided from these rows
by plain functions (portal/enforcer/ownership.py); this module only reads and
writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.store import db
from portal.store.tx import DAEMON_BUDGET_S, transaction

ENFORCER = "enforcer"
RESOLVER = "resolver"

_HEARTBEAT = (
    "INSERT INTO boxes (name, role, last_seen, started_at, shaper, shaped_networks,"
    " journal_cursor) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (name, role) DO UPDATE SET last_seen = excluded.last_seen,"
    " started_at = excluded.started_at, shaper = excluded.shaper,"
    " shaped_networks = excluded.shaped_networks, journal_cursor = excluded.journal_cursor"
)


@dataclass(frozen=True)
class Box:
    name: str
    role: str
    last_seen: float
    started_at: float
    shaper: bool
    shaped_networks: tuple[str, ...]
    journal_cursor: int | None


async def heartbeat(name: str, role: str, now: float, started_at: float, *,
                    shaper: bool = False, shaped_networks: tuple[str, ...] = (),
                    journal_cursor: int | None = None) -> None:
    """One single-row upsert: this box's `role` is alive at `now`."""

    async def write(tx: BaseDBAsyncClient) -> None:
        await db.execute(_HEARTBEAT, [name, role, now, started_at, int(shaper),
                                      ",".join(shaped_networks), journal_cursor])

    await transaction(write, budget_s=DAEMON_BUDGET_S)


async def all_boxes(role: str | None = None) -> list[Box]:
    sql = ("SELECT name, role, last_seen, started_at, shaper, shaped_networks, journal_cursor"
           " FROM boxes")
    rows = await db.fetch(sql + (" WHERE role = ?" if role else "") + " ORDER BY name, role",
                          [role] if role else [])
    return [Box(str(r["name"]), str(r["role"]), float(r["last_seen"]), float(r["started_at"]),
                bool(r["shaper"]),
                tuple(n for n in str(r["shaped_networks"] or "").split(",") if n),
                None if r["journal_cursor"] is None else int(r["journal_cursor"]))
            for r in rows]


async def enforcers_seen() -> dict[str, float]:
    """Enforcer box name -> last_seen (epoch seconds)."""
    rows = await db.fetch("SELECT name, last_seen FROM boxes WHERE role = ?", [ENFORCER])
    return {str(r["name"]): float(r["last_seen"]) for r in rows}


async def nas_boxes() -> dict[str, str | None]:
    """nasname -> the box it is assigned to (None: no box named)."""
    rows = await db.fetch("SELECT nasname, box FROM nas")
    return {str(r["nasname"]): (str(r["box"]) if r["box"] else None) for r in rows}
