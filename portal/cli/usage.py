"""`ispedge usage ingest`: one ingest pass from the command line."""

from __future__ import annotations

import argparse
import json

from portal.cli.registry import command, with_db
from portal.config import Config


@command("usage ingest")
async def usage_ingest(args: argparse.Namespace, config: Config) -> int:
    from portal.usage import ingest

    async def run() -> int:
        r = await ingest.ingest_job(config)
        summary = {"rows": r.rows, "changed": r.changed, "started": r.started,
                   "stopped": r.stopped, "stale_closed": r.stale_closed, "bytes_in": r.bytes_in,
                   "bytes_out": r.bytes_out, "seconds": round(r.seconds, 3)}
        print(json.dumps(summary) if args.json else
              "  ".join(f"{k}={v}" for k, v in summary.items()))
        return 0

    return await with_db(config, run)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    g = sub.add_parser("usage", help="usage accounting").add_subparsers(dest="action",
                                                                          required=True)
    a = g.add_parser("ingest", help="one pass: radacct -> daily usage (the enforcer runs it "
                                    "every minute)")
    a.add_argument("--json", action="store_true")
