from __future__ import annotations

from dns_filter.ratelimit import RateLimiter


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_per_source() -> None:
    clock = Clock()
    rl = RateLimiter(qps=10, burst=5, clock=clock)
    assert [rl.allow("a") for _ in range(7)] == [True] * 5 + [False] * 2
    assert rl.allow("b")  # another source has its own bucket
    clock.now += 0.1  # one token back
    assert rl.allow("a") and not rl.allow("a")
    clock.now += 10
    assert sum(rl.allow("a") for _ in range(10)) == 5
    assert rl.dropped == 8


def test_disabled_and_sweep() -> None:
    assert all(RateLimiter(0, 1).allow("x") for _ in range(1000))
    clock = Clock()
    rl = RateLimiter(qps=10, burst=5, clock=clock)
    rl.allow("a")
    clock.now += 0.1
    rl.allow("b")
    clock.now += 0.45
    rl.sweep()
    assert set(rl.buckets) == {"b"}
