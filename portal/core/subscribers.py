"""Operator actions on subscribers, resellers and plans: plain async functions.

Each one validates first, then writes everything (business rows, FreeRADIUS rows,
journal, audit) in one transaction, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from portal.core import wallet
from portal.core.billing import lines
from portal.core.billing.invoices import Line, issue
from portal.errors import Conflict, NotFound, PortalError
from portal.speed import effective
from portal.store import db, journal, radius
from portal.store.models import FupTier, Plan, Reseller, Subscriber
from portal.store.tx import transaction

# PPPoE usernames: printable, no spaces or quotes (they end up in RADIUS and logs).
USERNAME_RE = re.compile(r"^[A-Za-z0-9._@+\-]{1,64}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
STATUSES = ("active", "disabled")


def check_username(username: str) -> str:
    if not USERNAME_RE.fullmatch(username or ""):
        raise PortalError(
            "invalid_username",
            "username must be 1-64 characters: letters, digits and . _ @ + -",
        )
    return username


def check_password(password: str) -> str:
    if not password or len(password) > 128 or not password.isprintable():
        raise PortalError("invalid_password", "password must be 1-128 printable characters")
    return password


async def get_reseller(name: str) -> Reseller:
    reseller = await Reseller.get_or_none(name=name)
    if reseller is None:
        raise NotFound("unknown_reseller", f"no reseller named {name!r}")
    return reseller


async def add_reseller(name: str, parent: str | None = None, company_name: str = "") -> Reseller:
    if not re.fullmatch(r"[a-z0-9][a-z0-9\-]{0,63}", name or ""):
        raise PortalError("invalid_name", "reseller name: lowercase letters, digits and -")
    parent_row = await get_reseller(parent) if parent else None

    async def add(tx: BaseDBAsyncClient) -> Reseller:
        try:
            return await Reseller.create(
                name=name, parent=parent_row, company_name=company_name or name, using_db=tx
            )
        except IntegrityError:
            raise Conflict("duplicate_reseller", f"reseller {name!r} already exists") from None

    return await transaction(add)


@dataclass(frozen=True)
class TierSpec:
    period: str
    tier: int
    threshold_bytes: int
    down_kbps: int
    up_kbps: int


def parse_tier(text: str) -> TierSpec:
    """'daily:1:5GB:2000/1000' -> past 5 GB a day, 2000 kbps down / 1000 up."""
    try:
        period, tier, threshold, speeds = text.split(":")
        down, up = speeds.split("/")
        spec = TierSpec(period, int(tier), parse_bytes(threshold), int(down), int(up))
        if not (0 < spec.down_kbps <= MAX_KBPS and 0 < spec.up_kbps <= MAX_KBPS):
            raise ValueError("speed out of range")
    except (ValueError, TypeError):
        raise PortalError(
            "invalid_tier", f"bad FUP tier {text!r}: use period:tier:threshold:down/up, "
            "e.g. monthly:1:200GB:10000/5000"
        ) from None
    if spec.period not in ("daily", "monthly") or spec.tier not in (1, 2, 3):
        raise PortalError("invalid_tier", "FUP period is daily or monthly; tier is 1, 2 or 3")
    if spec.threshold_bytes <= 0 or spec.down_kbps <= 0 or spec.up_kbps <= 0:
        raise PortalError("invalid_tier", "FUP threshold and speeds must be positive")
    return spec


# Bounds of plan values: a byte count fits a BIGINT with room to add a month's
# usage to it; a speed fits an INTEGER (and 2 Tbit/s is beyond any access line).
MAX_BYTES = 10**18
MAX_KBPS = 2_000_000_000
MAX_PERIOD_DAYS = 3660


def parse_bytes(text: str) -> int:
    """'200GB' -> 200 * 10**9; ValueError for anything but digits and a unit."""
    units = {"TB": 10**12, "GB": 10**9, "MB": 10**6, "KB": 10**3, "B": 1}
    t = text.strip().upper()
    factor = 1
    for suffix, size in units.items():
        if t.endswith(suffix):
            t, factor = t[: -len(suffix)], size
            break
    if not (t.isascii() and t.isdigit()) or len(t) > 19:
        raise ValueError(f"not a size: {text[:40]!r}")
    value = int(t) * factor
    if value > MAX_BYTES:
        raise ValueError(f"size too large: {text[:40]!r}")
    return value


async def add_plan(
    reseller: str, name: str, down_kbps: int, up_kbps: int, price_cents: int,
    period_days: int = 30, quota_bytes: int = 0, offered: bool = True,
    tiers: list[TierSpec] | None = None,
) -> Plan:
    owner = await get_reseller(reseller)
    if not name or len(name) > 64:
        raise PortalError("invalid_name", "plan name must be 1-64 characters")
    if not (0 < down_kbps <= MAX_KBPS and 0 < up_kbps <= MAX_KBPS):
        raise PortalError("invalid_speed", f"plan speeds must be 1-{MAX_KBPS} kbps")
    if price_cents < 0 or period_days <= 0 or quota_bytes < 0:
        raise PortalError("invalid_price", "price, period and quota cannot be negative")
    if period_days > MAX_PERIOD_DAYS or quota_bytes > MAX_BYTES:
        raise PortalError("invalid_period", f"period is at most {MAX_PERIOD_DAYS} days, quota "
                                            "at most 1000000TB")

    async def add(tx: BaseDBAsyncClient) -> Plan:
        if await Plan.filter(reseller=owner, name=name).using_db(tx).exists():
            raise Conflict("duplicate_plan", f"plan {name!r} already exists for {reseller}")
        plan = await Plan.create(
            reseller=owner, name=name, down_kbps=down_kbps, up_kbps=up_kbps,
            price_cents=price_cents, period_days=period_days, quota_bytes=quota_bytes,
            offered=offered, using_db=tx,
        )
        for spec in tiers or []:
            await FupTier.create(plan=plan, **spec.__dict__, using_db=tx)
        return plan

    return await transaction(add)


async def get_plan(reseller: Reseller, name_or_id: str) -> Plan:
    query = Plan.filter(reseller=reseller)
    plan = await (query.filter(id=int(name_or_id)) if name_or_id.isdigit()
                  else query.filter(name=name_or_id)).first()
    if plan is None:
        raise NotFound("unknown_plan", f"no plan {name_or_id!r} for reseller {reseller.name}")
    return plan


async def get_subscriber(username: str) -> Subscriber:
    sub = await Subscriber.get_or_none(username=username)
    if sub is None:
        raise NotFound("unknown_subscriber", f"no subscriber {username!r}")
    return sub


async def add_subscriber(
    username: str, password: str, reseller: str, plan: str, *,
    full_name: str = "", email: str = "", phone: str = "", address: str = "",
    now: datetime | None = None, actor: str = "operator:cli",
) -> Subscriber:
    check_username(username)
    check_password(password)
    owner = await get_reseller(reseller)
    plan_row = await get_plan(owner, plan)
    at = now or datetime.now(UTC)

    async def add(tx: BaseDBAsyncClient) -> Subscriber:
        if await Subscriber.filter(username=username).using_db(tx).exists():
            raise Conflict("duplicate_username", f"username {username!r} already exists")
        try:
            sub = await Subscriber.create(
                username=username, reseller=owner, plan=plan_row, cycle_start=at,
                expires_at=at + timedelta(days=plan_row.period_days), full_name=full_name,
                email=email, phone=phone, address=address, using_db=tx,
            )
        except IntegrityError:
            raise Conflict("duplicate_username", f"username {username!r} already exists") from None
        await radius.set_password(tx, username, password)
        await effective.write(tx, username, at, "subscriber", action="created",
                              plan_id=plan_row.id)
        await journal.audit(tx, actor, "subscriber.add", username, plan=plan_row.name)
        return sub

    return await transaction(add)


async def set_password(username: str, password: str, actor: str = "operator:cli") -> None:
    check_password(password)
    await get_subscriber(username)

    async def change(tx: BaseDBAsyncClient) -> None:
        await radius.set_password(tx, username, password)
        await _bump_epoch(username)  # every token issued before is refused
        await journal.audit(tx, actor, "subscriber.set_password", username)

    await transaction(change, lock=username)


async def sign_out(username: str, actor: str = "operator:cli") -> None:
    """Sign the subscriber out everywhere: every token issued so far is refused."""
    await get_subscriber(username)

    async def change(tx: BaseDBAsyncClient) -> None:
        await _bump_epoch(username)
        await journal.audit(tx, actor, "subscriber.sign_out", username)

    await transaction(change, lock=username)


async def _bump_epoch(username: str) -> None:
    """In the caller's transaction: tokens carry the epoch they were issued at."""
    await db.execute("UPDATE subscribers SET token_epoch = token_epoch + 1 WHERE username = ?",
                     [username])


