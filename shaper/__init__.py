"""Per-subscriber traffic shaping with HTB and u32 on Linux (a mechanism).

The enforcer gives ``Shaper.reconcile`` the desired {address: Rate}; the
shaper makes the kernel's tc trees match and reports per-subscriber counters.
It knows nothing about plans or subscribers beyond an address and a rate.
"""

from shaper.addresses import parse_prefix
from shaper.capabilities import Capabilities, detect
from shaper.errors import FailedOperation, ShaperError
from shaper.shaper import Shaper
from shaper.values import Counters, Rate, ReconcileResult


def canonical(address: str) -> str:
    """The form reconcile results and counters use for an address or prefix."""
    return str(parse_prefix(address))


__all__ = [
    "Capabilities",
    "Counters",
    "FailedOperation",
    "Rate",
    "ReconcileResult",
    "Shaper",
    "ShaperError",
    "canonical",
    "detect",
]
