"""Fixtures for the coa tests: databases with FreeRADIUS's own schema and a
running FreeRADIUS."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.freeradius import (
    FreeRadius,
    create_postgres_database,
    create_sqlite_schema,
    drop_postgres_database,
    shipped_schema,
)
from tests.support.requirements import need_binary, need_root

SECRET = "coa-test-secret"


def need_freeradius() -> None:
    need_root()
    need_binary("freeradius", "freeradius")
    need_binary("radclient", "freeradius-utils")
    if not shipped_schema("sqlite").exists():
        pytest.skip("needs FreeRADIUS's shipped SQL schema: apt-get install freeradius")


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    need_freeradius()
    return create_sqlite_schema(tmp_path / "radius.db")


@pytest.fixture
def postgres_db() -> Iterator[str]:
    need_freeradius()
    server = os.environ.get("ISPEDGE_TEST_DATABASE_URL")
    if not server:
        pytest.skip("set ISPEDGE_TEST_DATABASE_URL=postgres://... to test against PostgreSQL")
    if not Path("/usr/lib/freeradius/rlm_sql_postgresql.so").exists():
        pytest.skip("needs rlm_sql_postgresql: apt-get install freeradius-postgresql")
    url = create_postgres_database(server)
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    """Each FreeRADIUS database the appliance supports, by URL or path."""
    name = "sqlite_db" if request.param == "sqlite" else "postgres_db"
    return str(request.getfixturevalue(name))


def execute(database: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement on either database ('?' placeholders)."""
    if database.startswith(("postgres://", "postgresql://")):
        import psycopg

        with psycopg.connect(database, autocommit=True) as db:
            cursor = db.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []
    with sqlite3.connect(database) as db:
        return list(db.execute(sql, params).fetchall())


@pytest.fixture
def radius(sqlite_db: Path) -> Iterator[FreeRadius]:
    with FreeRadius(sqlite_db, secret=SECRET) as server:
        yield server