async def set_plan(username: str, plan: str, *, actor: str = "operator:cli",
                   now: datetime | None = None) -> Subscriber:
    """The operator moves a subscriber to another plan (no charge): radreply gets the
    effective speed under the new plan, a FUP tier included."""

    async def change(tx: BaseDBAsyncClient) -> Subscriber:
        sub = await _locked(tx, username)
        plan_row = await get_plan(await sub.reseller, plan)
        sub.plan = plan_row
        await sub.save(using_db=tx, update_fields=["plan_id"])
        await effective.write(tx, username, now or datetime.now(UTC), "plan",
                              plan_id=plan_row.id, down_kbps=plan_row.down_kbps,
                              up_kbps=plan_row.up_kbps)
        await journal.audit(tx, actor, "subscriber.set_plan", username, plan=plan_row.name)
        return sub

    return await transaction(change, lock=username)


async def set_status(username: str, status: str, actor: str = "operator:cli",
                     now: datetime | None = None) -> None:
    if status not in STATUSES:
        raise PortalError("invalid_status", f"status must be one of {', '.join(STATUSES)}")

    async def change(tx: BaseDBAsyncClient) -> None:
        sub = await _locked(tx, username)
        sub.status = status
        await sub.save(using_db=tx, update_fields=["status"])
        if status != "active":
            await _bump_epoch(username)  # enabling again does not bring old tokens back
        await radius.set_enabled(tx, username, status == "active")
        await effective.write(tx, username, now or datetime.now(UTC), "status", status=status)
        await journal.audit(tx, actor, "subscriber.set_status", username, status=status)

    await transaction(change, lock=username)


