"""The one command registry of the `ispedge` CLI and the helpers every command uses.

Every command validates its input before writing; errors print one clear line
to stderr and exit 1 (2 for usage errors), with nothing half-written.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from portal.config import Config
from portal.errors import PortalError
from portal.speed import settings as speed_settings
from portal.store import db, migrations

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


async def with_db(config: Config, fn: Callable[[], Awaitable[int]],
                  check_schema: bool = True, application_name: str | None = None) -> int:
    """Open the database, run one command body, close it.

    A command refuses to run on an outdated schema; `db upgrade` passes
    check_schema=False because bringing the schema up to date is its own body
    (and only its body knows which migrations it applied, to say so).
    application_name: the edge box a daemon runs as (its PostgreSQL connections say so).
    """
    speed_settings.configure(config)
    await db.open_db(config.database_url, application_name)
    try:
        if check_schema and await migrations.pending():
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
