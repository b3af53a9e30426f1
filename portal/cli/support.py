"""CLI for WiFi/ACS settings, operators and tickets (`ispedge reseller acs`,
`ispedge operator add`, `ispedge ticket list|show|reply|close`).

Registered by portal.cli.registry.build_parser: commands here, parser entries in add_parsers.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from portal.cli.registry import act, command, emit, positive_int, with_db
from portal.config import Config
from portal.errors import PortalError


@command("reseller acs")
async def reseller_acs(args: argparse.Namespace, config: Config) -> int:
    from portal.core.wifi import service

    async def run() -> int:
        if args.remove:
            await service.unconfigure(args.name)
            print(f"reseller {args.name}: WiFi management off")
            return 0
        if not args.url:
            raise PortalError("missing_url", "--url is required (or --remove)")
        server = await service.configure(args.name, args.url, args.username or "",
                                         args.password or "", args.match, args.timeout_ms)
        print(f"reseller {args.name}: ACS {server.url} (match by {server.match})")
        return 0

    return await with_db(config, run)


@command("operator add")
async def operator_add(args: argparse.Namespace, config: Config) -> int:
    from portal.core import operators

    password = args.password
    if password is None:
        password = getpass.getpass("password: ") if sys.stdin.isatty() else \
            sys.stdin.readline().rstrip("\n")

    async def run() -> int:
        op = await operators.add(args.name, password, args.reseller, args.role)
        scope = f"reseller {args.reseller} and its sub-resellers" if args.reseller else \
            "every reseller"
        print(f"operator {op.username} added ({op.role}, {scope})")
        return 0

    return await with_db(config, run)


def _read_password(given: str | None) -> str:
    if given is not None:
        return given
    return getpass.getpass("password: ") if sys.stdin.isatty() else \
        sys.stdin.readline().rstrip("\n")


@command("operator set-password")
async def operator_set_password(args: argparse.Namespace, config: Config) -> int:
    from portal.core import operators

    password = _read_password(args.password)
    return await act(config, lambda: operators.set_password(args.name, password),
                     f"password of operator {args.name} changed (earlier tokens are refused)")


@command("operator disable")
async def operator_disable(args: argparse.Namespace, config: Config) -> int:
    from portal.core import operators
    return await act(config, lambda: operators.set_active(args.name, False),
                     f"operator {args.name} disabled")


@command("operator enable")
async def operator_enable(args: argparse.Namespace, config: Config) -> int:
    from portal.core import operators
    return await act(config, lambda: operators.set_active(args.name, True),
                     f"operator {args.name} enabled")


@command("operator sign-out")
async def operator_sign_out(args: argparse.Namespace, config: Config) -> int:
    from portal.core import operators
    return await act(config, lambda: operators.sign_out(args.name),
                     f"operator {args.name} is signed out everywhere")


@command("operator set-role")
async def operator_set_role(args: argparse.Namespace, config: Config) -> int:
    from portal.core import operators
    return await act(config, lambda: operators.set_role(args.name, args.role),
                     f"operator {args.name} is now {args.role} (signed out everywhere)")


@command("operator enroll-totp")
async def operator_enroll_totp(args: argparse.Namespace, config: Config) -> int:
    from portal.core import operators
    from portal.core.auth import totp

    async def run() -> int:
        secret = await operators.enroll_totp(args.name)
        print(f"operator {args.name}: two-step sign-in on; add this to the authenticator "
              f"app, then sign in with its 6-digit code\nsecret: {secret}\n"
              f"uri:    {totp.provisioning_uri(secret, args.name)}")
        return 0

    return await with_db(config, run)


@command("operator reset-totp")
async def operator_reset_totp(args: argparse.Namespace, config: Config) -> int:
    from portal.core import operators
    return await act(config, lambda: operators.reset_totp(args.name),
                     f"operator {args.name}: two-step sign-in removed (password only until "
                     "enrolled again: on the console's Account tab, at sign-in for an admin "
                     "under require_totp_for_admins, or `ispedge operator enroll-totp`); "
                     "signed out everywhere")


@command("portal rotate-key")
async def portal_rotate_key(args: argparse.Namespace, config: Config) -> int:
    from portal.core.auth import keys

    path = keys.key_file(config)
    keys.ensure_file(path, legacy=config.state_dir / "jwt.key")
    kid = keys.rotate(path, keep=args.keep)
    print(f"{path}: new signing key {kid}; the {args.keep} previous key(s) still verify")
    return 0


@command("ticket list")
async def ticket_list(args: argparse.Namespace, config: Config) -> int:
    from portal.core import tickets

    async def run() -> int:
        rows = await tickets.operator_list(args.status)
        emit([{"id": t["id"], "status": t["status"], "username": t["username"],
               "category": t["category"], "updated_at": t["updated_at"],
               "subject": t["subject"]} for t in rows], args.json)
        return 0

    return await with_db(config, run)


@command("ticket show")
async def ticket_show(args: argparse.Namespace, config: Config) -> int:
    from portal.core import tickets

    async def run() -> int:
        thread = await tickets.thread_json(await tickets.get_ticket(args.id), for_operator=True)
        if args.json:
            emit(thread, True)
            return 0
        print(f"#{thread['id']} [{thread['status']}] {thread['category_label']} — "
              f"{thread['username']}: {thread['subject']!r}")
        if thread["diagnostics"]:
            print(f"diagnostics: {thread['diagnostics']}")
        for m in thread["messages"]:
            note = " (internal note)" if m["internal"] else ""
            print(f"--- {m['created_at']} {m['author_kind']}:{m['author']}{note}")
            print(m["body"])
        return 0

    return await with_db(config, run)


@command("ticket reply")
async def ticket_reply(args: argparse.Namespace, config: Config) -> int:
    from portal.core import tickets

    async def run() -> int:
        t = await tickets.operator_reply(args.operator, args.id, args.message, args.internal)
        print(f"ticket #{t.id} {'noted' if args.internal else 'answered'} (status {t.status})")
        return 0

    return await with_db(config, run)


@command("ticket close")
async def ticket_close(args: argparse.Namespace, config: Config) -> int:
    from portal.core import tickets

    async def run() -> int:
        t = await tickets.close(args.operator, args.id)
        print(f"ticket #{t.id} closed")
        return 0

    return await with_db(config, run)


def add_reseller_parsers(g: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    a = g.add_parser("acs", help="the TR-069 ACS managing this reseller's routers (WiFi tab)")
    a.add_argument("name")
    a.add_argument("--url", help="GenieACS NBI URL, e.g. http://acs:7557")
    a.add_argument("--username", help="NBI basic-auth user (if the NBI requires one)")
    a.add_argument("--password")
    a.add_argument("--match", choices=["tag", "username"], default="tag",
                   help="find a router by a tag equal to the PPPoE username, or by the PPPoE "
                        "username the router reports")
    a.add_argument("--timeout-ms", type=positive_int, default=10000)
    a.add_argument("--remove", action="store_true", help="turn WiFi management off")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    g = sub.add_parser("operator", help="operators").add_subparsers(dest="action", required=True)
    a = g.add_parser("add")
    a.add_argument("name")
    a.add_argument("--password", help="(default: read from the terminal or stdin)")
    a.add_argument("--reseller", help="serve only this reseller's (and its sub-resellers') "
                   "subscribers; default: every reseller")
    a.add_argument("--role", choices=["admin", "support"], default="admin",
                   help="admin: everything; support: tickets and a read-only subscriber view")
    a = g.add_parser("set-role", help="admin or support; signs the operator out")
    a.add_argument("name")
    a.add_argument("role", choices=["admin", "support"])
    g.add_parser("enroll-totp", help="turn on two-step sign-in (TOTP): prints the secret "
                 "for the authenticator app").add_argument("name")
    g.add_parser("reset-totp", help="remove two-step sign-in (a lost phone)") \
        .add_argument("name")
    a = g.add_parser("set-password", help="change the password; signs the operator out")
    a.add_argument("name")
    a.add_argument("--password", help="(default: read from the terminal or stdin)")
    for action, text in (("disable", "refuse logins and sign out everywhere"),
                         ("enable", "allow logins again"),
                         ("sign-out", "sign out everywhere (every earlier token is refused)")):
        g.add_parser(action, help=text).add_argument("name")

    g = sub.add_parser("ticket", help="support tickets").add_subparsers(dest="action",
                                                                         required=True)
    a = g.add_parser("list")
    a.add_argument("--status", choices=["open", "answered", "closed"])
    a.add_argument("--json", action="store_true")
    a = g.add_parser("show")
    a.add_argument("id", type=positive_int)
    a.add_argument("--json", action="store_true")
    a = g.add_parser("reply")
    a.add_argument("id", type=positive_int)
    a.add_argument("--message", "-m", required=True)
    a.add_argument("--internal", action="store_true", help="a note the customer never sees")
    a.add_argument("--operator", default="cli", help="name shown to colleagues")
    a = g.add_parser("close")
    a.add_argument("id", type=positive_int)
    a.add_argument("--operator", default="cli")
