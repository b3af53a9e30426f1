"""What the accounting change capture costs each FreeRADIUS Interim-Update on SQLite.

    .venv/bin/python bench/acct_pages_bench.py [--commits 2000] [--synchronous FULL]

Every Interim-Update is one short transaction of FreeRADIUS's (one UPDATE of a
radacct row); migration 0013's trigger adds a radacct_changes row to it, so the
usage ingest, the enforcer and the resolver follow accounting by id. What that
costs is the pages each commit appends to the WAL: more pages, more bytes to
fsync and a WAL that fills (and is checkpointed) sooner, with the write lock that
the portal's purchases wait for held meanwhile. This measures, on one freshly
migrated file per variant, in the same run, with the statements of
tests/support/acct_writer.py (the billing bench's background writer):
  - shipped:     the migrations as they are (0022: rowid table, no acctupdatetime index);
  - as 0013:     radacct_changes with AUTOINCREMENT and radacct_acctupdatetime, as
                 before migration 0022;
  - 211cb65:     the reference: no capture, radacct_acctupdatetime still there (the
                 schema of the write-path baseline, commit 211cb65);
  - no capture:  the shipped schema with the capture triggers dropped.
Figures: WAL frames per commit (exact: the WAL is never checkpointed during a
variant), process CPU per commit and wall time per commit (these two move with the
machine's load; the frames do not).

Measured 2026-12-02 (this 2-core VM, load average 12 from other jobs):
  `bench/acct_pages_bench.py --commits 2000 --rounds 3`: WAL frames per commit
  shipped 4.0, as 0013 6.0, 211cb65 4.0, no capture 3.0; CPU per commit 290 / 318 /
  220 / 264 us; wall per commit (fsync, load-bound) 2.1 / 2.6 / 0.5 / 1.5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal.store import db, migrations  # noqa: E402
from tests.support.acct_writer import Backend  # noqa: E402

FRAME = 4096 + 24  # a WAL frame: the page and its header (the default 4 KiB pages)

AS_0013 = [
    "CREATE INDEX radacct_acctupdatetime ON radacct (acctupdatetime)",
    "DROP TRIGGER radacct_change_insert",
    "DROP TRIGGER radacct_change_update",
    "DROP TABLE radacct_changes",
    "CREATE TABLE radacct_changes (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,"
    " radacctid BIGINT NOT NULL, changed_at BIGINT NOT NULL)",
    "CREATE TRIGGER radacct_change_insert AFTER INSERT ON radacct BEGIN"
    " INSERT INTO radacct_changes (radacctid, changed_at)"
    " VALUES (NEW.radacctid, CAST(strftime('%s', 'now') AS INTEGER)); END",
    "CREATE TRIGGER radacct_change_update AFTER UPDATE ON radacct BEGIN"
    " INSERT INTO radacct_changes (radacctid, changed_at)"
    " VALUES (NEW.radacctid, CAST(strftime('%s', 'now') AS INTEGER)); END",
]
NO_CAPTURE = ["DROP TRIGGER radacct_change_insert", "DROP TRIGGER radacct_change_update"]
AS_211CB65 = [*NO_CAPTURE, "CREATE INDEX radacct_acctupdatetime ON radacct (acctupdatetime)"]
VARIANTS = {"shipped": [], "as 0013": AS_0013, "211cb65": AS_211CB65, "no capture": NO_CAPTURE}


async def migrate(path: Path) -> None:
    await db.open_db(f"sqlite://{path}")
    try:
        await migrations.upgrade()
    finally:
        await db.close_db()


def measure(path: Path, ddl: list[str], commits: int, synchronous: str
            ) -> tuple[float, float, float]:
    con = sqlite3.connect(path, isolation_level=None)
    for statement in ddl:
        con.execute(statement)
    con.close()
    writer = Backend(str(path), 5000, synchronous)
    writer.setup(200)  # as the billing bench's writer: 200 open sessions
    writer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.conn.execute("PRAGMA wal_autocheckpoint = 0")  # every frame stays countable
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(commits):
        writer.begin()
        writer.interim()
        writer.commit()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    frames = os.path.getsize(f"{path}-wal") / FRAME / commits
    writer.conn.close()
    return frames, cpu / commits * 1e6, wall / commits * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3, help="variants run in turn, this often")
    ap.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL",
                    help="the writer's (FULL: FreeRADIUS's, SQLite's default)")
    args = ap.parse_args()
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="acct-pages-") as tmp:
        template = Path(tmp) / "migrated.db"
        asyncio.run(migrate(template))
        for _ in range(args.rounds):
            for name, ddl in VARIANTS.items():
                path = Path(tmp) / "variant.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                path.write_bytes(template.read_bytes())
                results[name].append(measure(path, ddl, args.commits, args.synchronous))
    print(f"{args.commits} accounting commits per variant, {args.rounds} rounds, "
          f"synchronous={args.synchronous}, medians; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':12}{'WAL frames/commit':>19}{'CPU us/commit':>15}{'wall ms/commit':>16}")
    for name, runs in results.items():
        frames, cpu, wall = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"{name:12}{frames:>19.2f}{cpu:>15.0f}{wall:>16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
