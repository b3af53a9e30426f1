"""Buy Data under load against the real portal process on SQLite.

N subscribers (default 100) each buy 1 GB in a loop for D seconds (default 10),
all at once, through HTTP to `ispedge portal`. Prints purchases/s and latency
percentiles, then proves the money is exact: every balance equals the sum of its
ledger, each ledger entry's balance_after chains, one invoice and one top-up per
purchase, and invoice numbers run 1..n without a gap.

    .venv/bin/python bench/billing_bench.py [--subscribers 100] [--seconds 10] [--idempotency]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal.core import (
    resellers,
    subscribers,  # noqa: E402
)
from portal.store import db, migrations  # noqa: E402
from tests.support.portal import PortalServer, start_portal  # noqa: E402

PASSWORD = "bench-pass"


async def seed(url: str, n: int) -> None:
    await db.open_db(url)
    try:
        await migrations.upgrade()
        await subscribers.add_reseller("bench", company_name="Bench Net")
        await resellers.configure("bench", price_per_gb="1.50", tax_rate="11")
        await subscribers.add_plan("bench", "Basic", 10000, 5000, 1500)
        for i in range(n):
            await subscribers.add_subscriber(f"s{i}", PASSWORD, "bench", "Basic")
            await subscribers.credit(f"s{i}", 1_000_000, "bench")
    finally:
        await db.close_db()


async def worker(client: httpx.AsyncClient, token: str, until: float, idem: bool,
                 latencies: list[float], failures: list[int]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < until:
        if idem:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        t0 = time.perf_counter()
        r = await client.post("/customer/api/data/buy", json={"gb": 1}, headers=headers)
        elapsed = time.perf_counter() - t0
        if r.status_code == 200:
            latencies.append(elapsed)
        else:
            failures.append(r.status_code)


async def load(base_url: str, n: int, seconds: float, idem: bool) -> tuple[list[float],
                                                                          list[int], float]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        tokens = []
        for i in range(n):
            r = await client.post("/customer/api/login",
                                  json={"username": f"s{i}", "password": PASSWORD})
            r.raise_for_status()
            tokens.append(r.json()["token"])
        latencies: list[float] = []
        failures: list[int] = []
        start = time.perf_counter()
        await asyncio.gather(*(worker(client, t, start + seconds, idem, latencies, failures)
                               for t in tokens))
        return latencies, failures, time.perf_counter() - start


def verify(path: Path, purchases: int) -> list[str]:
    problems = []
    con = sqlite3.connect(path)
    rows = con.execute("SELECT s.username, s.balance_cents, COALESCE(SUM(w.amount_cents), 0)"
                       " FROM subscribers s LEFT JOIN wallet_entries w"
                       " ON w.subscriber_id = s.id GROUP BY s.id").fetchall()
    problems += [f"{u}: balance {b} != ledger {s}" for u, b, s in rows if b != s]
    last: dict[int, int] = {}
    for sub_id, amount, after in con.execute(
            "SELECT subscriber_id, amount_cents, balance_after_cents FROM wallet_entries"
            " ORDER BY id"):
        running = last.get(sub_id, 0) + amount
        if running != after:
            problems.append(f"subscriber {sub_id}: balance_after chain broken")
        last[sub_id] = running
    seqs = [r[0] for r in con.execute("SELECT seq FROM invoices ORDER BY seq")]
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append("invoice numbers have gaps or duplicates")
    topups = con.execute("SELECT COUNT(*) FROM topups").fetchone()[0]
    debits = con.execute("SELECT COUNT(*) FROM wallet_entries WHERE reason = 'topup'"
                         ).fetchone()[0]
    if not len(seqs) == topups == debits == purchases:
        problems.append(f"purchases {purchases}, invoices {len(seqs)}, top-ups {topups}, "
                        f"debits {debits}")
    con.close()
    return problems


def start(url: str, state: Path) -> PortalServer:
    # A loaded box occasionally starts a portal that never answers; try again.
    for attempt in range(3):
        try:
            return start_portal(url, state)
        except RuntimeError:
            if attempt == 2:
                raise
            print("portal did not answer, starting it again", file=sys.stderr)
    raise AssertionError("unreachable")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--idempotency", action="store_true", help="send a fresh Idempotency-Key")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="billing-bench-") as tmp:
        path = Path(tmp) / "ispedge.db"
        url = f"sqlite://{path}"
        asyncio.run(seed(url, args.subscribers))
        server = start(url, Path(tmp) / "state")
        try:
            latencies, failures, wall = asyncio.run(
                load(server.url, args.subscribers, args.seconds, args.idempotency))
        finally:
            server.stop()
        n = len(latencies)
        lat = sorted(latencies)
        q = statistics.quantiles(lat, n=100) if n >= 2 else [0.0] * 99
        print(f"SQLite, {args.subscribers} concurrent subscribers, {wall:.1f} s"
              f"{', Idempotency-Key' if args.idempotency else ''}")
        print(f"purchases: {n} ({n / wall:.0f}/s), failed: {len(failures)}")
        print(f"latency ms: p50 {q[49] * 1000:.1f}  p90 {q[89] * 1000:.1f}  "
              f"p99 {q[98] * 1000:.1f}  max {lat[-1] * 1000 if lat else 0:.1f}")
        problems = verify(path, n)
        if problems:
            print("MONEY CHECK FAILED:\n  " + "\n  ".join(problems[:20]))
            return 1
        print(f"money check: {args.subscribers} balances equal their ledgers, "
              f"{n} invoices numbered 1..{n} without gaps, one top-up and one debit each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
