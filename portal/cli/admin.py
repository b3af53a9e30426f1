"""Operator commands on the database, resellers, plans and subscribers."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from portal.cli.registry import command, emit, with_db
from portal.config import Config
from portal.errors import PortalError
from portal.store import migrations

# --- db --------------------------------------------------------------------

@command("db upgrade")
async def db_upgrade(args: argparse.Namespace, config: Config) -> int:
    async def run() -> int:
        names = await migrations.upgrade()
        for name in names:
            print(f"applied {name}")
        if not names:
            print("schema is up to date")
        return 0

    return await with_db(config, run, check_schema=False)


# --- reseller --------------------------------------------------------------

@command("reseller add")
async def reseller_add(args: argparse.Namespace, config: Config) -> int:
    from portal.core import subscribers

    async def run() -> int:
        r = await subscribers.add_reseller(args.name, args.parent, args.company or "")
        print(f"reseller {r.name} added (id {r.id})")
        return 0

    return await with_db(config, run)


@command("reseller brand")
async def reseller_brand(args: argparse.Namespace, config: Config) -> int:
    from portal.core import resellers

    logo = await asyncio.to_thread(Path(args.logo).read_bytes) if args.logo is not None \
        else None

    async def run() -> int:
        r = await resellers.brand(
            args.name, company_name=args.company, tagline=args.tagline,
            footer_text=args.footer,
            primary_color=args.color, custom_domain=args.domain, registration=args.registration,
            logo=logo, logo_filename=args.logo,
        )
        print(f"reseller {r.name} branding updated")
        return 0

    return await with_db(config, run)


@command("reseller set")
async def reseller_set(args: argparse.Namespace, config: Config) -> int:
    from portal.core import resellers

    async def run() -> int:
        r = await resellers.configure(
            args.name, allow_plan_change=args.allow_plan_change,
            allow_downgrade_refund=args.downgrade_refund, price_per_gb=args.price_per_gb,
            parental_enabled=args.parental, tax_rate=args.tax_rate, currency=args.currency,
            allow_self_renewal=args.self_renewal,
            payment_instructions=args.payment_instructions,
            payment_contact=args.payment_contact,
        )
        if getattr(args, "language", None) is not None:
            from portal.core import language

            await language.set_reseller_default(
                r.name, None if args.language == "none" else args.language)
        print(f"reseller {r.name} settings updated")
        return 0

    return await with_db(config, run)


# --- plan --------------------------------------------------------------------

@command("plan add")
async def plan_add(args: argparse.Namespace, config: Config) -> int:
    from portal.core import money, subscribers

    async def run() -> int:
        currency = (await subscribers.get_reseller(args.reseller)).currency
        tiers = [subscribers.parse_tier(t) for t in args.tier or []]
        try:
            quota = subscribers.parse_bytes(args.quota) if args.quota is not None else 0
        except ValueError:
            raise PortalError("invalid_quota",
                              f"bad quota {args.quota[:40]!r}: e.g. 100GB") from None
        plan = await subscribers.add_plan(
            args.reseller, args.name, args.down, args.up,
            money.parse_amount(args.price, allow_zero=True, currency=currency),
            args.period_days, quota,
            not args.hidden, tiers,
        )
        print(f"plan {plan.name} added (id {plan.id})")
        return 0

    return await with_db(config, run)


@command("plan list")
async def plan_list(args: argparse.Namespace, config: Config) -> int:
    from portal.core import money
    from portal.store.models import Plan

    async def run() -> int:
        query = Plan.all().prefetch_related("reseller", "fup_tiers").order_by("id")
        if args.reseller:
            query = query.filter(reseller__name=args.reseller)
        rows = []
        for p in await query:
            tiers = ", ".join(f"{t.period}:{t.tier}:{t.threshold_bytes}:{t.down_kbps}/{t.up_kbps}"
                              for t in p.fup_tiers)
            rows.append({"id": p.id, "reseller": p.reseller.name, "name": p.name,
                         "down_kbps": p.down_kbps, "up_kbps": p.up_kbps,
                         "price": money.fmt(p.price_cents, p.reseller.currency),
                         "period_days": p.period_days,
                         "quota_bytes": p.quota_bytes, "offered": p.offered,
                         "fup_tiers": tiers})
        emit(rows, args.json)
        return 0

    return await with_db(config, run)


# --- subscriber ----------------------------------------------------------------

@command("subscriber add")
async def subscriber_add(args: argparse.Namespace, config: Config) -> int:
    from portal.core import subscribers

    async def run() -> int:
        sub = await subscribers.add_subscriber(
            args.username, args.password, args.reseller, args.plan,
            full_name=args.name or "", email=args.email or "",
            phone=args.phone or "", address=args.address or "",
        )
        print(f"subscriber {sub.username} added (expires {sub.expires_at:%Y-%m-%d})")
        return 0

    return await with_db(config, run)


@command("subscriber set-password")
async def subscriber_set_password(args: argparse.Namespace, config: Config) -> int:
    from portal.core import subscribers

    async def run() -> int:
        await subscribers.set_password(args.username, args.password)
        print(f"password of {args.username} changed")
        return 0

    return await with_db(config, run)


@command("subscriber sign-out")
async def subscriber_sign_out(args: argparse.Namespace, config: Config) -> int:
    from portal.core import subscribers

    async def run() -> int:
        await subscribers.sign_out(args.username)
        print(f"{args.username} is signed out everywhere (every earlier token is refused)")
        return 0

    return await with_db(config, run)


@command("subscriber set-plan")
async def subscriber_set_plan(args: argparse.Namespace, config: Config) -> int:
    from portal.core import subscribers

    async def run() -> int:
        await subscribers.set_plan(args.username, args.plan)
        print(f"{args.username} is now on plan {args.plan}")
        return 0

    return await with_db(config, run)


@command("subscriber set-status")
async def subscriber_set_status(args: argparse.Namespace, config: Config) -> int:
    from portal.core import subscribers

    async def run() -> int:
        await subscribers.set_status(args.username, args.status)
        print(f"{args.username} is now {args.status}")
        return 0

    return await with_db(config, run)


@command("subscriber renew")
async def subscriber_renew(args: argparse.Namespace, config: Config) -> int:
    from datetime import UTC, datetime

    from portal.core import renewal
    from portal.core.money import fmt

    async def run() -> int:
        paid_by = "cash" if args.paid else "free" if args.free else "wallet"
        result, _ = await renewal.renew_username(
            args.username, datetime.now(UTC), paid_by=paid_by,
            reference=args.paid or args.free or "", days=args.days)
        r = result["renewal"]
        when = "next cycle paid" if r["next_cycle_paid"] else "renewed now"
        print(f"{args.username} {when}: {r['starts_at'][:16]} to {r['expires_at'][:16]} UTC,"
              f" {r['paid_by']} {fmt(r['amount_cents'], result['currency'])} {result['currency']}"
              + (f", invoice {result['invoice']['number']}" if result["invoice"] else "")
              + (f", receipt {result['receipt']['number']}" if result["receipt"] else ""))
        return 0

    return await with_db(config, run)


@command("subscriber credit")
async def subscriber_credit(args: argparse.Namespace, config: Config) -> int:
    from portal.core import money, subscribers

    async def run() -> int:
        currency = (await (await subscribers.get_subscriber(args.username)).reseller).currency
        balance = await subscribers.credit(
            args.username, money.parse_amount(args.amount, currency=currency),
            args.reference or ""
        )
        print(f"credited {args.username}; balance now {money.fmt(balance, currency)}"
              f" {currency}")
        return 0

    return await with_db(config, run)


@command("subscriber show")
async def subscriber_show(args: argparse.Namespace, config: Config) -> int:
    from portal.core import money, subscribers

    async def run() -> int:
        sub = await subscribers.get_subscriber(args.username)
        plan, reseller = await sub.plan, await sub.reseller
        emit({"username": sub.username, "full_name": sub.full_name, "reseller": reseller.name,
              "plan": plan.name, "status": sub.status,
              "balance": money.fmt(sub.balance_cents, reseller.currency),
              "currency": reseller.currency, "cycle_start": sub.cycle_start.isoformat(),
              "expires_at": sub.expires_at.isoformat(),
              "email": sub.email, "phone": sub.phone, "address": sub.address}, args.json)
        return 0

    return await with_db(config, run)


@command("subscriber list")
async def subscriber_list(args: argparse.Namespace, config: Config) -> int:
    from portal.core import money
    from portal.store.models import Subscriber

    async def run() -> int:
        query = Subscriber.all().prefetch_related("plan", "reseller").order_by("username")
        if args.reseller:
            query = query.filter(reseller__name=args.reseller)
        emit([{"username": s.username, "reseller": s.reseller.name, "plan": s.plan.name,
               "status": s.status,
               "balance": money.fmt(s.balance_cents, s.reseller.currency),
               "expires_at": s.expires_at.date().isoformat()} for s in await query], args.json)
        return 0

    return await with_db(config, run)


# --- daemons -------------------------------------------------------------------
