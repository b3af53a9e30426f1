"""Fixtures for the coa tests: databases with FreeRADIUS's own schema and a
running FreeRADIUS."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.freeradius import (
    FreeRadius,
    create_sqlite_schema,
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


def freeradius_database(db_url: str) -> str:
    """The suite's database as FreeRADIUS is pointed at it: a path or a URL."""
    need_freeradius()
    if db_url.startswith("sqlite://"):
        return db_url.split("://", 1)[1]
    if not Path("/usr/lib/freeradius/rlm_sql_postgresql.so").exists():
        pytest.skip("needs rlm_sql_postgresql: apt-get install freeradius-postgresql")
    return db_url


@pytest.fixture
def database(db_url: str) -> str:
    """The suite's database (SQLite, or PostgreSQL in the second pass), migrated by
    ispedge's own migrations, as FreeRADIUS will be pointed at it: a path or a URL."""
    return freeradius_database(db_url)


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
