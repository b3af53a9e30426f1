"""The portal's per-request metrics hook (issue 17), measured alone.

    .venv/bin/python bench/metrics_bench.py [--requests 200000]

portal/web/metrics.py installs two middlewares: a timestamp on request, one dict
lookup and one histogram observe on response. This runs the real installed pair
(captured from RequestMetrics.install) on requests of a few route templates and
statuses, and, in the same run, a pair of empty middlewares as the reference, and
prints the cost per request in microseconds: compare it with the portal's CPU per
request from bench/portal_bench.py (e.g. 2,500 req per CPU-second = 400 us).
`bench/portal_bench.py --metrics-ab N` measures the whole portal with metrics off
and on (noisy on a shared machine; this figure is not).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.web.metrics import RequestMetrics  # noqa: E402


class _App:
    def __init__(self) -> None:
        self.request: Any = None
        self.response: Any = None

    def on_request(self, priority: int = 0) -> Any:
        def register(fn: Any) -> Any:
            self.request = fn
            return fn
        return register

    def on_response(self, priority: int = 0) -> Any:
        def register(fn: Any) -> Any:
            self.response = fn
            return fn
        return register


async def _run(started: Any, observed: Any, n: int) -> float:
    routes = [SimpleNamespace(path=p) for p in (
        "customer/api/live", "customer/api/dashboard", "customer/api/usage/<day:str>/sessions")]
    requests = [SimpleNamespace(ctx=SimpleNamespace(), route=r, method="GET") for r in routes]
    responses = [SimpleNamespace(status=s) for s in (200, 200, 200, 401)]
    t0 = time.perf_counter()
    for i in range(n):
        req = requests[i % 3]
        await started(req)
        await observed(req, responses[i % 4])
    return (time.perf_counter() - t0) / n * 1e6


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    app = _App()
    RequestMetrics().install(app)  # type: ignore[arg-type]

    async def noop_request(request: Any) -> None:
        return None

    async def noop_response(request: Any, response: Any) -> None:
        return None

    hook, empty = [], []
    for _ in range(args.rounds):
        empty.append(await _run(noop_request, noop_response, args.requests))
        hook.append(await _run(app.request, app.response, args.requests))
    h, e = min(hook), min(empty)
    print(f"metrics middlewares: {h:.2f} us per request; two empty middlewares: {e:.2f} us;"
          f" the hook's own cost: {h - e:.2f} us per request (best of {args.rounds} rounds of "
          f"{args.requests})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
