"""`ispedge notifier` (the daemon) and `ispedge notifications log|resend|template`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from portal.cli.registry import act, command, emit, positive_int, with_db
from portal.config import Config


@command("notifier")
async def notifier_run(args: argparse.Namespace, config: Config) -> int:
    from portal.notifier.daemon import Notifier
    from portal.notifier.settings import Settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_config(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def run() -> int:
        await Notifier(settings, config.database_url).run(stop)
        return 0

    return await with_db(config, run, application_name=f"{config.box}-notifier")


@command("notifications log")
async def notifications_log(args: argparse.Namespace, config: Config) -> int:
    from portal.core import notifications

    async def run() -> int:
        rows = await notifications.log(args.username, args.limit)
        if args.json:
            emit(rows, True)
        elif not rows:
            print(f"no notifications for {args.username}")
        else:
            for r in rows:
                print(f"#{r['id']}  {r['created_at']}  {r['event']}  {r['channel']} "
                      f"{r['target']}  {r['state']}  attempts {r['attempts']}"
                      + (f"  sent {r['sent_at']}" if r["sent_at"] else "")
                      + (f"  resend of #{r['resend_of']}" if r["resend_of"] else "")
                      + (f"  ({r['last_error']})" if r["last_error"] else ""))
        return 0

    return await with_db(config, run)


@command("notifications resend")
async def notifications_resend(args: argparse.Namespace, config: Config) -> int:
    from portal.core import notifications

    return await act(config, lambda: notifications.resend(args.id, "cli"),
                     lambda new_id: f"notification #{args.id} queued again as #{new_id}")


@command("notifications template")
async def notifications_template(args: argparse.Namespace, config: Config) -> int:
    from portal.core import notify_templates
    from portal.errors import NotFound, PortalError
    from portal.store.models import Reseller

    body = args.body
    if args.body_file:
        try:
            body = await asyncio.to_thread(Path(args.body_file).read_text, encoding="utf-8")
        except UnicodeDecodeError:
            raise PortalError("invalid_template",
                              f"{args.body_file!r}: not UTF-8 text") from None
        except OSError as exc:  # the name quoted: one line whatever it holds
            raise PortalError("invalid_template",
                              f"{args.body_file!r}: {exc.strerror or exc}") from None

    async def action() -> None:
        reseller_id = None
        if args.reseller != "-":
            reseller = await Reseller.get_or_none(name=args.reseller)
            if reseller is None:
                raise NotFound("unknown_reseller", f"no reseller {args.reseller!r}")
            reseller_id = reseller.id
        await notify_templates.set_template(reseller_id, args.language, args.event,
                                            args.channel, args.subject or "", body or "")

    owner = "every reseller" if args.reseller == "-" else args.reseller
    return await act(config, action, f"template {args.event}/{args.channel}/{args.language} "
                                     f"saved for {owner}")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser("notifier", help="run the notifier daemon (e-mail, SMS gateway, Web Push)")
    g = sub.add_parser("notifications", help="messages sent to subscribers").add_subparsers(
        dest="action", required=True)
    a = g.add_parser("log", help="the notifications of one subscriber, newest first")
    a.add_argument("username")
    a.add_argument("--limit", type=positive_int, default=50)
    a.add_argument("--json", action="store_true")
    a = g.add_parser("resend", help="queue a copy of a notification (e.g. one 'unknown')")
    a.add_argument("id", type=positive_int)
    a = g.add_parser("template", help="a reseller's wording of an event on a channel")
    a.add_argument("reseller", help="reseller name, or - for every reseller")
    a.add_argument("language", help="e.g. en, fr, pt-BR")
    a.add_argument("event", help="expiry_soon, expired, fup_tier, extra_used_up, "
                                 "ticket_answered, receipt")
    a.add_argument("channel", choices=["email", "sms", "push"])
    a.add_argument("--subject", help="template of the subject (e-mail, push title)")
    how = a.add_mutually_exclusive_group(required=True)
    how.add_argument("--body", help="template of the text")
    how.add_argument("--body-file", help="file holding the template of the text")
