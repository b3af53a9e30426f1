"""The one command registry of the `ispedge` CLI and the helpers every command uses.

Every command validates its input before writing; errors print one clear line
to stderr and exit 1 (2 for usage errors), with nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from portal.config import Config
from portal.errors import PortalError
from portal.speed import settings as speed_settings
from portal.store import db, migrations

Command = Callable[[argparse.Namespace, Config], Awaitable[int]]
COMMANDS: dict[str, Command] = {}


class Parser(argparse.ArgumentParser):
    """argparse that keeps the promise for usage errors too: one line on stderr, exit 2
    (argparse's own error prints the whole usage block first)."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


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


# The largest id or count a command takes: PostgreSQL's INTEGER (SQLite's is wider).
MAX_INT = 2**31 - 1


def _digits(text: str, what: str) -> int:
    # Plain decimal digits only: int() would also take "1_000", " 7" and "٣".
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}")
    return int(text)


def positive_int(text: str) -> int:
    value = _digits(text, "a whole number")
    if not 0 < value <= MAX_INT:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to {MAX_INT}, got {text!r}")
    return value


def port(text: str) -> int:
    value = _digits(text, "a port number")
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}")
    return value


def check_argv(argv: list[str]) -> None:
    """Arguments that are not UTF-8 reach Python as lone surrogates (surrogateescape);
    no database or socket takes those, so they are refused here, once, for every command."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise PortalError("invalid_argument",
                              f"argument {ascii(arg)[:60]} is not valid UTF-8") from None


async def with_db(config: Config, fn: Callable[[], Awaitable[int]],
                  check_schema: bool = True, application_name: str | None = None,
                  pool_max: int | None = None) -> int:
    """Open the database, run one command body, close it.

    A command refuses to run on an outdated schema; `db upgrade` passes
    check_schema=False because bringing the schema up to date is its own body
    (and only its body knows which migrations it applied, to say so).
    application_name: the edge box a daemon runs as (its PostgreSQL connections say so).
    pool_max: a daemon's connection pool size on PostgreSQL (README, "Connections").
    """
    speed_settings.configure(config)
    await db.open_db(config.database_url, application_name, pool_max)
    try:
        if check_schema and await migrations.pending():
            raise PortalError("schema_outdated",
                              "the database schema is not up to date: run `ispedge db upgrade`")
        return await fn()
    finally:
        await db.close_db()


async def act(config: Config, action: Callable[[], Awaitable[Any]],
              said: str | Callable[[Any], str]) -> int:
    """The body most commands share: open the database, run one use case, say in one
    line what it did (`said` is the line, or makes it from the use case's result)."""
    async def run() -> int:
        result = await action()
        print(said(result) if callable(said) else said)
        return 0

    return await with_db(config, run)


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
