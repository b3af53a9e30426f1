"""Logging in and out: the customer's and the operator's use cases.

The handlers read the request and call these. Every attempt is counted before the
password is checked (portal/core/auth/lockout.py: one atomic step in the
database), so concurrent guesses cannot race past the lockout; a correct password
un-counts it in the same transaction as the audit row. A database that is busy or
down fails the login closed (503), never skips the check.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.core import operators
from portal.core.auth import lockout, tokens, totp
from portal.core.auth.keys import KeyRing
from portal.errors import Forbidden, PortalError, TooManyRequests, Unauthorized
from portal.store import journal, radius
from portal.store.models import Operator, RevokedToken, Subscriber
from portal.store.tx import transaction

log = logging.getLogger(__name__)
T = TypeVar("T")

# Compared against when the username does not exist, so unknown and wrong
# password take the same path and time.
_DUMMY = "x" * 32
# Long enough to scan a QR code and type one code; short because it rests on the
# password alone.
ENROLL_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Issued:
    token: str
    claims: tokens.Claims


async def customer_login(username: str, password: str, ip: str, now: datetime,
                         ring: KeyRing, token_days: int,
                         policy: lockout.Policy = lockout.Policy()) -> Issued:
    if len(username) > 64 or len(password) > 128:
        raise Unauthorized("invalid_credentials", "wrong username or password")

    async def attempt() -> Issued:
        counted = await count_attempt("customer", ip, username, now, policy)
        stored = await radius.password_of(username)
        ok = hmac.compare_digest((stored or _DUMMY).encode(), password.encode()) \
            and stored is not None
        sub = await Subscriber.get_or_none(username=username) if ok else None
        if sub is None:
            raise _failed(counted, now, policy)
        if sub.status != "active":
            # Said only after the right password: a wrong one gets the same answer
            # whether the account exists, is active or is disabled (no enumeration).
            # The attempt stays counted, as a failure.
            raise Forbidden("account_disabled", "your account is disabled; please contact"
                            " your internet provider")
        token, claims = tokens.issue(ring, username, token_days, now, epoch=sub.token_epoch)

        async def done(tx: BaseDBAsyncClient) -> None:
            await lockout.succeeded(counted, now)
            await journal.audit(tx, f"customer:{username}", "login", username, ip=ip)

        await transaction(done)
        return Issued(token, claims)

    return await fail_closed(attempt())


async def operator_login(username: str, password: str, ip: str, now: datetime,
                         ring: KeyRing, token_days: int,
                         policy: lockout.Policy = lockout.Policy(), code: str = "",
                         require_totp_for_admins: bool = False
                         ) -> tuple[Issued, Operator]:
    """Password, then (when the operator has enrolled one) a TOTP code. A wrong or reused
    code is a failed attempt like a wrong password, with the same answer, so it counts
    toward the lockout and tells a guesser nothing about the password.

    With `require_totp_for_admins`, an admin with no second factor yet gets an
    enrollment-only token (type tokens.OPERATOR_ENROLL, ENROLL_LIFETIME): the
    "configure OTP at first sign-in" step, instead of being sent to the shell."""
    if len(username) > 64 or len(password) > 128 or len(code) > 16:
        raise Unauthorized("invalid_credentials", "wrong username, password or code")

    async def attempt() -> tuple[Issued, Operator]:
        operators.admit_login()
        counted = await count_attempt("operator", ip, username, now, policy)
        op = await operators.authenticate(username, password)
        if op is None:
            raise _failed(counted, now, policy, with_code=True)
        step = None
        if op.totp_secret:
            step = totp.accepted_step(op.totp_secret, code, op.totp_last_step,
                                      now.timestamp())
            if step is None:
                raise _failed(counted, now, policy, with_code=True)
        enroll_only = not op.totp_secret and require_totp_for_admins and op.role == "admin"
        if enroll_only:
            # Said only after the right password. The admin gets a short token good
            # for nothing but turning on a second factor (second_factor.begin and
            # confirm; every other operator route refuses its type); the console
            # session starts only once a code from the new app is confirmed.
            token, claims = tokens.issue(ring, op.username, 0, now,
                                         token_type=tokens.OPERATOR_ENROLL,
                                         epoch=op.token_epoch, lifetime=ENROLL_LIFETIME)
        else:
            token, claims = tokens.issue(ring, op.username, token_days, now,
                                         token_type="operator", epoch=op.token_epoch)

        async def done(tx: BaseDBAsyncClient) -> bool:
            if step is not None:
                # Conditional: of two logins racing with one code, only one moves it.
                if not await operators.spend_step(op.id, step):
                    return False
            await lockout.succeeded(counted, now)
            await journal.audit(tx, f"operator:{op.username}", "operator.login", None, ip=ip,
                                totp=step is not None, **({"enroll_only": True}
                                                          if enroll_only else {}))
            return True

        if not await transaction(done):
            raise _failed(counted, now, policy, with_code=True)
        return Issued(token, claims), op

    return await fail_closed(attempt())


async def logout(claims: tokens.Claims, now: datetime) -> None:
    async def revoke(tx: BaseDBAsyncClient) -> None:
        if not await RevokedToken.filter(jti=claims.jti).using_db(tx).exists():
            await RevokedToken.create(jti=claims.jti, username=claims.username,
                                      expires_at=claims.expires_at, using_db=tx)
        # Revocations of expired tokens protect nothing any more.
        await RevokedToken.filter(expires_at__lt=now).using_db(tx).delete()

    await transaction(revoke)


async def count_attempt(kind: str, ip: str, username: str, now: datetime,
                 policy: lockout.Policy) -> lockout.Attempt:
    try:
        return await lockout.begin(kind, ip, username, now, policy)
    except lockout.Refused as refused:
        raise locked(refused.until, now) from None


async def fail_closed(step: Awaitable[T]) -> T:
    """A login whose database work fails for any other reason than a rule answers 503:
    the check is never skipped (tx.Busy is already a 503 PortalError)."""
    try:
        return await step
    except PortalError:
        raise
    except Exception:
        log.exception("login failed closed: the database did not answer")
        raise PortalError("login_unavailable", "logging in is not possible right now; "
                          "please try again in a moment", 503, retry_after=5) from None


def _failed(counted: lockout.Attempt, now: datetime, policy: lockout.Policy,
            with_code: bool = False) -> PortalError:
    """The attempt stays counted; 429 if it reached a tier, else 401."""
    until = counted.until_if_failed(now, policy)
    if until is not None:
        return locked(until, now)
    return Unauthorized("invalid_credentials", "wrong username, password or code" if with_code
                        else "wrong username or password")


def locked(until: datetime, now: datetime) -> TooManyRequests:
    seconds = lockout.retry_after_seconds(until, now)
    return TooManyRequests(
        "locked_out", f"too many failed logins; try again in {_human(seconds)}",
        retry_after=seconds,
    )


def _human(seconds: int) -> str:
    if seconds >= 3600:
        return f"{(seconds + 3599) // 3600} hour(s)"
    if seconds < 60:
        return f"{seconds} second(s)"
    return f"{(seconds + 59) // 60} minute(s)"
