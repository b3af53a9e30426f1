"""Operators: the ISP's staff who answer tickets. Passwords are salted scrypt hashes.

Roles: `admin` may do everything; `support` answers tickets and reads subscribers
(no action on them). Scope (the reseller an operator belongs to) limits what every
role sees and acts on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from portal.core.auth import totp
from portal.errors import Conflict, Forbidden, NotFound, PortalError, TooManyRequests
from portal.store import db, journal
from portal.store.models import Operator, Reseller
from portal.store.tx import transaction

# The resellers an operator may see: None means every reseller (the ISP's staff).
Scope = frozenset[int] | None

NAME_RE = re.compile(r"^[A-Za-z0-9._@\-]{1,64}$")
ROLES = ("admin", "support")
# What each role may do beyond reading (tickets are every role's work).
ACTIONS = {"admin": frozenset({"tickets", "subscriber.write"}),
           "support": frozenset({"tickets"})}


def may(role: str, action: str) -> bool:
    return action in ACTIONS.get(role, frozenset())


def require(op: Operator, action: str) -> None:
    """403 unless the operator's role allows `action`."""
    if not may(op.role, action):
        raise Forbidden("role_forbidden", f"a {op.role} operator cannot do this")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise PortalError("invalid_role", "role must be admin or support")
    return role


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

# One scrypt at a time per process: each is ~50 ms of a core, and 40 unauthenticated
# operator logins at once in the default thread pool (6 threads here) took both cores
# from the event loop and every subscriber's request with it. Queued logins wait
# instead (the login limiter and the lockout bound how many can queue).
_scrypt_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ispedge-scrypt")


class ScryptBudget:
    """At most `per_s` password checks a second, in bursts of `burst`: an unauthenticated
    flood of operator logins costs at most that much of one core (per_s x ~50 ms),
    whatever addresses it comes from. Past it the login answers 429 + Retry-After and
    the real operator's retry gets in a second later. Staff log in a few times a day.
    (tests/security/test_web_abuse.py: with one slot but no budget, 40 flooders kept a
    core busy and the test client's /me p99 reached 117 ms on the 2-core CI machine.)"""

    def __init__(self, per_s: float = 4.0, burst: float = 10.0) -> None:
        self.per_s, self.burst = per_s, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self, now: float) -> float:
        """0 when a check may run now (and counts it), else the seconds to wait."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_s)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_s


_budget = ScryptBudget()


def admit_login() -> None:
    """Called before a login counts as an attempt (so a refusal here is never a lockout
    failure): 429 + Retry-After when the password-check budget is spent."""
    wait = _budget.take(time.monotonic())
    if wait:
        raise TooManyRequests("login_busy", "too many logins right now: try again in a "
                              "moment", retry_after=max(1, math.ceil(wait)))


async def _scrypt(password: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(
        _scrypt_pool, verify_password, password, stored)


async def add(username: str, password: str, reseller: str | None = None,
              role: str = "admin") -> Operator:
    if not NAME_RE.fullmatch(username or ""):
        raise PortalError("invalid_username", "operator name: 1-64 letters, digits, . _ @ -")
    check_password(password)
    check_role(role)
    owner = None
    if reseller is not None:
        owner = await Reseller.get_or_none(name=reseller)
        if owner is None:
            raise NotFound("no_such_reseller", f"no reseller {reseller!r}")
    password_hash = await asyncio.to_thread(hash_password, password)  # CPU work

    async def write(tx: BaseDBAsyncClient) -> Operator:
        try:
            op = await Operator.create(username=username, password_hash=password_hash,
                                       reseller=owner, role=role, using_db=tx)
        except IntegrityError:
            raise Conflict("duplicate_operator",
                           f"operator {username!r} already exists") from None
        await journal.audit(tx, "operator:cli", "operator.add", None, operator=username,
                            reseller=reseller, role=role)
        return op

    return await transaction(write)


def check_password(password: str) -> str:
    if not 10 <= len(password) <= 128 or not password.isprintable():
        raise PortalError("invalid_password", "operator password: 10-128 printable characters")
    return password


async def _get(username: str) -> Operator:
    op = await Operator.get_or_none(username=username) if len(username) <= 64 else None
    if op is None:
        raise NotFound("no_such_operator", f"no operator {username!r}")
    return op


async def _bump_epoch(username: str) -> None:
    """In the caller's transaction: every token issued to the operator before is refused."""
    await db.execute("UPDATE operators SET token_epoch = token_epoch + 1 WHERE username = ?",
                     [username])


async def set_password(username: str, password: str, actor: str = "operator:cli") -> None:
    check_password(password)
    await _get(username)
    password_hash = await asyncio.to_thread(hash_password, password)  # CPU work

    async def write(tx: BaseDBAsyncClient) -> None:
        await db.execute("UPDATE operators SET password_hash = ? WHERE username = ?",
                         [password_hash, username])
        await _bump_epoch(username)
        await journal.audit(tx, actor, "operator.set_password", None, operator=username)

    await transaction(write)


