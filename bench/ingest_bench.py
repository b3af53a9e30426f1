"""What a live ingest pass costs, against the periodic pass, with many sessions open.

    .venv/bin/python bench/ingest_bench.py [--sessions 10000] [--db postgres://...]

`--sessions` sessions are open in radacct (no subscribers needed: the ingest
counts any RADIUS user). Then, each repeated and timed (median, max):
- an Interim-Update of ONE session -> a live pass (ingest_once(live=True): what
  the enforcer runs once per burst of accounting changes, portal/usage/coalesce.py);
- the same -> the periodic pass (ingest_once(): it also scans every open session
  for stale ones and deletes old change rows);
- a burst of 1,000 interims -> one live pass (one batch).
An empty PostgreSQL database is migrated and filled; the default is a fresh SQLite
file. Nothing is asserted: the figures go into portal/enforcer/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal.demo import simnas  # noqa: E402
from portal.store import db, migrations  # noqa: E402
from portal.usage import ingest  # noqa: E402

SETTINGS = ingest.Settings(ZoneInfo("UTC"), interim_seconds=3600)


async def timed(sessions: list[simnas.SimSession], touch: int, live: bool, reps: int,
                ) -> tuple[float, float, int]:
    took = []
    for _ in range(reps):
        batch = sessions[:touch]
        for s in batch:
            s.bytes_out += 1000
        await simnas.interim(batch, datetime.now(UTC))
        t = time.perf_counter()
        r = await ingest.ingest_once(SETTINGS, live=live)
        took.append(time.perf_counter() - t)
        assert r.changed == touch and not r.busy, r
    return statistics.median(took), max(took), reps


async def run(args: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp(prefix="ingest-bench-")
    url = args.db or f"sqlite://{tmp}/bench.db"
    await db.open_db(url)
    await migrations.upgrade()
    try:
        now = datetime.now(UTC)
        sessions = [simnas.SimSession(f"user{i:06d}", f"sess{i:06d}", "127.0.0.1",
                                      f"100.{64 + i // 65000}.{i // 250 % 250}.{i % 250 + 1}")
                    for i in range(args.sessions)]
        for i in range(0, len(sessions), 5000):
            await simnas.start(sessions[i:i + 5000], now - timedelta(minutes=10))
        t = time.perf_counter()
        await ingest.ingest_once(SETTINGS)
        print(f"{args.sessions} open sessions on {url.split('://')[0]}; first pass "
              f"(every Start) {time.perf_counter() - t:.3f} s")
        for label, touch, live, reps in (("1 interim  -> live pass", 1, True, 30),
                                         ("1 interim  -> periodic pass", 1, False, 10),
                                         ("1000 interims -> live pass", 1000, True, 10)):
            median, worst, n = await timed(sessions, touch, live, reps)
            print(f"  {label:30s} median {median * 1000:7.1f} ms  max {worst * 1000:7.1f} ms"
                  f"  ({n} runs)")
    finally:
        await db.close_db()
        if not args.db:
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file); an empty "
                                     "PostgreSQL database is migrated and filled")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
