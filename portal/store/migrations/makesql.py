"""Print the CREATE statements Tortoise would generate for some tables.

A migration freezes this output into portal/store/migrations/sql/NNNN_name.<dialect>.sql
(both dialects) so later model edits never change what an old migration does:

    python -m portal.store.migrations.makesql sqlite:///tmp/x.db invoices invoice_lines
    python -m portal.store.migrations.makesql postgres://postgres@127.0.0.1:55432/postgres invoices
"""

from __future__ import annotations

import asyncio
import re
import sys

from tortoise.utils import get_schema_sql

from portal.store.db import close_db, conn, open_db


def select_tables(sql: str, tables: set[str]) -> str:
    statements = [s.strip().rstrip(";") for s in sql.split(";\n") if s.strip()]
    keep = []
    for stmt in statements:
        m = re.search(r'(?:TABLE|ON)\s+"?(\w+)"?', stmt)
        if m and m.group(1) in tables:
            keep.append(stmt + ";")
    return "\n".join(keep)


async def _main(url: str, tables: list[str]) -> None:
    await open_db(url)
    try:
        print(select_tables(get_schema_sql(conn(), safe=False), set(tables)))
    finally:
        await close_db()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2:]))
