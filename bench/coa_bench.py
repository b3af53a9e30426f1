"""CoA client throughput and latency against a NAS emulator in its own process.

    .venv/bin/python bench/coa_bench.py [--requests 1000] [--concurrency 64]

Targets (issue #7): >= 2,000 CoA/s with 64 in flight and p99 < 20 ms; 1,000
sessions' rate changes issued at once all ACKed within 2 s. Exits 1 if a
target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coa import CoaClient, CoaResult, Nas, Rate, SessionRef  # noqa: E402

SECRET = "bench-secret"


def start_emulator() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "coa.emulator", "--secret", SECRET, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if line[:1] != ["listening"]:
        process.kill()
        raise RuntimeError(f"emulator did not start: {line}")
    return process, int(line[2])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def steady(
    client: CoaClient, nas: Nas, requests: int, concurrency: int
) -> tuple[float, list[CoaResult]]:
    """`requests` rate changes with at most `concurrency` outstanding."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    results: list[CoaResult] = []

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            session = SessionRef(f"user{i}", f"sess-{i}", "100.64.0.1", "127.0.0.1")
            results.append(await client.change_rate(nas, session, Rate(10000 + i, 2000)))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, results


async def burst(client: CoaClient, nas: Nas, sessions: int) -> tuple[float, list[CoaResult]]:
    """Every session's rate change issued at the same moment."""
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            client.change_rate(nas, SessionRef(f"user{i}", f"sess-{i}"), Rate(20000, 4000))
            for i in range(sessions)
        )
    )
    return time.perf_counter() - started, list(results)


async def run(args: argparse.Namespace) -> bool:
    process, port = start_emulator()
    nas = Nas("127.0.0.1", SECRET, port, "mikrotik")
    ok = True
    try:
        async with CoaClient(timeout_s=1.0, retries=2) as client:
            await steady(client, nas, 200, args.concurrency)  # warm up

            elapsed, results = await steady(client, nas, args.requests, args.concurrency)
            rtts = [r.rtt_ms for r in results]
            acked = sum(r.ok for r in results)
            rate = len(results) / elapsed
            p50, p99 = statistics.median(rtts), percentile(rtts, 0.99)
            print(
                f"steady: {len(results)} CoA, {args.concurrency} in flight: {elapsed:.3f} s, "
                f"{rate:,.0f} CoA/s, ACKed {acked}, rtt p50 {p50:.2f} ms p99 {p99:.2f} ms "
                f"max {max(rtts):.2f} ms"
            )
            steady_ok = acked == len(results) and rate >= 2000 and p99 < 20
            print(f"  target >= 2,000 CoA/s and p99 < 20 ms: {'PASS' if steady_ok else 'FAIL'}")

            elapsed, results = await burst(client, nas, args.sessions)
            acked = sum(r.ok for r in results)
            rtts = [r.rtt_ms for r in results]
            print(
                f"burst: {args.sessions} rate changes at once: all answered in {elapsed:.3f} s, "
                f"ACKed {acked}, rtt p50 {statistics.median(rtts):.1f} ms max {max(rtts):.1f} ms, "
                f"retransmitted {client.stats.retransmitted}, peak in flight "
                f"{client.stats.max_in_flight}"
            )
            burst_ok = acked == args.sessions and elapsed < 2.0
            print(f"  target all ACKed within 2 s: {'PASS' if burst_ok else 'FAIL'}")
            ok = steady_ok and burst_ok
    finally:
        process.terminate()
        process.wait(5)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument(
        "--uvloop", action="store_true", help="run the client on uvloop (as Sanic does)"
    )
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        sys.exit(0 if uvloop.run(run(args)) else 1)
    sys.exit(0 if asyncio.run(run(args)) else 1)


if __name__ == "__main__":
    main()
