"""Per-client token bucket, keyed on the packet's real source address.

Over-limit queries are dropped (not answered): answering would still let a
spoofed source use us as a reflector.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 500_000,
    ):
        self.qps = qps
        self.burst = float(max(burst, 1))
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: dict[str, list[float]] = {}  # source -> [tokens, last refill time]
        self.dropped = 0

    def allow(self, source: str) -> bool:
        if self.qps <= 0:
            return True
        now = self.clock()
        bucket = self.buckets.get(source)
        if bucket is None:
            if len(self.buckets) >= self.max_clients:
                self.sweep(now)
            self.buckets[source] = [self.burst - 1.0, now]
            return True
        tokens = bucket[0] + (now - bucket[1]) * self.qps
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        self.dropped += 1
        return False

    def sweep(self, now: float | None = None) -> None:
        """Forget clients whose bucket has refilled: they are indistinguishable from new ones."""
        now = self.clock() if now is None else now
        full_after = self.burst / self.qps if self.qps > 0 else 0
        self.buckets = {k: b for k, b in self.buckets.items() if now - b[1] < full_after}
