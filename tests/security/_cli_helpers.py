"""Shared by tests/security/test_cli_malformed.py: the CLI's command tree, walked
from the real parser (so a new command is covered the day it is registered), the
malformed values per kind of argument, and a batch runner (tests/security/_cli_runner.py)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Commands that serve until stopped: their valid baseline is never run; a malformed
# value must make them exit, anything else is stopped by the runner's timeout.
DAEMONS = frozenset({"portal", "demo", "enforcer", "dns", "notifier"})

NUMBERS = ["abc", "1e400", "-1", "99999999999999999999", "nan", "inf", "", "1.5", "0x10",
           " ", "1_000"]
AMOUNTS = ["abc", "1e400", "-1", "99999999999999999999", "nan", "inf", "-inf", "",
           "1.234", "1e-400", "9" * 400, "1,5"]
PERCENTS = ["abc", "1e400", "-1", "99999999999999999999", "nan", "inf", "", "101"]
SIZES = ["abc", "1e400GB", "-1GB", "99999999999999999999TB", "nanGB", "infGB", "GB", "",
         "1.5.5GB", "9" * 400]
TIERS = ["abc", "monthly:1:1e400GB:1000/500", "monthly:1:99999999999999999999TB:1000/500",
         "daily:1:5GB:99999999999999999999/1", "monthly:1:5GB:nan/1", "weekly:1:5GB:1/1",
         "monthly:9:5GB:1/1", "", "monthly:1:-5GB:1/1", "::::"]
URLS = ["not a url", "ftp://acs.example", "http://", "http://[::1", "javascript:alert(1)",
        "http://h:99999999999999999999/", "http://" + "a" * 5000, "", "http://h\n/x"]
COLORS = ["red", "#zzzzzz", "", "#fff\n", "#" + "f" * 5000]
# Free text (names, passwords, messages, companies): refused with one line or accepted.
# "\udcff" is what Python makes of a byte that is not UTF-8 in argv (surrogateescape);
# a NUL cannot be passed in argv at all (execve), so NUL comes in through a config file.
TEXT = ["", "a\nb", "\r\n", "\x1b[2J", "\udcff", "\u202e", "x" * 100_000, "'; DROP TABLE x;--"]
BAD_DATABASE_URLS = ["mysql://u:p@db.example/ispedge", "sqlite://", "ftp://x", "postgres",
                     "MYSQL://x", "sqlite:///tmp/x\n.db"]
# Well-formed but unusable: refused with one line by a command that opens the database,
# accepted by one that never does (blocklists update).
UNOPENABLE_DATABASE_URLS = ["sqlite:///proc/no-such-dir/x.db"]


@dataclass(frozen=True)
class Arg:
    dest: str
    flag: str | None  # None: positional
    kind: str  # number, amount, percent, size, tier, url, color, path, choice, text, flag
    required: bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    args: tuple[Arg, ...]

    @property
    def name(self) -> str:
        return " ".join(self.path)


def _kind(action: argparse.Action) -> str:
    dest = action.dest
    type_name = getattr(action.type, "__name__", "")
    if action.nargs == 0:
        return "flag"
    if action.choices:
        return "choice"
    if type_name in ("int", "positive_int", "float"):
        return "number"
    if dest in ("amount", "price", "price_per_gb"):
        return "amount"
    if dest in ("tax_rate",):
        return "percent"
    if dest == "quota":
        return "size"
    if dest == "tier":
        return "tier"
    if dest == "url":
        return "url"
    if dest == "color":
        return "color"
    if dest in ("logo", "state_dir"):
        return "path"
    return "text"


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Command]:
    """Every runnable command under `parser`: a leaf, or a parser whose subcommand is
    optional (`ispedge enforcer` runs the daemon, `ispedge enforcer status` reports)."""
    found: list[Command] = []
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    own = [a for a in parser._actions
           if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction)
           and a.dest != "config"]
    if path and (not subs or not all(s.required for s in subs)):
        found.append(Command(path, tuple(
            Arg(a.dest, a.option_strings[0] if a.option_strings else None, _kind(a),
                bool(a.required) or not a.option_strings, tuple(a.choices or ()))
            for a in own)))
    for s in subs:
        for name, child in s.choices.items():
            found.extend(commands(child, (*path, name)))
    return found


MALFORMED: dict[str, list[str]] = {
    "number": NUMBERS, "amount": AMOUNTS, "percent": PERCENTS, "size": SIZES, "tier": TIERS,
    "url": URLS, "color": COLORS, "choice": ["", "x", "ACTIVE\n"], "text": TEXT,
    "path": ["/nonexistent/file.png", "/", "", "x" * 5000],
}
# Kinds whose every malformed value must be refused (free text may be accepted).
MUST_REFUSE = frozenset(MALFORMED) - {"text"}

# Valid values by dest for the arguments not under test (fixture data: reseller acme,
# plan basic, subscriber ann, operator op1, ticket 1).
VALID = {"name": "acme", "username": "ann", "reseller": "acme", "plan": "basic",
         "parent": "acme", "password": "pw-12345678", "amount": "5.00", "price": "10.00",
         "down": "1000", "up": "500", "id": "1", "message": "hello", "days": "30",
         "status": None, "state_dir": None, "port": "0", "host": "127.0.0.1"}


def baseline(cmd: Command, job: int, state_dir: Path) -> dict[str, str]:
    """A valid value for every required argument (a fresh name for `... add`)."""
    values: dict[str, str] = {}
    for arg in cmd.args:
        if not arg.required:
            continue
        if arg.kind == "choice":
            values[arg.dest] = arg.choices[0]
        elif cmd.path[-1] == "add" and arg.flag is None and arg.dest in ("name", "username"):
            values[arg.dest] = f"fresh{job}"
        elif arg.dest == "state_dir":
            values[arg.dest] = str(state_dir / f"demo{job}")
        else:
            values[arg.dest] = VALID.get(arg.dest) or "x"
    return values


def argv(cmd: Command, values: dict[str, str]) -> list[str]:
    out = list(cmd.path)
    for arg in cmd.args:
        if arg.dest not in values:
            continue
        if arg.flag is None:
            out.append(values[arg.dest])
        else:
            out.append(f"{arg.flag}={values[arg.dest]}")
    return out


def run_batch(jobs: list[dict[str, Any]], env: dict[str, str], parallel: int = 3,
              timeout_s: float = 20.0) -> list[dict[str, Any]]:
    """Run `ispedge` once per job (see _cli_runner); returns one result per job."""
    payload = "".join(json.dumps(j) + "\n" for j in jobs)
    # Run from an empty directory: a value that falls back to a relative path (an empty
    # --state-dir, a config without one) must write there, never into the checkout.
    repo = str(Path(__file__).resolve().parents[2])
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)}
    scratch = tempfile.mkdtemp(prefix="ispedge-cli-")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.security._cli_runner", "--parallel", str(parallel),
         "--timeout", str(timeout_s)],
        input=payload, capture_output=True, text=True, env=env, cwd=scratch,
        timeout=120 + len(jobs) * timeout_s / parallel)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(results) == len(jobs), proc.stderr[-3000:]
    return results
