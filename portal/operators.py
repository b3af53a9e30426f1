"""Operators: the ISP's staff who answer tickets. Passwords are salted scrypt hashes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from portal import journal
from portal.errors import Conflict, PortalError
from portal.models import Operator

NAME_RE = re.compile(r"^[A-Za-z0-9._@\-]{1,64}$")
# scrypt cost: ~50 ms and 16 MiB per check on the target boxes.
N, R, P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None, n: int = N, r: int = R,
                  p: int = P) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 2**20,
                            dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        again = hash_password(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(again.rsplit("$", 1)[1], digest)


# Verified against when the name is unknown, so both answers take the same time.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


async def add(username: str, password: str) -> Operator:
    if not NAME_RE.fullmatch(username or ""):
        raise PortalError("invalid_username", "operator name: 1-64 letters, digits, . _ @ -")
    if not 10 <= len(password) <= 128 or not password.isprintable():
        raise PortalError("invalid_password", "operator password: 10-128 printable characters")
    try:
        async with in_transaction() as tx:
            op = await Operator.create(username=username, password_hash=hash_password(password),
                                       using_db=tx)
            await journal.audit(tx, "operator:cli", "operator.add", None, operator=username)
    except IntegrityError:
        raise Conflict("duplicate_operator", f"operator {username!r} already exists") from None
    return op


async def authenticate(username: str, password: str) -> Operator | None:
    op = await Operator.get_or_none(username=username) if len(username) <= 64 else None
    # scrypt is CPU work: off the event loop.
    ok = await asyncio.to_thread(verify_password, password,
                                 op.password_hash if op else _DUMMY_HASH)
    return op if ok and op is not None and op.active else None