async def _locked(tx: BaseDBAsyncClient, username: str) -> Subscriber:
    """The subscriber read inside the use case's transaction (locked on PostgreSQL)."""
    sub = await Subscriber.filter(username=username).using_db(tx).first()
    if sub is None:
        raise NotFound("unknown_subscriber", f"no subscriber {username!r}")
    return sub


async def credit(
    username: str, amount_cents: int, reference: str = "", actor: str = "operator:cli"
) -> int:
    """Operator credit to the wallet; returns the new balance."""
    if amount_cents <= 0:
        raise PortalError("invalid_amount", "credit amount must be positive")

    async def add(tx: BaseDBAsyncClient) -> int:
        sub = await _locked(tx, username)
        reseller = await Reseller.get(id=sub.reseller_id, using_db=tx)
        entry = await wallet.credit(tx, sub.id, amount_cents, "credit", reference, actor)
        # Money received gets a receipt (no tax: the tax is on what it later buys).
        receipt = await issue(tx, sub, reseller, "receipt", [Line(
            lines.wallet_credit(reference), amount_cents)],
            datetime.now(UTC))
        await wallet.set_reference(tx, entry.id, receipt.number)
        await journal.record(tx, username, "wallet", balance_cents=entry.balance_after_cents)
        await journal.audit(tx, actor, "wallet.credit", username, amount_cents=amount_cents)
        return entry.balance_after_cents

    return await transaction(add, lock=username)
