"""`ispedge db prune|backup|restore`: the database's lifecycle (issue 17)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from portal.cli.registry import command, with_db
from portal.config import Config, ConfigError
from portal.errors import PortalError


@command("db prune")
async def db_prune(args: argparse.Namespace, config: Config) -> int:
    """One run of the data lifecycle (portal/store/retention.py); the enforcer runs it
    every [retention] prune_s too."""
    from portal.store import retention

    overrides = {"radacct_days": args.radacct_days} if args.radacct_days is not None else {}
    try:
        policy = retention.Policy.from_config(config, **overrides)
    except ConfigError as exc:
        raise PortalError("invalid_retention", str(exc)) from None

    async def run() -> int:
        report = await retention.prune(policy)
        if args.json:
            print(json.dumps(report.as_dict(), indent=2))
        elif report.skipped:
            print(f"nothing pruned: {report.skipped}")
        else:
            print(f"radacct: {report.sessions_recorded} closed sessions moved to their record"
                  f" (older than {policy.radacct_days} days); session records pruned:"
                  f" {report.session_records_pruned}")
            held = f", held by {report.journal_held_by}" if report.journal_held_by else ""
            print(f"change_journal: {report.journal_pruned} pruned (through id"
                  f" {report.journal_pruned_through}{held}); radacct_changes:"
                  f" {report.radacct_changes_pruned}; audit_log: {report.audit_pruned}"
                  f" ({report.seconds:.2f} s)")
        return 0

    return await with_db(config, run)


@command("db backup")
async def db_backup(args: argparse.Namespace, config: Config) -> int:
    from portal.store import backup

    url = config.database_url
    if (args.file is None) == (args.dir is None):
        raise PortalError("invalid_argument", "give either FILE or --dir DIR")
    if args.file == "" or args.dir == "":
        raise PortalError("invalid_argument", "an empty FILE or DIR")
    if args.keep is not None and args.dir is None:
        raise PortalError("invalid_argument", "--keep needs --dir")
    target = Path(args.file) if args.file is not None else backup.stamped(Path(args.dir), url)
    try:
        done = await backup.backup(url, target)
        gone = backup.rotate(Path(args.dir), args.keep, url) if args.keep else []
    except (backup.BackupError, OSError, ValueError) as exc:
        raise PortalError("backup_failed", str(exc)) from None
    print(f"backup written: {done.path} ({done.bytes} bytes, {done.seconds:.2f} s)"
          + (f"; {len(gone)} older removed" if gone else ""))
    return 0


@command("db restore")
async def db_restore(args: argparse.Namespace, config: Config) -> int:
    from portal.store import backup

    url = config.database_url
    try:
        done = await backup.restore(url, Path(args.file))
    except (backup.BackupError, OSError, ValueError) as exc:
        raise PortalError("restore_failed", str(exc)) from None
    print(f"restored {done.path} ({done.seconds:.2f} s); run `ispedge db upgrade` if the"
          " backup is from an older release, then start the daemons")
    return 0


def add_parsers(g: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from portal.cli.registry import positive_int

    a = g.add_parser("prune", help="move old closed sessions to their record; prune the "
                                   "journal, radacct_changes and the audit log")
    a.add_argument("--radacct-days", type=positive_int,
                   help="closed sessions older than this leave radacct (>= 35; default "
                        "[retention] radacct_days)")
    a.add_argument("--json", action="store_true")
    a = g.add_parser("backup", help="a consistent copy of the database, taken while it runs")
    a.add_argument("file", nargs="?", help="the backup file (SQLite file or pg_dump archive)")
    a.add_argument("--dir", help="write ispedge-<UTC time>.sqlite|.pgdump in this directory")
    a.add_argument("--keep", type=positive_int, help="with --dir: keep the newest N backups")
    a = g.add_parser("restore", help="replace the database with a backup (daemons stopped)")
    a.add_argument("file")
