"""A worker's CPU slice: how long it runs before a sibling on the same core gets a turn.

Linux 6.12+ (EEVDF) lets a fair-class task ask for its own slice through
sched_setattr's sched_runtime (0.1-100 ms). Python binds neither
sched_setattr nor sched_getattr, hence ctypes and the syscall numbers.

Why: two workers sharing a core that both have work switch at every
scheduler tick (~190 involuntary switches/s measured with 4 ms ticks), and
each switch refills the caches with the other process's heap. A 20 ms
slice cuts that to ~20-50/s. It changes nothing for a worker alone on its
core, and a woken SCHED_OTHER task (the portal, sshd) still preempts a
SCHED_BATCH worker as before; only batch workers wait longer for each other,
and they serve each other's queues meanwhile (dns_filter.udp).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

# (sched_setattr, sched_getattr) by machine
SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}
# struct sched_attr, SCHED_ATTR_SIZE_VER1: size, policy, flags, nice, priority,
# runtime, deadline, period, util_min, util_max
_ATTR = struct.Struct("=IIQiIQQQII")
MIN_SLICE_MS = 0.1
MAX_SLICE_MS = 100.0


def _syscalls() -> tuple[int, int]:
    found = SYSCALLS.get(platform.machine())
    if found is None:
        raise OSError(errno.ENOSYS, f"sched_setattr not known on {platform.machine()}")
    return found


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def get_attr(pid: int = 0) -> tuple[int, int, int]:
    """A process's (policy, nice, slice in ns); slice 0 on kernels without custom slices."""
    _, getattr_nr = _syscalls()
    buf = ctypes.create_string_buffer(_ATTR.size)
    if _libc().syscall(getattr_nr, pid, buf, _ATTR.size, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    _, policy, _, nice, _, runtime, *_ = _ATTR.unpack(buf.raw)
    return policy, nice, runtime


def set_slice(policy: int, slice_ms: float) -> int:
    """Run this process under `policy` with a slice of `slice_ms`, keeping its nice value.

    Returns the slice the kernel reports afterwards, in ns (0 or the default
    slice where the kernel has no custom slices: the caller compares).
    """
    setattr_nr, _ = _syscalls()
    nice = os.getpriority(os.PRIO_PROCESS, 0)  # sched_setattr sets nice too: keep it
    attr = _ATTR.pack(_ATTR.size, policy, 0, nice, 0, int(slice_ms * 1e6), 0, 0, 0, 0)
    if _libc().syscall(setattr_nr, 0, ctypes.create_string_buffer(attr), 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return get_attr()[2]
