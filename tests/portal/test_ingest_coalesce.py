"""portal.usage.coalesce: one live ingest pass per burst of accounting changes."""

from __future__ import annotations

from portal.usage.coalesce import Coalescer


def test_nothing_changed_nothing_due() -> None:
    c = Coalescer(0.05)
    assert c.due_in(100.0) is None


def test_a_burst_is_one_pass_at_the_end_of_the_window_of_its_first_change() -> None:
    c = Coalescer(0.05)
    c.changed(100.0)
    for t in (100.01, 100.02, 100.04):  # the rest of the burst
        c.changed(t)
        assert c.due_in(t) is not None and c.due_in(t) > 0
    assert abs(c.due_in(100.03) - 0.02) < 1e-9  # not pushed back by later changes
    assert c.due_in(100.05) == 0
    c.start(100.05)
    assert c.due_in(100.06) is None  # the pass covers the whole burst


def test_a_steady_stream_never_starves_the_pass() -> None:
    """The window counts from the first change, not the last: changes every 10 ms
    still get a pass every window (times in integer ms: no float noise)."""
    c = Coalescer(50)
    passes = []
    for t in range(0, 1000, 10):
        c.changed(t)
        if c.due_in(t) == 0:
            c.start(t)
            passes.append(t)
    # The first change after a pass opens the next window: 50, 110, 170, ...
    gaps = [b - a for a, b in zip(passes, passes[1:], strict=False)]
    assert passes[0] == 50 and len(passes) == 16
    assert all(50 <= g <= 60 for g in gaps), gaps  # never starved, never closer


def test_passes_start_at_least_a_window_apart() -> None:
    c = Coalescer(0.05)
    c.changed(0.0)
    c.start(0.05)
    c.changed(0.051)  # during the pass, or just after it: the next window
    assert abs(c.due_in(0.051) - 0.05) < 1e-9
    c2 = Coalescer(0.05)
    c2.start(10.0)
    c2.changed(9.0)  # a change stamped before the last start (clock read early)
    assert abs(c2.due_in(10.0) - 0.05) < 1e-9  # still not before last start + window


def test_overdue_is_due_now_not_negative() -> None:
    c = Coalescer(0.05)
    c.changed(0.0)
    assert c.due_in(5.0) == 0.0


def test_busy_or_backlog_asks_again_after_a_window() -> None:
    """ingest_once(live=True) came back busy (another box's pass) or with a backlog:
    the caller notes a change at once and the next pass is one window later."""
    c = Coalescer(0.05)
    c.changed(0.0)
    c.start(0.05)
    c.changed(0.06)  # the pass ended: busy
    assert abs(c.due_in(0.06) - 0.05) < 1e-9
