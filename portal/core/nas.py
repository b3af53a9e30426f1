"""NASes and the edge box each belongs to: `ispedge nas add|list|set|remove` (issue 16).

The nas table is FreeRADIUS's (nasname = the NAS's address, secret = the RADIUS
shared secret) plus ours: coa_port, profile (the vendor format of rate
attributes, coa.PROFILE_NAMES) and box (the edge box whose enforcer sends its
CoA; portal/enforcer/ownership.py). Values are checked by plain functions before
anything is written; each command is one transaction.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from coa import PROFILE_NAMES
from portal.config import BOX_NAME
from portal.errors import NotFound, PortalError
from portal.store import db
from portal.store.tx import transaction

MAX_SECRET = 60  # the column's width in FreeRADIUS's schema


@dataclass(frozen=True)
class NasRow:
    address: str
    secret: str
    coa_port: int
    profile: str
    box: str | None


def bad(message: str) -> PortalError:
    return PortalError("invalid_nas", message)


def check_address(text: str) -> str:
    """A NAS address as the enforcer matches NAS-IP-Address: one IP address."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise bad(f"address: {text!r} is not an IP address (e.g. 10.0.0.1)") from None


def check_secret(text: str) -> str:
    if not text or len(text) > MAX_SECRET or any(c.isspace() for c in text):
        raise bad(f"secret: 1-{MAX_SECRET} characters without spaces")
    return text


def check_coa_port(value: int | str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise bad(f"coa port: {value!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise bad(f"coa port: {port} is not between 1 and 65535")
    return port


def check_profile(text: str) -> str:
    if text not in PROFILE_NAMES:
        raise bad(f"profile: {text!r} is not one of {', '.join(sorted(PROFILE_NAMES))}")
    return text


def check_box(text: str | None) -> str | None:
    """A box name, or None (no box: see portal/enforcer/README.md who owns it then)."""
    if text is None:
        return None
    if not BOX_NAME.fullmatch(text):
        raise bad(f"box: {text!r} is not a box name (1-64 of A-Z a-z 0-9 . _ -)")
    return text


_SELECT = "SELECT nasname, secret, coa_port, profile, box FROM nas"


def _row(r: dict[str, object]) -> NasRow:
    return NasRow(str(r["nasname"]), str(r["secret"]), int(str(r["coa_port"])),
                  str(r["profile"]), str(r["box"]) if r["box"] else None)


async def list_nas() -> list[NasRow]:
    return [_row(r) for r in await db.fetch(_SELECT + " ORDER BY nasname")]


async def add(address: str, secret: str, coa_port: int | str = 3799,
              profile: str = "mikrotik", box: str | None = None) -> NasRow:
    row = NasRow(check_address(address), check_secret(secret), check_coa_port(coa_port),
                 check_profile(profile), check_box(box))

    async def write(tx: BaseDBAsyncClient) -> None:
        if await db.fetch("SELECT id FROM nas WHERE nasname = ?", [row.address]):
            raise PortalError("nas_exists", f"NAS {row.address} already exists: "
                                            f"use `ispedge nas set`")
        await db.execute(
            "INSERT INTO nas (nasname, shortname, type, secret, coa_port, profile, box,"
            " description) VALUES (?, ?, 'other', ?, ?, ?, ?, 'ispedge')",
            [row.address, row.address[:32], row.secret, row.coa_port, row.profile, row.box])

    await transaction(write)
    return row


async def update(address: str, *, secret: str | None = None, coa_port: int | str | None = None,
                 profile: str | None = None, box: str | None = None,
                 clear_box: bool = False) -> NasRow:
    """Change the given values; clear_box: the NAS has no box any more."""
    address = check_address(address)
    changes: dict[str, object] = {}
    if secret is not None:
        changes["secret"] = check_secret(secret)
    if coa_port is not None:
        changes["coa_port"] = check_coa_port(coa_port)
    if profile is not None:
        changes["profile"] = check_profile(profile)
    if box is not None and clear_box:
        raise bad("give either --box NAME or --no-box")
    if box is not None:
        changes["box"] = check_box(box)
    if clear_box:
        changes["box"] = None
    if not changes:
        raise bad("nothing to change: give --secret, --coa-port, --profile, --box or --no-box")

    async def write(tx: BaseDBAsyncClient) -> NasRow:
        sets = ", ".join(f"{k} = ?" for k in changes)
        if not await db.execute(f"UPDATE nas SET {sets} WHERE nasname = ?",
                                [*changes.values(), address]):
            raise NotFound("nas_not_found", f"no NAS {address}: `ispedge nas list`")
        return _row((await db.fetch(_SELECT + " WHERE nasname = ?", [address]))[0])

    return await transaction(write)


async def remove(address: str) -> None:
    address = check_address(address)

    async def write(tx: BaseDBAsyncClient) -> None:
        if not await db.execute("DELETE FROM nas WHERE nasname = ?", [address]):
            raise NotFound("nas_not_found", f"no NAS {address}: `ispedge nas list`")

    await transaction(write)
