"""Issue 15: the operator CLI keeps the README's promise for every bad value: one line on
stderr, exit 1 (2 for a usage error), never a traceback.

Every registered command is found by walking the real argparse tree
(tests/security/_cli_helpers.commands), so a command added later is covered without
touching this file. Each argument in turn gets malformed values for its kind while the
others stay valid; every command also runs with unsupported database URLs (from the
environment and from a --config file) and broken config files. All runs are real
`ispedge` processes (forked from one interpreter, see _cli_runner) against one real
SQLite database.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portal.main import build_parser
from tests.security import _cli_helpers as h
from tests.support.portal import portal_env


def _env(state_dir: Path) -> dict[str, str]:
    return portal_env(f"sqlite://{state_dir / 'ispedge.db'}", state_dir)


@pytest.fixture(scope="module")
def cli_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database for every run: reseller acme, plan basic, subscriber ann, operator
    op1 and ticket 1 (so commands about existing things get as far as their writes)."""
    state_dir = tmp_path_factory.mktemp("cli")
    setup = [
        ["db", "upgrade"],
        ["reseller", "add", "acme"],
        ["plan", "add", "basic", "--reseller", "acme", "--down", "1000", "--up", "500",
         "--price", "10.00"],
        ["subscriber", "add", "ann", "--password", "pw-12345678", "--reseller", "acme",
         "--plan", "basic"],
        ["operator", "add", "op1", "--password", "pw-12345678"],
    ]
    for job, result in zip(setup, h.run_batch([{"argv": a} for a in setup], _env(state_dir),
                                              parallel=1), strict=True):
        assert result["returncode"] == 0, (job, result["stderr"])
    ticket = subprocess.run(
        [sys.executable, "-c", _OPEN_TICKET, f"sqlite://{state_dir / 'ispedge.db'}"],
        capture_output=True, text=True, env=_env(state_dir), timeout=60)
    assert ticket.returncode == 0 and ticket.stdout.strip() == "1", ticket.stderr
    return state_dir


_OPEN_TICKET = """
import asyncio, sys
from portal.core import tickets
from portal.store import db
from portal.store.models import Subscriber

async def main():
    await db.open_db(sys.argv[1])
    try:
        sub = await Subscriber.get(username="ann")
        t = await tickets.open_ticket(sub, "other", "slow", "it is slow")
        print(t.id)
    finally:
        await db.close_db()

asyncio.run(main())
"""


def _state_dir_values(tmp: Path) -> list[str]:
    blocker = tmp / "a-file"
    blocker.write_text("")
    return [str(tmp / ("x" * 300)), str(blocker / "below"), ""]


def _malformed_jobs(tmp: Path) -> list[tuple[h.Command, h.Arg | None, str, dict[str, Any]]]:
    jobs: list[tuple[h.Command, h.Arg | None, str, dict[str, Any]]] = []
    for cmd in h.commands(build_parser()):
        for arg in cmd.args:
            if arg.kind == "flag":
                continue
            values = _state_dir_values(tmp) if arg.dest == "state_dir" else h.MALFORMED[arg.kind]
            for value in values:
                given = h.baseline(cmd, len(jobs), tmp)
                given[arg.dest] = value
                jobs.append((cmd, arg, value, {"argv": h.argv(cmd, given)}))
    return jobs


def _config_jobs(tmp: Path) -> list[tuple[h.Command, h.Arg | None, str, dict[str, Any]]]:
    """Every command, with a database URL it cannot use or a config file it cannot read."""
    configs = {
        "mysql url in file": '[database]\nurl = "mysql://u:p@db.example/x"\n',
        "NUL in database url": '[database]\nurl = "sqlite:///tmp/a\\u0000b.db"\n',
        "not TOML": "[database\nurl = \n",
        "url not a string": "[database]\nurl = 5\n",
        "port not a number": '[portal]\nport = "abc"\n',
    }
    files = {}
    for label, text in configs.items():
        path = tmp / f"{len(files)}.toml"
        path.write_text(text)
        files[label] = path
    jobs: list[tuple[h.Command, h.Arg | None, str, dict[str, Any]]] = []
    for cmd in h.commands(build_parser()):
        urls = h.BAD_DATABASE_URLS
        if cmd.name not in h.DAEMONS:  # a daemon may legitimately wait for its database
            urls = urls + h.UNOPENABLE_DATABASE_URLS
        for url in urls:
            base = h.argv(cmd, h.baseline(cmd, len(jobs), tmp))
            jobs.append((cmd, None, f"ISPEDGE_DATABASE_URL={url}",
                         {"argv": base, "env": {"ISPEDGE_DATABASE_URL": url}}))
        for label, path in files.items():
            if label == "port not a number" and cmd.name != "portal":
                continue
            base = h.argv(cmd, h.baseline(cmd, len(jobs), tmp))
            jobs.append((cmd, None, f"--config ({label})",
                         {"argv": ["--config", str(path), *base],
                          "env": {"ISPEDGE_DATABASE_URL": None}}))
    return jobs


def _problem(cmd: h.Command, arg: h.Arg | None, value: str,
             result: dict[str, Any]) -> str | None:
    stderr = result["stderr"]
    lines = [line for line in stderr.splitlines() if line.strip()]
    must_refuse = arg.kind in h.MUST_REFUSE if arg else \
        not any(url in value for url in h.UNOPENABLE_DATABASE_URLS)
    if "Traceback" in stderr:
        return "traceback: " + " | ".join(lines[-2:])
    if result["timed_out"]:
        return "still running (accepted?)" if must_refuse or cmd.name not in h.DAEMONS else None
    code = result["returncode"]
    if code == 0:
        return "accepted (exit 0)" if must_refuse else None
    if code not in (1, 2):
        return f"exit {code}: " + " | ".join(lines[-2:])
    if len(lines) != 1:
        return f"{len(lines)} lines on stderr: " + " | ".join(line[:160] for line in lines[:4])
    return None


def test_every_command_refuses_malformed_values_with_one_line(cli_state: Path,
                                                              tmp_path: Path) -> None:
    cases = _malformed_jobs(tmp_path) + _config_jobs(tmp_path)
    results = h.run_batch([job for *_, job in cases], _env(cli_state), parallel=3,
                          timeout_s=15)
    commands = {cmd.name for cmd, *_ in cases}
    assert {"subscriber credit", "plan add", "reseller set", "ticket reply", "portal",
            "db upgrade"} <= commands  # the walk found the tree
    problems = []
    for (cmd, arg, value, _), result in zip(cases, results, strict=True):
        problem = _problem(cmd, arg, value, result)
        if problem:
            where = f"{arg.flag or arg.dest}={value[:40]!r}" if arg else value
            problems.append(f"ispedge {cmd.name} {where}: {problem[:300]}")
    assert not problems, f"{len(problems)} of {len(cases)} runs broke the promise:\n" + \
        "\n".join(problems)


@pytest.mark.parametrize(("args", "env"), [
    (["subscriber", "credit", "ann", "1e400"], {}),
    (["subscriber", "list"], {"ISPEDGE_DATABASE_URL": "mysql://u:p@db.example/ispedge"}),
])
def test_the_reported_cases_through_the_real_entry_point(cli_state: Path, args: list[str],
                                                          env: dict[str, str]) -> None:
    """The two commands from the issue, through `python -m portal.main` itself."""
    proc = subprocess.run([sys.executable, "-m", "portal.main", *args],
                          env={**_env(cli_state), **env}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "p@db" not in proc.stderr  # the URL's password is never echoed
