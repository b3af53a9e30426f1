"""The `ispedge` command run in-process: main() with the test database's environment.

A subprocess costs ~1.5-4.5 s of interpreter start on the shared CI box; main() is
the same parser, the same error handling and exit codes without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.portal import portal_env


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str,
             tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `ispedge ARGS` against db_url."""
    from portal.main import main

    for name in [n for n in os.environ if n.startswith("ISPEDGE_")]:
        monkeypatch.delenv(name)
    for name, value in portal_env(db_url, tmp_path / "state").items():
        if name.startswith("ISPEDGE_"):
            monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def sqlite_copy(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh migrated SQLite database whatever the pass, for a test that checks no
    database behaviour (so it is not a `db` test and runs in the SQLite pass only)."""
    import asyncio
    import shutil

    from tests.conftest import PG_URL, _migrate

    path = tmp_path / "sqlite" / "ispedge.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if PG_URL:
        asyncio.run(_migrate(f"sqlite://{path}"))
    else:
        shutil.copyfile(request.getfixturevalue("db_template"), path)
    return f"sqlite://{path}"
