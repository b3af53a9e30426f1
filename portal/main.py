"""The `ispedge` command: the composition root that assembles the CLI.

Every command module registers itself in portal.cli.registry when imported here;
this is the one module that may import the demo (for `ispedge demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tortoise.exceptions import BaseORMException

from portal.cli import admin, boxes, dbops, dns, enforcer, notifications, support, usage
from portal.cli.registry import COMMANDS, Parser, check_argv, port, positive_int, yes_no
from portal.config import ConfigError, load_config
from portal.errors import PortalError
from portal.store import journal

# imported for their @command side effect
_REGISTERED = (admin, boxes, dbops, dns, enforcer, notifications, support, usage)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ispedge", description="ISP edge appliance")
    p.add_argument("--config", help="TOML config file (default: $ISPEDGE_CONFIG, ./ispedge.toml, "
                                    "/etc/ispedge/ispedge.toml)")
    sub = p.add_subparsers(dest="group", required=True)

    g = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    g.add_parser("upgrade", help="apply pending migrations")
    dbops.add_parsers(g)


    g = sub.add_parser("reseller", help="resellers").add_subparsers(dest="action", required=True)
    support.add_reseller_parsers(g)
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
    a.add_argument("--self-renewal", type=yes_no, help="subscribers may renew from their wallet")
    a.add_argument("--payment-instructions", help="how to pay, shown with a shortfall")
    a.add_argument("--payment-contact", help="whom to pay (phone, shop), shown with it")
    a.add_argument("--language", choices=["en", "fr", "ar", "none"],
                   help="portal language of subscribers who chose none (none: English)")

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
    a = g.add_parser("sign-out", help="sign out everywhere (every earlier token is refused)")
    a.add_argument("username")
    a = g.add_parser("set-plan")
    a.add_argument("username")
    a.add_argument("plan")
    a = g.add_parser("set-status")
    a.add_argument("username")
    a.add_argument("status", choices=["active", "disabled"])
    a = g.add_parser("renew", help="renew for the plan's period, paid from the wallet"
                     " (early: a prepaid next cycle from the current expiry)")
    a.add_argument("username")
    how = a.add_mutually_exclusive_group()
    how.add_argument("--paid", metavar="REF", help="paid in cash: record the payment (receipt)")
    how.add_argument("--free", metavar="REASON", help="no charge (audited with the reason)")
    a.add_argument("--days", type=positive_int, help="length of a --free renewal")
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

    support.add_parsers(sub)


    usage.add_parsers(sub)


    enforcer.add_parsers(sub)
    boxes.add_parsers(sub)
    notifications.add_parsers(sub)


    dns.add_parsers(sub)

    a = sub.add_parser("portal", help="run the customer portal")
    a.add_argument("--host")
    a.add_argument("--port", type=port)
    g = a.add_subparsers(dest="action", required=False)
    r = g.add_parser("rotate-key", help="add a new current token signing key (the previous "
                     "ones still verify, so nobody is logged out)")
    r.add_argument("--keep", type=int, default=3, choices=range(0, 100), metavar="N",
                   help="previous keys kept for verifying (default 3)")

    a = sub.add_parser("demo", help="demo data + portal on embedded SQLite")
    a.add_argument("--state-dir", default="ispedge-demo")
    a.add_argument("--port", type=port, default=0, help="0 = 8080 or the next free port")
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
    try:
        check_argv(argv)
    except PortalError as exc:
        print(f"ispedge: error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = config_path
    try:
        config = load_config(args.config)
        if args.group == "portal" and not getattr(args, "action", None):
            # Imported here: the web app (and the demo) cost seconds of imports that a
            # daemon or a one-line command never uses.
            from portal.web.serve import serve

            serve(config, args.host, args.port, problems=enforcer.problem_rows)
            return 0
        if args.group == "demo":
            from portal.demo.run import run_demo

            return run_demo(args, config)
        name = f"{args.group} {args.action}" if getattr(args, "action", None) else args.group
        with journal.writing_as(journal.CLI):  # journal rows of a command say origin 'cli'
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
    sys.exit(main())
