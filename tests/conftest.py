"""Suite-wide rules.

ISPEDGE_NO_SKIP=1 (set by .ci/run) makes any skipped test fail the run: in CI
every integration test must really run.
"""

from __future__ import annotations

import os

import pytest

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and os.environ.get("ISPEDGE_NO_SKIP") == "1":
        _skipped.append(f"{report.nodeid}: {report.longrepr}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped:
        print("\nISPEDGE_NO_SKIP=1 but these tests skipped:")
        for line in _skipped:
            print("  " + line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- databases ------------------------------------------------------------------
# Every test that uses `db_url` gets a fresh, fully migrated database: SQLite by
# default, PostgreSQL when ISPEDGE_TEST_DATABASE_URL is set (the second CI pass).

import asyncio  # noqa: E402
import shutil  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

PG_URL = os.environ.get("ISPEDGE_TEST_DATABASE_URL", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # contract_db: dns_filter's own fixture, parametrised over the same backends.
        if {"db_url", "contract_db"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def _pg_admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _with_dbname(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _migrate(url: str) -> None:
    from portal.store import db, migrations

    await db.open_db(url)
    try:
        await migrations.upgrade()
    finally:
        await db.close_db()


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if PG_URL:
        name = f"ispedge_tpl_{os.getpid()}"
        _pg_admin(PG_URL, f"DROP DATABASE IF EXISTS {name}")
        _pg_admin(PG_URL, f"CREATE DATABASE {name}")
        url = _with_dbname(PG_URL, name)
        asyncio.run(_migrate(url))
        yield name
        _pg_admin(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        path = tmp_path_factory.mktemp("tpl") / "template.db"
        asyncio.run(_migrate(f"sqlite://{path}"))
        yield str(path)


@pytest.fixture
def db_url(db_template: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        name = f"ispedge_t_{uuid.uuid4().hex[:12]}"
        _pg_admin(PG_URL, f"CREATE DATABASE {name} TEMPLATE {db_template}")
        yield _with_dbname(PG_URL, name)
        _pg_admin(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        path = tmp_path / "ispedge.db"
        shutil.copyfile(db_template, path)
        yield f"sqlite://{path}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[str]:
    """Tortoise opened on a fresh migrated database in the test's event loop."""
    from portal.store import db as portal_db

    await portal_db.open_db(db_url)
    try:
        yield db_url
    finally:
        await portal_db.close_db()


# --- a real portal server -----------------------------------------------------------

from tests.support.portal import PortalServer, start_portal  # noqa: E402


@pytest.fixture
def portal_server(db_url: str, tmp_path: Path) -> Iterator[PortalServer]:
    server = start_portal(db_url, tmp_path / "state")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def _forkserver() -> Iterator[None]:
    """The helper that forks `python -m portal.main` runs (tests/support/forkserver.py)
    is started on first use; at the end of the session it stops with every child."""
    from tests.support import forkserver

    yield
    forkserver.close()
