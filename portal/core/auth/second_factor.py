"""Two-step sign-in turned on from the operator console (the shell's way is
`ispedge operator enroll-totp`; both end in operators.enroll_totp).

1. `begin`: the server makes a secret and keeps it pending; the console shows it as
   a QR code and as text. An operator who has a second factor already must give a
   valid current code first (a stolen console token alone cannot swap it).
2. `confirm`: the operator types the code their app now shows; only a valid one
   turns the pending secret on. Every token issued before is refused from then on;
   the console's own session gets a new token.

Every code typed here is counted like a login attempt (portal/core/auth/lockout.py,
operator kind, the operator's name and address): guessing codes through a console
session runs into the same lockout as guessing them at the login.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from portal.core import operators
from portal.core.auth import lockout, tokens, totp
from portal.core.auth.keys import KeyRing
from portal.core.auth.login import Issued, count_attempt, fail_closed, locked
from portal.errors import Conflict, PortalError
from portal.store.models import Operator

T = TypeVar("T")


@dataclass(frozen=True)
class Pending:
    secret: str
    uri: str  # otpauth://, what the QR code holds


def wrong_code() -> PortalError:
    # 422, not 401: the console's session is fine, only the code is not.
    return PortalError("invalid_code", "that code is not valid (or was used already): type "
                       "the 6 digits your authenticator app shows now", 422)


async def _counted(op: Operator, ip: str, now: datetime, policy: lockout.Policy,
                   check: Callable[[], Awaitable[T | None]]) -> T:
    """Run `check` as one counted attempt: None is a failure (429 once it reaches a
    lockout tier), anything else un-counts it."""
    async def attempt() -> T:
        counted = await count_attempt("operator", ip, op.username, now, policy)
        result = await check()
        if result is None:
            until = counted.until_if_failed(now, policy)
            raise locked(until, now) if until is not None else wrong_code()
        await lockout.succeeded(counted, now)
        return result

    return await fail_closed(attempt())


async def begin(op: Operator, code: str, ip: str, now: datetime,
                policy: lockout.Policy = lockout.Policy()) -> Pending:
    actor = f"operator:{op.username}"
    if not op.totp_secret:
        secret = await operators.begin_totp(op, actor)
        assert secret is not None  # nothing to spend, nothing to refuse
        return Pending(secret, totp.provisioning_uri(secret, op.username))

    if not code.strip():
        raise PortalError("code_required", "type the code your current authenticator app "
                          "shows: it proves the app is yours before it is replaced", 422)

    async def check() -> str | None:
        step = totp.accepted_step(op.totp_secret, code, op.totp_last_step, now.timestamp())
        return None if step is None else await operators.begin_totp(op, actor, step)

    secret = await _counted(op, ip, now, policy, check)
    return Pending(secret, totp.provisioning_uri(secret, op.username))


async def confirm(op: Operator, code: str, ip: str, now: datetime, ring: KeyRing,
                  token_days: int, policy: lockout.Policy = lockout.Policy()) -> Issued:
    if not op.totp_pending:
        raise Conflict("totp_not_started", "start again: no new secret is waiting for a code")

    async def check() -> str | None:
        return await operators.enroll_totp(op.username, f"operator:{op.username}", code,
                                           now.timestamp())

    await _counted(op, ip, now, policy, check)
    # enroll_totp moved the epoch on (every other session is signed out): this one
    # goes on with a token of the new epoch.
    await op.refresh_from_db(fields=["token_epoch"])
    token, claims = tokens.issue(ring, op.username, token_days, now, token_type="operator",
                                 epoch=op.token_epoch)
    return Issued(token, claims)
