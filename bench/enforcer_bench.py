"""A FUP threshold crossing for many subscribers at once, fully enforced.

    .venv/bin/python bench/enforcer_bench.py [--subscribers 1000] [--db postgres://...]

1,000 subscribers online on one NAS (coa.emulator in its own process, real
RADIUS over UDP). The NAS's accounting pushes every one of them past their
plan's monthly tier 1 (interim updates into radacct, as FreeRADIUS writes
them); then the clock starts and the enforcer's own code path runs: the usage
ingest pass (its every-minute job) -> desired state for the changed
subscribers -> radreply + journal + enforcement_state in one transaction ->
1,000 CoA-Requests -> 1,000 CoA-ACKs -> results written. Target (issue #7):
last ACK within 2 s of the usage change. Exits 1 if missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coa import CoaClient  # noqa: E402
from portal.config import DEFAULTS, Config  # noqa: E402
from portal.core import subscribers  # noqa: E402
from portal.demo import simnas  # noqa: E402
from portal.enforcer.daemon import Enforcer  # noqa: E402
from portal.enforcer.settings import Settings  # noqa: E402
from portal.speed.rules import Policy  # noqa: E402
from portal.store import db, migrations  # noqa: E402
from portal.store.models import EnforcementState, Nas  # noqa: E402

SECRET = "bench-secret"
GB = 10**9
TIER = (2000, 1000)


def start_emulator() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "coa.emulator", "--secret", SECRET, "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if line[:1] != ["listening"]:
        process.kill()
        raise RuntimeError(f"emulator did not start: {line}")
    return process, int(line[2])


async def seed(n: int, port: int, now: datetime) -> list[simnas.SimSession]:
    await subscribers.add_reseller("bench", company_name="Bench")
    await subscribers.add_plan("bench", "Home", 20000, 5000, 1000,
                               tiers=[subscribers.parse_tier(f"monthly:1:100GB:{TIER[0]}/"
                                                             f"{TIER[1]}")])
    for i in range(n):
        await subscribers.add_subscriber(f"user{i:05d}", "pw", "bench", "Home",
                                         now=now - timedelta(days=3))
    await Nas.create(nasname="127.0.0.1", shortname="emu", secret=SECRET, coa_port=port)
    sessions = [simnas.SimSession(f"user{i:05d}", f"sess{i:05d}", "127.0.0.1",
                                  f"100.64.{i // 250}.{i % 250 + 1}") for i in range(n)]
    await simnas.start(sessions, now - timedelta(minutes=10))
    return sessions


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.mkdtemp(prefix="enforcer-bench-")
    url = args.db or f"sqlite://{tmp}/bench.db"
    await db.open_db(url)
    await migrations.upgrade()
    emulator, port = start_emulator()
    try:
        now = datetime.now(UTC)
        sessions = await seed(args.subscribers, port, now)
        raw = {k: dict(v) for k, v in DEFAULTS.items()}
        config = Config(raw=raw)
        settings = Settings(policy=Policy(), reply_profile="mikrotik")
        async with CoaClient(timeout_s=1.0, retries=2) as coa:
            enforcer = Enforcer(settings, coa, None, config)
            await enforcer._ingest()
            t = time.perf_counter()
            await enforcer.enforce(None)
            await enforcer.settle()
            start_pass = time.perf_counter() - t
            applied = await EnforcementState.filter(state="applied", applied_down_kbps=20000
                                                    ).count()
            print(f"start: {applied} subscribers applied at plan rate in {start_pass:.3f} s "
                  f"(reconcile on start, {coa.stats.sent} CoA)")
            sent_before = coa.stats.sent

            # The NAS reports 101 GB for everyone (interim updates into radacct).
            for s in sessions:
                s.bytes_out = 101 * GB
            await simnas.interim(sessions, datetime.now(UTC))

            t0 = time.perf_counter()
            changed = await enforcer._ingest()
            t_ingest = time.perf_counter()
            batch, enforcer.dirty = enforcer.dirty, set()
            report = await enforcer.enforce(batch)
            t_pass = time.perf_counter()
            while enforcer._tasks:
                await asyncio.gather(*list(enforcer._tasks))
            last_ack = max(r.at for r in enforcer.results)  # wall clock of each result
            t_acked = time.perf_counter()
            written = await enforcer.flush()
            t_written = time.perf_counter()
            wall_t0 = time.time() - (t_written - t0)
            tier = await EnforcementState.filter(state="applied", applied_down_kbps=TIER[0]
                                                 ).count()
            sent = coa.stats.sent - sent_before
        print(f"subscribers {args.subscribers} on {url.split('://')[0]}; "
              f"usage changed for {changed}")
        print(f"  ingest pass (radacct -> usage_daily)        {t_ingest - t0:7.3f} s")
        print(f"  desired state + radreply/journal/state tx   {t_pass - t_ingest:7.3f} s "
              f"(radreply rows updated: {report.radreply_updated})")
        print(f"  CoA out -> last CoA-ACK                     {t_acked - t_pass:7.3f} s "
              f"({sent} CoA, {coa.stats.retransmitted} retransmitted, "
              f"max in flight {coa.stats.max_in_flight})")
        print(f"  usage change -> last ACK                    {last_ack - wall_t0:7.3f} s  "
              f"(target < 2 s)")
        print(f"  results written (enforcement_state)         {t_written - t_acked:7.3f} s "
              f"({written} rows); total {t_written - t0:.3f} s")
        print(f"  enforcement_state at tier rate: {tier}/{args.subscribers}")
        ok = tier == args.subscribers and sent == args.subscribers and last_ack - wall_t0 < 2.0
        return 0 if ok else 1
    finally:
        emulator.terminate()
        emulator.wait(5)
        await db.close_db()
        if not args.db:
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file); an empty "
                                     "PostgreSQL database is migrated and filled")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