async def set_active(username: str, active: bool, actor: str = "operator:cli") -> None:
    await _get(username)

    async def write(tx: BaseDBAsyncClient) -> None:
        await db.execute("UPDATE operators SET active = ? WHERE username = ?",
                         [active, username])
        if not active:
            await _bump_epoch(username)
        await journal.audit(tx, actor, "operator.set_active", None, operator=username,
                            active=active)

    await transaction(write)


async def sign_out(username: str, actor: str = "operator:cli") -> None:
    """Sign the operator out everywhere."""
    await _get(username)

    async def write(tx: BaseDBAsyncClient) -> None:
        await _bump_epoch(username)
        await journal.audit(tx, actor, "operator.sign_out", None, operator=username)

    await transaction(write)


async def set_role(username: str, role: str, actor: str = "operator:cli") -> None:
    check_role(role)
    await _get(username)

    async def write(tx: BaseDBAsyncClient) -> None:
        await db.execute("UPDATE operators SET role = ? WHERE username = ?", [role, username])
        await _bump_epoch(username)  # tokens carry no role, but a session should restart
        await journal.audit(tx, actor, "operator.set_role", None, operator=username, role=role)

    await transaction(write)


async def spend_step(operator_id: int, step: int) -> bool:
    """In the caller's transaction: record `step` as the operator's last accepted TOTP
    step, unless a code of that step (or a later one) was accepted already. Conditional,
    so of two requests racing with one code only one wins."""
    won = await db.fetch("UPDATE operators SET totp_last_step = ? WHERE id = ?"
                         " AND totp_last_step < ? RETURNING id", [step, operator_id, step])
    return bool(won)


async def begin_totp(op: Operator, actor: str, current_step: int | None = None
                     ) -> str | None:
    """The console's first step: a new secret, kept pending (a login does not ask for it)
    until the operator's app proves it holds it (enroll_totp with a code). An operator
    who has a second factor already proves it first: `current_step` is the step of a
    valid current code, spent here (None when it was spent already: a reused code)."""
    secret = totp.new_secret()

    async def write(tx: BaseDBAsyncClient) -> bool:
        if current_step is not None and not await spend_step(op.id, current_step):
            return False
        await db.execute("UPDATE operators SET totp_pending = ? WHERE id = ?",
                         [secret, op.id])
        await journal.audit(tx, actor, "operator.begin_totp", None, operator=op.username,
                            replacing=bool(op.totp_secret))
        return True

    return secret if await transaction(write) else None


async def enroll_totp(username: str, actor: str = "operator:cli", code: str | None = None,
                      now_s: float = 0.0) -> str | None:
    """Turn the second factor on, replacing any: from now on a login needs a code, and
    every token issued before is refused. Returns the secret (totp.provisioning_uri
    makes the authenticator's URI).

    From the shell (`code` None): a new secret, on at once; the command prints it.
    From the console: the pending secret begin_totp showed, on only when `code` (at
    `now_s`) is valid for it, so an operator cannot lock themself out with a secret
    their app never took; its step counts as used. None when the code is not valid."""
    await _get(username)
    fresh = totp.new_secret() if code is None else ""

    async def write(tx: BaseDBAsyncClient) -> str | None:
        secret, step = fresh, 0
        if code is not None:
            rows = await db.fetch("SELECT totp_pending FROM operators WHERE username = ?",
                                  [username])
            secret = rows[0]["totp_pending"]
            found = totp.accepted_step(secret, code, 0, now_s)
            if found is None:
                return None
            step = found
        await db.execute("UPDATE operators SET totp_secret = ?, totp_last_step = ?,"
                         " totp_pending = '' WHERE username = ?", [secret, step, username])
        await _bump_epoch(username)
        await journal.audit(tx, actor, "operator.enroll_totp", None, operator=username,
                            confirmed=code is not None)
        return secret

    return await transaction(write)


async def reset_totp(username: str, actor: str = "operator:cli") -> None:
    """Remove the second factor (a lost phone): password only until enrolled again."""
    await _get(username)

    async def write(tx: BaseDBAsyncClient) -> None:
        await db.execute("UPDATE operators SET totp_secret = '', totp_last_step = 0,"
                         " totp_pending = '' WHERE username = ?", [username])
        await _bump_epoch(username)
        await journal.audit(tx, actor, "operator.reset_totp", None, operator=username)

    await transaction(write)


async def authenticate(username: str, password: str) -> Operator | None:
    op = await Operator.get_or_none(username=username) if len(username) <= 64 else None
    # scrypt is CPU work: off the event loop, one at a time.
    ok = await _scrypt(password, op.password_hash if op else _DUMMY_HASH)
    return op if ok and op is not None and op.active else None


async def scope_of(op: Operator) -> Scope:
    """The reseller ids whose subscribers this operator serves: its own and every
    sub-reseller below it, or None for the ISP's staff."""
    if op.reseller_id is None:
        return None
    children: dict[int, list[int]] = {}
    for rid, parent in await Reseller.all().values_list("id", "parent_id"):
        if parent is not None:
            children.setdefault(parent, []).append(rid)
    found, todo = set(), [op.reseller_id]
    while todo:
        rid = todo.pop()
        if rid not in found:
            found.add(rid)
            todo.extend(children.get(rid, []))
    return frozenset(found)
