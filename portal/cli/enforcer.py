"""`ispedge enforcer` (the daemon) and `ispedge enforcer status`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from portal.cli.registry import command, emit, with_db
from portal.config import Config


@command("enforcer")
async def enforcer_run(args: argparse.Namespace, config: Config) -> int:
    from coa import CoaClient
    from portal.enforcer import local
    from portal.enforcer.daemon import Enforcer
    from portal.enforcer.settings import Settings
    from portal.speed import settings as speed_settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    speed_settings.configure(config)
    settings = Settings.from_config(config)
    from portal.store import retention

    retention.Policy.from_config(config)  # a bad [retention] stops the start, in one line
    reason = local.unavailable_reason(settings.shaper, settings.down_interface,
                                      settings.up_interface, local.has_net_admin())
    shaper = None
    if reason is None:
        shaper = local.LocalShaper(settings.down_interface, settings.up_interface,
                                   settings.netns)
    else:
        print(f"ispedge enforcer: local shaper off: {reason}; NAS sessions get CoA",
              file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def run() -> int:
        try:
            async with CoaClient(timeout_s=settings.coa_timeout_s,
                                 retries=settings.coa_retries) as coa:
                await Enforcer(settings, coa, shaper, config).run(stop)
        finally:
            if shaper is not None:
                await shaper.close()
        return 0

    return await with_db(config, run, application_name=config.box,
                         pool_max=settings.db_pool_max)


async def problem_rows() -> list[dict[str, object]]:
    """What `enforcer status --problems` lists: every (subscriber, target) not applied,
    plus what no running box acts on (unowned NASes, shapers of boxes gone silent).
    Also the operator console's problems page (passed to the portal by portal.main)."""
    import time

    from portal.enforcer import ownership
    from portal.enforcer.daemon import status_rows, unowned_row
    from portal.store import boxes, db

    rows = await db.fetch("SELECT * FROM enforcement_state WHERE state <> 'applied'"
                          " ORDER BY username, target")
    shown = status_rows(rows)
    nas_boxes = await boxes.nas_boxes()
    live = ownership.live_boxes(await boxes.enforcers_seen(), None, time.time())
    per_nas = {str(r["nasipaddress"]): int(r["n"]) for r in await db.fetch(
        "SELECT nasipaddress, COUNT(*) AS n FROM radacct WHERE acctstoptime IS NULL"
        " GROUP BY nasipaddress")}
    shapers = {str(r["target"]): int(r["n"]) for r in await db.fetch(
        "SELECT target, COUNT(*) AS n FROM enforcement_state"
        " WHERE target LIKE 'shaper:%' GROUP BY target")}
    return shown + [unowned_row(u) for u in
                    ownership.unowned(nas_boxes, live, per_nas, shapers)]


@command("enforcer status")
async def enforcer_status(args: argparse.Namespace, config: Config) -> int:
    """Per (subscriber, target) state; with --problems only what is not applied, plus
    what no running box acts on (unowned NASes, shapers of boxes gone silent), and
    exit 1 when there is any."""
    from portal.enforcer.daemon import status_rows
    from portal.store import db

    async def run() -> int:
        if args.problems:
            shown = await problem_rows()
        else:
            shown = status_rows(await db.fetch(
                "SELECT * FROM enforcement_state ORDER BY username, target"))
        emit(shown, args.json)
        if not args.json and not shown:
            print("no subscribers under enforcement" + (" with problems" if args.problems
                                                         else ""))
        return 1 if args.problems and shown else 0

    return await with_db(config, run)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    g = sub.add_parser("enforcer", help="run the enforcer daemon (shaper, CoA, usage ingest, "
                                        "live rates); `status` shows per-subscriber state")
    actions = g.add_subparsers(dest="action")
    a = actions.add_parser("status", help="desired vs applied speed per subscriber, retries")
    a.add_argument("--json", action="store_true")
    a.add_argument("--problems", action="store_true",
                   help="only rows not applied and what no box acts on (unowned); exit 1 "
                        "when there is any")
