"""Schema migrations that run the same way on SQLite and PostgreSQL.

Each migration is a pair of frozen SQL files, sql/NNNN_name.sqlite.sql and
sql/NNNN_name.postgres.sql (generate new tables with `python -m
portal.store.migrations.makesql`, then hand-edit constraints). Frozen SQL rather than
generated-at-run-time DDL: an old migration must never change when a model does.
Applied names are recorded in ispedge_migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portal.store import db

SQL_DIR = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class Migration:
    name: str
    path: Path


def available(dialect: str) -> list[Migration]:
    found = sorted(SQL_DIR.glob(f"*.{dialect}.sql"))
    return [Migration(p.name.split(".")[0], p) for p in found]


async def _ensure_table() -> None:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS ispedge_migrations ("
        " name VARCHAR(128) NOT NULL PRIMARY KEY, applied_at VARCHAR(40) NOT NULL)"
    )


async def applied() -> set[str]:
    await _ensure_table()
    return {row["name"] for row in await db.fetch("SELECT name FROM ispedge_migrations")}


async def pending() -> list[Migration]:
    done = await applied()
    return [m for m in available(db.current_dialect()) if m.name not in done]


async def upgrade() -> list[str]:
    """Apply every pending migration in order; returns the names applied."""
    from datetime import UTC, datetime

    names = []
    for migration in await pending():
        script = migration.path.read_text()
        if db.current_dialect() == "postgres":
            # PostgreSQL DDL is transactional: a failing migration leaves nothing behind.
            script = f"BEGIN;\n{script}\nINSERT INTO ispedge_migrations VALUES " \
                     f"('{migration.name}', '{datetime.now(UTC).isoformat()}');\nCOMMIT;"
            await db.conn().execute_script(script)
        else:
            await db.conn().execute_script(script)
            await db.execute(
                "INSERT INTO ispedge_migrations VALUES (?, ?)",
                [migration.name, datetime.now(UTC).isoformat()],
            )
        names.append(migration.name)
    return names
