"""Logging in and out: the customer's and the operator's use cases.

The handlers read the request and call these; every write (a failure for the
lockout, the audit row, a revoked token) runs in the one transaction helper.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.core import operators
from portal.core.auth import lockout, tokens
from portal.errors import TooManyRequests, Unauthorized
from portal.store import journal, radius
from portal.store.models import Operator, RevokedToken, Subscriber
from portal.store.tx import transaction

# Compared against when the username does not exist, so unknown and wrong
# password take the same path and time.
_DUMMY = "x" * 32


@dataclass(frozen=True)
class Issued:
    token: str
    claims: tokens.Claims


async def customer_login(username: str, password: str, ip: str, now: datetime,
                         key: bytes, token_days: int) -> Issued:
    if len(username) > 64 or len(password) > 128:
        raise Unauthorized("invalid_credentials", "wrong username or password")
    await _refuse_if_locked(ip, now)
    stored = await radius.password_of(username)
    ok = hmac.compare_digest((stored or _DUMMY).encode(), password.encode()) and stored is not None
    sub = await Subscriber.get_or_none(username=username) if ok else None
    if sub is None or sub.status != "active":
        await _failed(ip, username, now)
    token, claims = tokens.issue(key, username, token_days, now)

    async def audit(tx: BaseDBAsyncClient) -> None:
        await journal.audit(tx, f"customer:{username}", "login", username, ip=ip)

    await transaction(audit)
    return Issued(token, claims)


async def operator_login(username: str, password: str, ip: str, now: datetime,
                         key: bytes, token_days: int) -> tuple[Issued, Operator]:
    await _refuse_if_locked(ip, now)
    op = await operators.authenticate(username, password) if len(password) <= 128 else None
    if op is None:
        await _failed(ip, f"operator:{username}"[:64], now)
    assert op is not None
    token, claims = tokens.issue(key, op.username, token_days, now, token_type="operator")

    async def audit(tx: BaseDBAsyncClient) -> None:
        await journal.audit(tx, f"operator:{op.username}", "operator.login", None, ip=ip)

    await transaction(audit)
    return Issued(token, claims), op


async def logout(claims: tokens.Claims, now: datetime) -> None:
    async def revoke(tx: BaseDBAsyncClient) -> None:
        if not await RevokedToken.filter(jti=claims.jti).using_db(tx).exists():
            await RevokedToken.create(jti=claims.jti, username=claims.username,
                                      expires_at=claims.expires_at, using_db=tx)
        # Revocations of expired tokens protect nothing any more.
        await RevokedToken.filter(expires_at__lt=now).using_db(tx).delete()

    await transaction(revoke)


async def _refuse_if_locked(ip: str, now: datetime) -> None:
    until = await lockout.check(ip, now)
    if until is not None:
        raise locked(until, now)


async def _failed(ip: str, username: str, now: datetime) -> None:
    """Record a failed login; raise 429 if it locked the address, else 401."""
    async def record(tx: BaseDBAsyncClient) -> datetime | None:
        return await lockout.record_failure(tx, ip, username, now)

    until = await transaction(record)
    if until is not None:
        raise locked(until, now)
    raise Unauthorized("invalid_credentials", "wrong username or password")


def locked(until: datetime, now: datetime) -> TooManyRequests:
    seconds = max(1, int((until - now).total_seconds()) + 1)
    return TooManyRequests(
        "locked_out", f"too many failed logins from your address; try again in "
        f"{_human(seconds)}", retry_after=seconds,
    )


def _human(seconds: int) -> str:
    if seconds >= 3600:
        return f"{(seconds + 3599) // 3600} hour(s)"
    return f"{(seconds + 59) // 60} minute(s)"
