"""Brute-force lockout: the rules (plain functions) and the one atomic step that applies them.

Three rules, each on failures of one kind of login (customer or operator: the two
keep separate counters, so neither can lock the other out):
- tiers on (address, username): 5 failures -> 15 min, 10 -> 1 h, 20 -> 24 h;
- an address-wide limit, high enough for a CGNAT address shared by many
  households: `address_max_failures` within `address_window`;
- a per-account throttle across addresses: once an account has
  `account_max_failures` within `account_window`, an address that has itself
  failed for this account waits `account_slowdown` after its last failure. An
  address with no failure for the account is never slowed by it, so the real
  subscriber from a clean address gets in at once during an attack from many
  addresses (the attacker gets about one guess per fresh address per slowdown).

Every refusal is a time to come back (429 + Retry-After), never a sleep.

Atomicity, across any number of portal processes (`begin`): ONE transaction
counts the failures and inserts this attempt as a failure before the password is
checked; a correct password deletes the row again (`succeeded`). On PostgreSQL the
count+insert is serialized by transaction-scoped advisory locks on the address and
on the username; on SQLite `BEGIN IMMEDIATE` already serializes every writer. A
database that is busy or down raises, so the login fails closed (503).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.config import Config
from portal.store import db
from portal.store.tx import transaction

Tiers = tuple[tuple[int, timedelta, timedelta], ...]

# (failures within the lookback, lookback, block duration), strongest first.
TIERS: Tiers = (
    (20, timedelta(hours=24), timedelta(hours=24)),
    (10, timedelta(hours=24), timedelta(hours=1)),
    (5, timedelta(minutes=15), timedelta(minutes=15)),
)
MEMORY = timedelta(hours=24)
KINDS = ("customer", "operator")


@dataclass(frozen=True)
class Policy:
    tiers: Tiers = TIERS
    address_max_failures: int = 100
    address_window: timedelta = timedelta(minutes=15)
    account_max_failures: int = 10
    account_window: timedelta = timedelta(minutes=15)
    account_slowdown: timedelta = timedelta(minutes=15)

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        section = config.section("lockout")
        return cls(
            address_max_failures=int(section.get("address_max_failures", 100)),
            address_window=timedelta(minutes=float(section.get("address_window_minutes", 15))),
            account_max_failures=int(section.get("account_max_failures", 10)),
            account_window=timedelta(minutes=float(section.get("account_window_minutes", 15))),
            account_slowdown=timedelta(minutes=float(section.get("account_slowdown_minutes",
                                                                  15))),
        )


@dataclass(frozen=True)
class Failures:
    """What the rules need to know about one (kind, address, username), read in one step.

    pair: this address's failures for this username within MEMORY.
    address_nth / account_nth: the Nth most recent failure of the address (any
    username) / of the account (any address) within its window, where N is the
    rule's limit; None when there are fewer than N (the limit is not reached).
    """

    pair: list[datetime] = field(default_factory=list)
    address_nth: datetime | None = None
    account_nth: datetime | None = None


def blocked_until(failures: list[datetime], now: datetime, tiers: Tiers = TIERS
                  ) -> datetime | None:
    """The tiers on (address, username): when it may try again, or None if not blocked.

    A tier applies once `count` failures fall within its lookback; the block runs
    from the failure that reached the count. Repeated failure after a block ends
    reaches the next tier, so the block grows.
    """
    recent = sorted(t for t in failures if now - t <= MEMORY)
    for count, lookback, duration in tiers:
        window = [t for t in recent if now - t <= lookback]
        if len(window) >= count:
            until = window[-1] + duration
            if until > now:
                return until
    return None


def refused_until(failures: Failures, now: datetime, policy: Policy = Policy()
                  ) -> datetime | None:
    """When this attempt may be made, or None if it may be made now: the latest
    of the three rules' answers."""
    answers = [blocked_until(failures.pair, now, policy.tiers)]
    if failures.address_nth is not None:
        # A sliding window: the limit is reached until its Nth newest failure leaves it.
        answers.append(failures.address_nth + policy.address_window)
    if failures.account_nth is not None and failures.pair:
        # The account is under attack and this address is one that failed for it.
        answers.append(max(failures.pair) + policy.account_slowdown)
    later = [t for t in answers if t is not None and t > now]
    return max(later) if later else None


