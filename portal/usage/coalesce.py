"""When the enforcer runs a live ingest pass: one pass per burst of accounting changes.

FreeRADIUS writes one radacct change per Interim-Update; a NAS sends them in
bursts (every session's interim at the same minute, after a NAS reboot every
Start at once). Ingesting at each change would cost one transaction each; the
rule here groups them:

- The first change of a burst opens a window of `window_s`; the pass starts when
  it closes and covers every change committed by then (the window is counted
  from the FIRST change, not the last, so a steady stream never starves it).
- Changes noticed while a pass runs open the next window: they get the next pass.
- Passes start at least `window_s` apart, so one box runs at most 1 / window_s
  live passes a second whatever the accounting rate (each bounded to one batch of
  changes: portal.usage.ingest.ingest_once(live=True)).
- A pass that found the shared ingest busy (another box is ingesting: it holds
  usage_ingest's row) or left a backlog asks again: the next window.

Plain values and an explicit clock (monotonic seconds), so it is tested without a
database (tests/portal/test_ingest_coalesce.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Coalescer:
    window_s: float
    first_change: float | None = None  # the first change not yet covered by a pass
    last_start: float | None = None  # when the last pass started

    def changed(self, now: float) -> None:
        """An accounting change (or a reason to look again) was noticed at `now`."""
        if self.first_change is None:
            self.first_change = now

    def due_in(self, now: float) -> float | None:
        """Seconds until the next pass should start (0: now); None: nothing to ingest."""
        if self.first_change is None:
            return None
        at = self.first_change + self.window_s
        if self.last_start is not None:
            at = max(at, self.last_start + self.window_s)
        return max(0.0, at - now)

    def start(self, now: float) -> None:
        """A pass starts at `now`: it covers every change noticed so far."""
        self.first_change = None
        self.last_start = now
