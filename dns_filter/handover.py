"""Workers that find themselves on one CPU: the higher-numbered hands its UDP queue to the lower.

Why: two busy workers sharing a core cost 5-19% more CPU per answer than one
(bench/dns_bench.py), because each turn refills the caches with the other
process's heap. With the second worker stopped, so that the first served both
sockets (dns_filter.udp reads a sibling's queue), the loss was gone. The
kernel cannot know that two workers are interchangeable; the workers can.

So every worker writes into a slot of a board in shared memory, at most once
per HEARTBEAT_NS while it serves, which CPU it is running on. A worker that
sees a lower-numbered sibling serving on its own CPU asks it to take its
socket (WANTS), and keeps reading that socket until the sibling confirms (its
`adopted` mask). Then it stops reading (PARKED) and only checks, every few
tenths of a second, that it is still on that CPU and the sibling is still
alive; if not, it reads its socket again. Workers on different CPUs never hand
over, so on a machine with a core per worker every worker serves.

A worker that hosts a sibling's queue never hands over its own (no chains);
each slot has one writer, and a slot read half-written costs one wrong
decision that the next check undoes.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
import time
from collections.abc import Callable
from typing import NamedTuple

SERVING, WANTS, PARKED = 0, 1, 2
# cpu, state, target (the sibling asked to host us), padding, heartbeat ns, adopted mask
_SLOT = struct.Struct("=iiiiqQ")
MAX_WORKERS = 64  # the adopted mask is one 64-bit word
HEARTBEAT_NS = 1_000_000  # while serving, write the slot at most this often
# A sibling whose slot is older than this is stopped or dead: do not hand over
# to it, and take our queue back from it. Idle workers still write every
# dns_filter.udp.SIBLING_SWEEP_S (0.1 s).
FRESH_NS = 250_000_000


class Slot(NamedTuple):
    cpu: int
    state: int
    target: int
    heartbeat_ns: int
    adopted: int


class Board:
    """One slot per worker in anonymous shared memory, made before the workers are forked."""

    def __init__(self, workers: int):
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"a handover board holds 1-{MAX_WORKERS} workers, not {workers}")
        self.workers = workers
        # MAP_SHARED | MAP_ANONYMOUS: the children see each other's writes
        self._mem = mmap.mmap(-1, _SLOT.size * workers)
        for index in range(workers):
            self.reset(index)

    def reset(self, index: int) -> None:
        """A worker that is (re)starting: on no CPU, hosting nothing."""
        self.write(index, Slot(-1, SERVING, -1, 0, 0))

    def read(self, index: int) -> Slot:
        cpu, state, target, _, heartbeat, adopted = _SLOT.unpack_from(self._mem, index * _SLOT.size)
        return Slot(cpu, state, target, heartbeat, adopted)

    def write(self, index: int, slot: Slot) -> None:
        _SLOT.pack_into(
            self._mem, index * _SLOT.size,
            slot.cpu, slot.state, slot.target, 0, slot.heartbeat_ns, slot.adopted,
        )


def _libc_getcpu() -> Callable[[], int]:
    getcpu = ctypes.CDLL(None).sched_getcpu
    getcpu.restype = ctypes.c_int
    getcpu.argtypes = []
    return getcpu


class Handover:
    """One worker's side of the board; the worker calls `tick` on every read wake-up."""

    def __init__(
        self,
        board: Board,
        index: int,
        *,
        adopt: Callable[[int], None],
        release: Callable[[int], None],
        pause: Callable[[], None],
        resume: Callable[[], None],
        clock: Callable[[], int] = time.monotonic_ns,
        current_cpu: Callable[[], int] | None = None,
    ):
        self.board = board
        self.index = index
        self._adopt, self._release = adopt, release
        self._pause, self._resume = pause, resume
        self.clock = clock
        self.current_cpu = current_cpu or _libc_getcpu()
        self.state = SERVING
        self.target = -1
        self.adopted: frozenset[int] = frozenset()
        self._last = -HEARTBEAT_NS

    @property
    def parked(self) -> bool:
        return self.state == PARKED

    def tick(self) -> None:
        if self.clock() - self._last >= HEARTBEAT_NS:
            self.check()

    def check(self) -> None:
        now = self._last = self.clock()
        cpu = self.current_cpu()
        slots = [self.board.read(i) for i in range(self.board.workers)]
        self._host(slots)
        self._hand_over(slots, cpu, now)
        mask = sum(1 << k for k in self.adopted)
        self.board.write(self.index, Slot(cpu, self.state, self.target, now, mask))

    def _host(self, slots: list[Slot]) -> None:
        """Read the sockets of the siblings that asked us to, and only theirs."""
        wanted = frozenset(
            k
            for k, s in enumerate(slots)
            if k > self.index and s.state in (WANTS, PARKED) and s.target == self.index
        ) if self.state == SERVING else frozenset()
        for k in sorted(wanted - self.adopted):
            self._adopt(k)
        for k in sorted(self.adopted - wanted):
            self._release(k)
        self.adopted = wanted

    def _hand_over(self, slots: list[Slot], cpu: int, now: int) -> None:
        host = None if self.adopted else self._host_on(slots, cpu, now)
        if host is None:
            self._become(SERVING, -1)
        elif host != self.target or self.state == SERVING:
            self._become(WANTS, host)  # until the host confirms, we keep reading
        elif slots[host].adopted >> self.index & 1:
            self._become(PARKED, host)
        else:
            self._become(WANTS, host)  # the host let go of our socket

    def _host_on(self, slots: list[Slot], cpu: int, now: int) -> int | None:
        for j in range(self.index):
            s = slots[j]
            if s.state == SERVING and s.cpu == cpu and now - s.heartbeat_ns < FRESH_NS:
                return j
        return None

    def _become(self, state: int, target: int) -> None:
        if state == PARKED and self.state != PARKED:
            self._pause()
        elif state != PARKED and self.state == PARKED:
            self._resume()
        self.state, self.target = state, target
