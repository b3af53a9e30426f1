"""The limiter's fixed windows: the rule, without a portal."""

from __future__ import annotations

import pytest
from limits import parse

from portal.web import limiter
from portal.web.limiter import FixedWindows


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(limiter.time, "monotonic", lambda: now[0])
    return now


def test_hits_within_the_rate_pass_and_the_next_waits_for_the_window(clock):
    windows, rate = FixedWindows(), parse("3/minute")
    assert [windows.hit(rate, "address", "10.0.0.1") for _ in range(3)] == [0, 0, 0]
    clock[0] += 20
    assert windows.hit(rate, "address", "10.0.0.1") == 40  # seconds left in the window
    clock[0] += 40
    assert windows.hit(rate, "address", "10.0.0.1") == 0  # a new window


def test_keys_kinds_and_rates_count_apart(clock):
    windows = FixedWindows()
    one, other = parse("1/minute"), parse("1/hour")
    assert windows.hit(one, "address", "a") == 0
    assert windows.hit(one, "address", "b") == 0
    assert windows.hit(one, "customer", "a") == 0
    assert windows.hit(other, "address", "a") == 0
    assert windows.hit(one, "address", "a") > 0


def test_ended_windows_are_swept_as_the_table_grows(clock, monkeypatch):
    monkeypatch.setattr(FixedWindows, "SWEEP_AT", 100)
    windows, rate = FixedWindows(), parse("5/second")
    for i in range(100):
        windows.hit(rate, "address", f"10.0.{i // 256}.{i % 256}")
    clock[0] += 2  # every window has ended
    windows.hit(rate, "address", "192.0.2.1")
    assert len(windows._counts) == 1
