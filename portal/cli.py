"""The `ispedge` command: operator CLI and daemon entry points.

Every command validates its input before writing; errors print one clear line
to stderr and exit 1 (2 for usage errors), with nothing half-written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tortoise.exceptions import BaseORMException

from portal import db, migrations
from portal.config import Config, ConfigError, load_config
from portal.errors import PortalError

Command = Callable[[argparse.Namespace, Config], Awaitable[int]]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return register


def yes_no(text: str) -> bool:
    if text.lower() in ("yes", "y", "true", "on", "1"):
        return True
    if text.lower() in ("no", "n", "false", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


async def with_db(config: Config, fn: Callable[[], Awaitable[int]], upgrade: bool = False) -> int:
    await db.open_db(config.database_url)
    try:
        if upgrade:
            await migrations.upgrade()
        elif await migrations.pending():
            raise PortalError("schema_outdated",
                              "the database schema is not up to date: run `ispedge db upgrade`")
        return await fn()
    finally:
        await db.close_db()


def emit(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    if isinstance(data, list):
        for row in data:
            print("  ".join(f"{v}" for v in row.values()))
        return
    for key, value in data.items():
        print(f"{key}: {value}")


def radius_profile(config: Config) -> str:
    return str(config.get("radius", "reply_profile", "mikrotik"))


# --- db --------------------------------------------------------------------

@command("db upgrade")
async def db_upgrade(args: argparse.Namespace, config: Config) -> int:
    async def run() -> int:
        names = await migrations.upgrade()
        print("applied: " + ", ".join(names) if names else "schema is up to date")
        return 0

    return await with_db(config, run, upgrade=True)


# --- reseller --------------------------------------------------------------

@command("reseller add")
async def reseller_add(args: argparse.Namespace, config: Config) -> int:
    from portal import subscribers

    async def run() -> int:
        r = await subscribers.add_reseller(args.name, args.parent, args.company or "")
        print(f"reseller {r.name} added (id {r.id})")
        return 0

    return await with_db(config, run)


@command("reseller brand")
async def reseller_brand(args: argparse.Namespace, config: Config) -> int:
    from portal import resellers

    logo = await asyncio.to_thread(Path(args.logo).read_bytes) if args.logo else None

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
    from portal import resellers

    async def run() -> int:
        r = await resellers.configure(
            args.name, allow_plan_change=args.allow_plan_change,
            allow_downgrade_refund=args.downgrade_refund, price_per_gb=args.price_per_gb,
            parental_enabled=args.parental, tax_rate=args.tax_rate, currency=args.currency,
        )
        print(f"reseller {r.name} settings updated")
        return 0

    return await with_db(config, run)


# --- plan --------------------------------------------------------------------

@command("plan add")
async def plan_add(args: argparse.Namespace, config: Config) -> int:
    from portal import money, subscribers

    async def run() -> int:
        tiers = [subscribers.parse_tier(t) for t in args.tier or []]
        try:
            quota = subscribers.parse_bytes(args.quota) if args.quota else 0
        except ValueError:
            raise PortalError("invalid_quota", f"bad quota {args.quota!r}: e.g. 100GB") from None
        plan = await subscribers.add_plan(
            args.reseller, args.name, args.down, args.up,
            money.parse_amount(args.price, allow_zero=True), args.period_days, quota,
            not args.hidden, tiers,
        )
        print(f"plan {plan.name} added (id {plan.id})")
        return 0

    return await with_db(config, run)


@command("plan list")
async def plan_list(args: argparse.Namespace, config: Config) -> int:
    from portal import money
    from portal.models import Plan

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
                         "price": money.fmt(p.price_cents), "period_days": p.period_days,
                         "quota_bytes": p.quota_bytes, "offered": p.offered,
                         "fup_tiers": tiers})
        emit(rows, args.json)
        return 0

    return await with_db(config, run)


# --- subscriber ----------------------------------------------------------------

@command("subscriber add")
async def subscriber_add(args: argparse.Namespace, config: Config) -> int:
    from portal import subscribers

    async def run() -> int:
        sub = await subscribers.add_subscriber(
            args.username, args.password, args.reseller, args.plan,
            profile=radius_profile(config), full_name=args.name or "", email=args.email or "",
            phone=args.phone or "", address=args.address or "",
        )
        print(f"subscriber {sub.username} added (expires {sub.expires_at:%Y-%m-%d})")
        return 0

    return await with_db(config, run)


@command("subscriber set-password")
async def subscriber_set_password(args: argparse.Namespace, config: Config) -> int:
    from portal import subscribers

    async def run() -> int:
        await subscribers.set_password(args.username, args.password)
        print(f"password of {args.username} changed")
        return 0

    return await with_db(config, run)


@command("subscriber set-plan")
async def subscriber_set_plan(args: argparse.Namespace, config: Config) -> int:
    from portal import subscribers

    async def run() -> int:
        await subscribers.set_plan(args.username, args.plan, profile=radius_profile(config))
        print(f"{args.username} is now on plan {args.plan}")
        return 0

    return await with_db(config, run)


@command("subscriber set-status")
async def subscriber_set_status(args: argparse.Namespace, config: Config) -> int:
    from portal import subscribers

    async def run() -> int:
        await subscribers.set_status(args.username, args.status, config=config)
        print(f"{args.username} is now {args.status}")
        return 0

    return await with_db(config, run)


@command("subscriber renew")
async def subscriber_renew(args: argparse.Namespace, config: Config) -> int:
    from portal import subscribers

    async def run() -> int:
        sub = await subscribers.renew(args.username, args.days, config=config)
        print(f"{args.username} renewed until {sub.expires_at:%Y-%m-%d %H:%M} UTC")
        return 0

    return await with_db(config, run)


@command("subscriber credit")
async def subscriber_credit(args: argparse.Namespace, config: Config) -> int:
    from portal import money, subscribers

    async def run() -> int:
        balance = await subscribers.credit(
            args.username, money.parse_amount(args.amount), args.reference or ""
        )
        print(f"credited {args.username}; balance now {money.fmt(balance)}")
        return 0

    return await with_db(config, run)


@command("subscriber show")
async def subscriber_show(args: argparse.Namespace, config: Config) -> int:
    from portal import money, subscribers

    async def run() -> int:
        sub = await subscribers.get_subscriber(args.username)
        plan, reseller = await sub.plan, await sub.reseller
        emit({"username": sub.username, "full_name": sub.full_name, "reseller": reseller.name,
              "plan": plan.name, "status": sub.status, "balance": money.fmt(sub.balance_cents),
              "cycle_start": sub.cycle_start.isoformat(), "expires_at": sub.expires_at.isoformat(),
              "email": sub.email, "phone": sub.phone, "address": sub.address}, args.json)
        return 0

    return await with_db(config, run)


@command("subscriber list")
async def subscriber_list(args: argparse.Namespace, config: Config) -> int:
    from portal import money
    from portal.models import Subscriber

    async def run() -> int:
        query = Subscriber.all().prefetch_related("plan", "reseller").order_by("username")
        if args.reseller:
            query = query.filter(reseller__name=args.reseller)
        emit([{"username": s.username, "reseller": s.reseller.name, "plan": s.plan.name,
               "status": s.status, "balance": money.fmt(s.balance_cents),
               "expires_at": s.expires_at.date().isoformat()} for s in await query], args.json)
        return 0

    return await with_db(config, run)


# --- daemons -------------------------------------------------------------------

@command("portal")
async def portal_serve(args: argparse.Namespace, config: Config) -> int:
    raise AssertionError("handled synchronously in main()")


@command("demo")
async def demo_cmd(args: argparse.Namespace, config: Config) -> int:
    raise AssertionError("handled synchronously in main()")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ispedge", description="ISP edge appliance")
    p.add_argument("--config", help="TOML config file (default: $ISPEDGE_CONFIG, ./ispedge.toml, "
                                    "/etc/ispedge/ispedge.toml)")
    sub = p.add_subparsers(dest="group", required=True)

    g = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    g.add_parser("upgrade", help="apply pending migrations")

    from portal import cli_support  # registers its commands

    g = sub.add_parser("reseller", help="resellers").add_subparsers(dest="action", required=True)
    cli_support.add_reseller_parsers(g)
    a = g.add_parser("add")
    a.add_argument("name")
    a.add_argument("--parent")
    a.add_argument("--company")
    a = g.add_parser("brand")
    a.add_argument("name")
    for flag in ("--company", "--tagline", "--footer", "--color", "--domain", "--logo",
                 "--registration"):
        a.add_argument(flag)
    a = g.add_parser("set")
    a.add_argument("name")
    a.add_argument("--allow-plan-change", type=yes_no)
    a.add_argument("--downgrade-refund", type=yes_no)
    a.add_argument("--price-per-gb", help="price of one extra GB, e.g. 1.50 (0 = off)")
    a.add_argument("--parental", type=yes_no)
    a.add_argument("--tax-rate", help="percent, e.g. 11 or 7.5")
    a.add_argument("--currency")

    g = sub.add_parser("plan", help="plans").add_subparsers(dest="action", required=True)
    a = g.add_parser("add")
    a.add_argument("name")
    a.add_argument("--reseller", required=True)
    a.add_argument("--down", type=positive_int, required=True, help="kbps")
    a.add_argument("--up", type=positive_int, required=True, help="kbps")
    a.add_argument("--price", required=True, help="per period, e.g. 25.00")
    a.add_argument("--period-days", type=positive_int, default=30)
    a.add_argument("--quota", help="monthly quota, e.g. 200GB (default unlimited)")
    a.add_argument("--tier", action="append",
                   help="FUP tier period:tier:threshold:down/up, e.g. monthly:1:200GB:10000/5000")
    a.add_argument("--hidden", action="store_true", help="not offered to customers")
    a = g.add_parser("list")
    a.add_argument("--reseller")
    a.add_argument("--json", action="store_true")

    g = sub.add_parser("subscriber", help="subscribers").add_subparsers(dest="action",
                                                                         required=True)
    a = g.add_parser("add")
    a.add_argument("username")
    a.add_argument("--password", required=True)
    a.add_argument("--reseller", required=True)
    a.add_argument("--plan", required=True)
    for flag in ("--name", "--email", "--phone", "--address"):
        a.add_argument(flag)
    a = g.add_parser("set-password")
    a.add_argument("username")
    a.add_argument("password")
    a = g.add_parser("set-plan")
    a.add_argument("username")
    a.add_argument("plan")
    a = g.add_parser("set-status")
    a.add_argument("username")
    a.add_argument("status", choices=["active", "disabled"])
    a = g.add_parser("renew", help="start a new billing cycle (default: the plan's period)")
    a.add_argument("username")
    a.add_argument("--days", type=positive_int)
    a = g.add_parser("credit")
    a.add_argument("username")
    a.add_argument("amount", help="e.g. 20.00")
    a.add_argument("--reference")
    a = g.add_parser("show")
    a.add_argument("username")
    a.add_argument("--json", action="store_true")
    a = g.add_parser("list")
    a.add_argument("--reseller")
    a.add_argument("--json", action="store_true")

    cli_support.add_parsers(sub)

    from portal.usage import cli as usage_cli  # registers `usage ingest`

    usage_cli.add_parsers(sub)

    from portal.enforcer import cli as enforcer_cli  # registers `enforcer [status]`

    enforcer_cli.add_parsers(sub)

    from portal import dns_cli  # registers `dns` and `blocklists update`

    dns_cli.add_parsers(sub)

    a = sub.add_parser("portal", help="run the customer portal")
    a.add_argument("--host")
    a.add_argument("--port", type=int)

    a = sub.add_parser("demo", help="demo data + portal on embedded SQLite")
    a.add_argument("--state-dir", default="ispedge-demo")
    a.add_argument("--port", type=int, default=0, help="0 = 8080 or the next free port")
    a.add_argument("--reset", action="store_true", help="start from a fresh database")
    a.add_argument("--no-serve", action="store_true", help="create the data and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --config may come anywhere (`ispedge dns --config F`, as the systemd units say).
    config_path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            config_path = argv[i + 1]
            del argv[i:i + 2]
            break
        if arg.startswith("--config="):
            config_path = arg.split("=", 1)[1]
            del argv[i]
            break
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = config_path
    try:
        config = load_config(args.config)
        if args.group == "portal":
            from portal.serve import serve

            serve(config, args.host, args.port)
            return 0
        if args.group == "demo":
            from portal.demo import run_demo

            return run_demo(args, config)
        name = f"{args.group} {args.action}" if getattr(args, "action", None) else args.group
        return asyncio.run(COMMANDS[name](args, config))
    except (PortalError, ConfigError) as exc:
        print(f"ispedge: error: {exc}", file=sys.stderr)
        return 1
    except BaseORMException as exc:
        # e.g. "database is locked" after busy_timeout, or an unreachable server.
        print(f"ispedge: database error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ispedge: error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    # `python -m portal.cli`: run portal.cli's main, where the command modules
    # (usage, enforcer, ...) registered themselves, not this __main__ copy's.
    from portal.cli import main as _main

    sys.exit(_main())
