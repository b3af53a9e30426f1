"""What /proc says about a bench's processes: CPU time, time spent waiting for a CPU."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_waits(pid: int) -> tuple[float, int]:
    """Seconds the process's threads were runnable but waiting for a CPU (the run
    queue, from /proc/<pid>/task/*/schedstat: CPUs shared with other work), and
    how many times they were put on a CPU."""
    total, runs = 0, 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            fields = stat.read_text().split()
            total += int(fields[1])
            runs += int(fields[2])
        except (OSError, IndexError, ValueError):
            pass  # a thread that just ended
    return total / 1e9, runs
