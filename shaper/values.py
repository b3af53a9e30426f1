"""The plain values the shaper's API takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from shaper.tc import HtbRate

# A class that was not served for a while may send this much time of its rate at
# once, so a late dequeue is made up instead of lost. HTB's watchdog is a
# hrtimer, but on a busy or virtualised box it and the softirq that dequeues run
# late by up to a jiffy (4 ms at HZ=250, Debian's kernels). With 1 ms (the
# default until 2026-12) a 100 Mbit/s class gave 75-88 % of its rate in CI's bad
# minutes. bench/burst_bench.py on the 2-CPU VM, 100 Mbit/s, iperf3 3 s, bursts
# alternated in one lab for 18 min (109 rounds): 1.1 ms mean 0.948 of the rate,
# min 0.794, 5 rounds under 0.90; 2 ms min 0.871 (1 of 36 under); 4 ms min 0.911,
# none under; 8 ms no better than 4 (min 0.954 against 0.950 in the same 73).
# tc's own default is one MTU, which is worse still at these rates.
DEFAULT_BURST_MS = 4


@dataclass(frozen=True)
class Rate:
    """A subscriber's speed. kbit/s = 1000 bit/s; burst in kB (1000 bytes)."""

    down_kbps: int
    up_kbps: int
    burst_kbytes: int | None = None

    def __post_init__(self) -> None:
        numbers = (self.down_kbps, self.up_kbps, self.burst_kbytes or 1)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise ValueError(f"rates and burst are whole numbers: {self}")
        if self.down_kbps <= 0 or self.up_kbps <= 0:
            raise ValueError(f"rates must be positive: {self}")
        if self.burst_kbytes is not None and self.burst_kbytes <= 0:
            raise ValueError(f"burst must be positive: {self}")

    def htb(self, download: bool) -> HtbRate:
        kbps = self.down_kbps if download else self.up_kbps
        rate_bps = kbps * 125
        if self.burst_kbytes is not None:
            burst = self.burst_kbytes * 1000
        else:
            burst = rate_bps * DEFAULT_BURST_MS // 1000 + 1600
        return HtbRate(rate_bps, burst)


@dataclass(frozen=True, slots=True)
class Counters:
    """Bytes and packets sent through a subscriber's classes since they were made."""

    down_bytes: int = 0
    down_packets: int = 0
    up_bytes: int = 0
    up_packets: int = 0


@dataclass
class ReconcileResult:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # half-built or damaged, rebuilt
    operations: int = 0  # netlink change requests issued

    @property
    def unchanged(self) -> bool:
        return self.operations == 0