def retry_after_seconds(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds()) + 1)


# --- the atomic step -----------------------------------------------------------

class Refused(Exception):
    """The attempt is refused until `until` (nothing was written)."""

    def __init__(self, until: datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


@dataclass(frozen=True)
class Attempt:
    id: int
    failures: Failures  # as read before this attempt was inserted

    def until_if_failed(self, now: datetime, policy: Policy) -> datetime | None:
        """The tiers on (address, username) once this attempt counts as a failure:
        the answer to the guess that reached a tier is already 429."""
        return blocked_until([*self.failures.pair, now], now, policy.tiers)


_PAIR_SQL = ("SELECT created_at FROM login_failures WHERE ip = ? AND username = ?"
             " AND kind = ? AND created_at >= ?")
_ADDRESS_NTH_SQL = ("SELECT created_at FROM login_failures WHERE ip = ? AND kind = ?"
                    " AND created_at >= ? ORDER BY created_at DESC LIMIT 1 OFFSET ?")
_ACCOUNT_NTH_SQL = ("SELECT created_at FROM login_failures WHERE username = ? AND kind = ?"
                    " AND created_at >= ? ORDER BY created_at DESC LIMIT 1 OFFSET ?")


async def _nth(sql: str, params: list[Any], n: int) -> datetime | None:
    if n <= 0:
        return None
    rows = await db.fetch(sql, [*params, n - 1])
    return db.from_db_time(rows[0]["created_at"]) if rows else None


async def read(kind: str, ip: str, username: str, now: datetime, policy: Policy) -> Failures:
    """The failures the rules read (inside the caller's transaction, if any)."""
    pair = await db.fetch(_PAIR_SQL, [ip, username, kind, db.db_time(now - MEMORY)])
    return Failures(
        pair=[db.from_db_time(r["created_at"]) for r in pair],
        address_nth=await _nth(_ADDRESS_NTH_SQL,
                               [ip, kind, db.db_time(now - policy.address_window)],
                               policy.address_max_failures),
        account_nth=await _nth(_ACCOUNT_NTH_SQL,
                               [username, kind, db.db_time(now - policy.account_window)],
                               policy.account_max_failures),
    )


async def begin(kind: str, ip: str, username: str, now: datetime,
                policy: Policy = Policy()) -> Attempt:
    """Count and record this attempt (as a failure) in ONE transaction, before the
    password is checked. Raises Refused (nothing written) when a rule refuses it."""
    assert kind in KINDS
    username = username[:64]

    async def step(tx: BaseDBAsyncClient) -> Attempt:
        if db.current_dialect() == "postgres":
            # Always the address first, then the account: one order, no deadlock.
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
                             [f"login:{kind}:ip:{ip}"])
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
                             [f"login:{kind}:user:{username}"])
        failures = await read(kind, ip, username, now, policy)
        until = refused_until(failures, now, policy)
        if until is not None:
            raise Refused(until)
        rows = await db.fetch(
            "INSERT INTO login_failures (ip, username, kind, created_at) VALUES (?, ?, ?, ?)"
            " RETURNING id", [ip, username, kind, db.db_time(now)])
        return Attempt(int(rows[0]["id"]), failures)

    return await transaction(step)


async def succeeded(attempt: Attempt, now: datetime) -> None:
    """The password was right: the attempt was not a failure after all. Old rows are
    useless to every rule; they are trimmed here, off the failure path."""
    async def step(tx: BaseDBAsyncClient) -> None:
        await db.execute("DELETE FROM login_failures WHERE id = ?", [attempt.id])
        await db.execute("DELETE FROM login_failures WHERE created_at < ?",
                         [db.db_time(now - MEMORY)])

    await transaction(step)
