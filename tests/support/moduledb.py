"""One fresh migrated database for a whole test module (one portal server per module):
a copy of the session's template on SQLite, a database made from it on PostgreSQL
(ISPEDGE_TEST_DATABASE_URL), like conftest's per-test `db_url`."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import PG_URL, _pg_admin, _with_dbname


@contextmanager
def module_db(db_template: str, folder: Path) -> Iterator[str]:
    if PG_URL:
        name = f"ispedge_m_{uuid.uuid4().hex[:12]}"
        _pg_admin(PG_URL, f"CREATE DATABASE {name} TEMPLATE {db_template}")
        try:
            yield _with_dbname(PG_URL, name)
        finally:
            _pg_admin(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        path = folder / "ispedge.db"
        shutil.copyfile(db_template, path)
        yield f"sqlite://{path}"


def run_with_db(url: str, step: Callable[[], Awaitable[object]]) -> object:
    """Run an async seeding step with Tortoise open on `url` (outside any test loop)."""
    from portal.store import db

    async def go() -> object:
        await db.open_db(url)
        try:
            return await step()
        finally:
            await db.close_db()

    return asyncio.run(go())
